"""Where and how a run computes: its device, threads, memory format and backend flags."""
import contextlib
import os

import torch
import torch.nn as nn

from lottery_core.train.settings import TrainSettings

CPU_CHANNELS_LAST = True      # oneDNN convolutions: ~1.3x faster training here (benchmarks/engine_throughput)


def cpus_given() -> int:
    """CPUs this process may use: $OMP_NUM_THREADS when set (Ray sets it per trial), else the
    CPU affinity mask, else os.cpu_count()."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


@contextlib.contextmanager
def runtime(settings: TrainSettings, device: torch.device):
    """Threads and backend flags for one run; the previous thread count is restored after."""
    previous_threads = torch.get_num_threads()
    previous_benchmark = torch.backends.cudnn.benchmark
    torch.set_num_threads(settings.threads or cpus_given())
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.backends.cudnn.benchmark = previous_benchmark


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def use_channels_last(settings: TrainSettings, device: torch.device, model: nn.Module) -> bool:
    """channels_last for models with convolutions: as `settings.channels_last` says, else on CUDA
    and (with `CPU_CHANNELS_LAST`) on the CPU."""
    if not any(p.dim() == 4 for p in model.parameters()):
        return False
    if settings.channels_last is not None:
        return settings.channels_last
    return device.type == "cuda" or (device.type == "cpu" and CPU_CHANNELS_LAST)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on `device` when `enabled` (see `precision`), else nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
