"""The device a run computes on, resolved once and checked against this machine."""
import torch

from lottery_core.errors import LotteryError


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
