"""Accuracy of a model on generated CIFAR-10-C corruptions, per corruption and severity.

    corruption_accuracy(model, images, labels, mean, std) -> accuracy (%) per corruption and severity
    corruption_accuracy(..., cache_dir=default_cache_dir())   the corrupted sets made once per node
"""
import contextlib
import math
import numbers
import os
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from lottery_core.errors import LotteryError
from lottery_core.evaluate import evaluate, evaluation_copy
from lottery_core.robustness.corruption_cache import CachedSets
from lottery_core.robustness.corruption_sets import corrupted_sets
from lottery_core.robustness.corruptions import check_corruption, check_severity
from lottery_core.robustness.recipes import (
    CORRUPTIONS,
    SEVERITIES,
    SUBSTITUTES,
    CorruptionUnavailable,
)


def corruption_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean, std,
                        names: Sequence[str] = CORRUPTIONS, severities: Sequence[int] = SEVERITIES,
                        seed: int = 0, batch_size: int = 500, channels_last: bool = True,
                        workers: int = 0, cache_dir: str | os.PathLike | None = None) -> dict:
    """Top-1 accuracy (%) of `model` (expects normalized input) on corrupted copies of `images`.

    Returns {"mean": mean over the corruptions evaluated (NaN if none),
             "per_corruption": {name: mean over severities},
             "per_severity": {name: {severity: accuracy}},
             "skipped": {name: reason} (corruptions this machine cannot generate),
             "substitutes": {name: what replaces the original tool},
             "seconds": {"corrupt": time spent waiting for corrupted images, "evaluate": model time},
             "cache": None, or with `cache_dir` {"status": "built" | "reused" | "uncached: <why>",
                      "key": 64 hex digits, "path": the stored sets}}.
    Arguments are checked before any work. The model is evaluated through `evaluation_copy`
    (channels_last unless `channels_last=False`); the caller's model is not modified. `workers` > 0
    generates the corrupted sets in that many spawned processes, ahead of the evaluation (worth it
    when the model runs on a GPU; the bytes are the same). With `cache_dir` (e.g.
    `corruption_cache.default_cache_dir()`) the corrupted sets are read from that folder when a
    run on this node stored them for the same images, jobs and seed, else made and stored there
    (`corruption_cache`: one uint8 file per key, N × 3,072 bytes per corruption and severity);
    the accuracies are bit-identical to those without it. Seconds are wall-clock seconds.
    """
    names, severities = tuple(names), tuple(severities)
    for name in names:
        check_corruption(name)
    for s in severities:
        check_severity(s)
    if not severities:
        raise LotteryError("corruption_accuracy needs at least one severity (1-5)")
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 0:
        raise LotteryError(f"workers must be an integer >= 0 (0: generate in this process), got {workers!r}")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = evaluation_copy(model, channels_last)
    per_severity: dict[str, dict[int, float]] = {}
    skipped: dict[str, str] = {}
    seconds = {"corrupt": 0.0, "evaluate": 0.0}
    jobs = [(name, s) for name in names for s in severities]
    cached = CachedSets(images, jobs, seed, cache_dir, workers) if cache_dir is not None else None
    sets = iter(cached) if cached is not None else corrupted_sets(images, jobs, seed, workers)
    with contextlib.closing(sets):  # on an error: the build's lock, temporary file and workers go now
        for (name, s), corrupted, waited in sets:
            seconds["corrupt"] += waited
            if isinstance(corrupted, CorruptionUnavailable):
                skipped.setdefault(name, str(corrupted))
                continue
            start = time.perf_counter()
            corrupted = corrupted.to(images.device).contiguous(memory_format=fmt)
            per_severity.setdefault(name, {})[s] = evaluate(net, corrupted, labels, mean, std,
                                                            batch_size=batch_size)["acc"]
            seconds["evaluate"] += time.perf_counter() - start
    per_severity = {name: accs for name, accs in per_severity.items() if name not in skipped}
    per_corruption = {name: float(np.mean(list(accs.values()))) for name, accs in per_severity.items()}
    overall = float(np.mean(list(per_corruption.values()))) if per_corruption else math.nan
    return {"mean": overall, "per_corruption": per_corruption, "per_severity": per_severity,
            "skipped": skipped, "substitutes": {n: SUBSTITUTES[n] for n in per_severity if n in SUBSTITUTES},
            "seconds": seconds,
            "cache": None if cached is None else {"status": cached.status, "key": cached.key,
                                                  "path": str(cached.path)}}
