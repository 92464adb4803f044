"""The device a run computes on, resolved once and checked against this machine."""
import os
from pathlib import Path

import torch

from lottery_core.errors import LotteryError

NVIDIA_DRIVER_FILE = Path("/proc/driver/nvidia/version")   # present when the NVIDIA kernel driver is loaded


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda when available, else cpu; `cuda` / `cuda:N` only where torch sees that GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise LotteryError(f"device={name}: torch sees no CUDA GPU on this machine "
                               f"(torch {torch.__version__}); use device=cpu or device=auto")
        if device.index is not None and device.index >= count:
            raise LotteryError(f"device={name}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return device


def cuda_problem() -> str | None:
    """Why CUDA cannot be used by this process, in one line, or None when it can: what torch was
    built for, which NVIDIA driver is loaded, and which devices this process may see."""
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return None
    built = (f"torch {torch.__version__} built for CUDA {torch.version.cuda}" if torch.version.cuda
             else f"torch {torch.__version__} is a CPU-only build")
    return (f"CUDA is not available to this process ({built}; NVIDIA driver: {nvidia_driver()}; "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')})")


def nvidia_driver() -> str:
    """The loaded NVIDIA kernel driver's version line, or 'none loaded'."""
    try:
        first = NVIDIA_DRIVER_FILE.read_text().splitlines()[0]
    except (OSError, IndexError):
        return "none loaded"
    words = first.split()
    version = next((w for w in words if w[:1].isdigit() and "." in w), None)
    return version or first.strip()[:80]
