"""What several benchmarks share: where the CIFAR-10 copy is, and how a rate in GFLOP/s is measured."""
import os
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BATCH = 128


def default_data_dir() -> str:
    """$LOTTERY_DATA_DIR, else ../shared/data/cifar10 beside the repository (as the justfile)."""
    return os.environ.get("LOTTERY_DATA_DIR") or str((REPO.parent / "shared" / "data" / "cifar10").resolve())


def gflops(fn: Callable[[], object], flops: int, repeats: int, warmup: int = 2) -> float:
    """GFLOP/s of `fn` (which computes `flops` floating-point operations): `warmup` untimed calls,
    then the fastest of `repeats` timed ones (other work on the machine only ever slows a call)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(flops / min(times) / 1e9, 1)


def step_flops(name: str, num_classes: int, batch: int = BATCH) -> int:
    """FLOPs of one training step (forward + backward) of model `name` on a batch of `batch`
    32x32 images (torch.utils.flop_counter; a multiply-add counts 2)."""
    import torch  # here, so that benchmarks that only need the data folder stay light
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from lottery_core import models

    model = models.build(name, num_classes=num_classes)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, num_classes, (batch,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()
