"""The corrupted sets of an evaluation, generated in this process or ahead of it in spawned workers."""
import multiprocessing
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import torch

from lottery_core.robustness.corruptions import CorruptionUnavailable, corrupt


def corrupted_sets(images: torch.Tensor, jobs: list[tuple[str, int]], seed: int, workers: int):
    """Yield ((name, severity), uint8 images or CorruptionUnavailable, seconds waited), in job order."""
    if workers == 0:
        for job in jobs:
            start = time.perf_counter()
            try:
                out = corrupt(images, *job, seed)
            except CorruptionUnavailable as err:
                out = err
            yield job, out, time.perf_counter() - start
        return
    cpu_images = images.detach().cpu()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init, initargs=(cpu_images.numpy(),)) as pool:
        pending: deque = deque()
        queue = iter(jobs)
        for job in queue:  # keep 2 sets per worker in flight: bounded memory
            pending.append((job, pool.submit(_worker_corrupt, *job, seed)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            job, future = pending.popleft()
            start = time.perf_counter()
            out = future.result()
            waited = time.perf_counter() - start
            nxt = next(queue, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_worker_corrupt, *nxt, seed)))
            yield job, (out if isinstance(out, CorruptionUnavailable) else torch.from_numpy(out)), waited


_WORKER_IMAGES: torch.Tensor | None = None


def _worker_init(images: np.ndarray) -> None:
    """In a spawned worker: one thread per library (the workers are the parallelism), the images."""
    global _WORKER_IMAGES
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    _WORKER_IMAGES = torch.from_numpy(images)


def _worker_corrupt(name: str, severity: int, seed: int):
    try:
        return corrupt(_WORKER_IMAGES, name, severity, seed).numpy()
    except CorruptionUnavailable as err:
        return err
