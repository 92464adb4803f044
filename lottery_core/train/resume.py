"""Resuming exactly: what a checkpoint must match to be resumed, and restoring the state it holds."""
import hashlib
from pathlib import Path

import torch.nn as nn

from lottery_core.data import ImageData
from lottery_core.errors import LotteryError
from lottery_core.train import checkpoint as ckpt
from lottery_core.train.schedule import Schedule


def check_compatible(saved: dict, path: Path, model: nn.Module, fingerprint: str, identity: dict) -> None:
    """Refuse a checkpoint of another architecture, seed, start epoch, precision, result-changing
    setting or data: the message names what differs and what to do."""
    if saved.get("fingerprint") != fingerprint:
        diff = ckpt.architecture_difference(saved.get("architecture", []), model)
        raise LotteryError(f"checkpoint {path} is from a different architecture ({diff}); refusing to resume "
                           f"from it: use another checkpoint_dir or delete {path.parent}")
    theirs = saved.get("identity", {})
    for key in ("seed", "start_epoch", "precision"):
        if theirs.get(key) != identity[key]:
            raise LotteryError(f"checkpoint {path} was written with {key}={theirs.get(key)}, this run has "
                               f"{key}={identity[key]}; use another checkpoint_dir or delete {path.parent}")
    for key, value in identity["settings"].items():
        if theirs.get("settings", {}).get(key) != value:
            raise LotteryError(f"checkpoint {path} was written with {key}={theirs.get('settings', {}).get(key)!r}, "
                               f"this run has {key}={value!r}; use another checkpoint_dir or delete {path.parent}")
    if theirs.get("data") != identity["data"]:
        raise LotteryError(f"checkpoint {path} was written for other data ({theirs.get('data')} vs "
                           f"{identity['data']}); use another checkpoint_dir or delete {path.parent}")


def restore(saved: dict, model: nn.Module, optimizer, schedule: Schedule) -> None:
    """Weights, optimizer, schedule and RNG states as the checkpoint holds them."""
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["scheduler"])
    ckpt.set_rng_states(saved["rng"])


def cpu_state(state: dict) -> dict:
    """A state dict with every tensor detached and copied to the CPU (what a checkpoint stores)."""
    return {k: v.detach().cpu() for k, v in state.items()}


def data_fingerprint(data: ImageData) -> str:
    """Name, split sizes and a digest of the training labels: enough to notice other data."""
    labels = data.train_labels.detach().cpu().contiguous().numpy().tobytes()
    s = data.sizes()
    return f"{data.name}:{s['train']}/{s['val']}/{s['test']}:{hashlib.sha256(labels).hexdigest()[:12]}"
