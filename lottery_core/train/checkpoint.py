"""Checkpoints of a training run: one file per finished epoch, written atomically, verifiable.

`<dir>/epoch-0003.pt` is the state after 3 epochs: model, optimizer, schedule, every RNG state
(torch CPU and CUDA, python, numpy; the data order needs none, it is a function of
(seed, epoch)), the metrics so far, the settings and an architecture fingerprint. Only plain
tensors, dicts, lists and numbers are stored, so `torch.load(path, weights_only=True)` reads it.
Each file is written to a temporary name, fsynced and renamed into place; a sidecar
`epoch-0003.pt.sha256` holds its digest, so truncation and bit rot are both detected. The last
two checkpoints are kept.
"""
import hashlib
import io
import os
import random
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from lottery_core.errors import LotteryError, first_line
from lottery_core.files import write_atomic

FORMAT = 1
KEEP = 2
_NAME = re.compile(r"^epoch-(\d+)\.pt$")


def checkpoint_path(directory: str | os.PathLike, epoch: int) -> Path:
    """Where the state after `epoch` finished epochs is kept."""
    return Path(directory) / f"epoch-{epoch:04d}.pt"


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """(epochs done, path) of every checkpoint file in `directory`, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), directory / name) for name in os.listdir(directory) if (m := _NAME.match(name))]
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The newest checkpoint file in `directory` (not verified: see `load_checkpoint`), or None."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read and verify one checkpoint. Raises `LotteryError` if it is truncated or corrupt."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LotteryError(f"cannot read checkpoint {path}: {err.strerror}") from None
    digest_file = path.with_name(path.name + ".sha256")
    if digest_file.exists():
        expected = digest_file.read_text().split()[0] if digest_file.read_text().strip() else ""
        if hashlib.sha256(data).hexdigest() != expected:
            raise LotteryError(f"checkpoint {path} is corrupt or truncated (its SHA-256 does not match {digest_file.name})")
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:
        reason = first_line(err, 120)
        raise LotteryError(f"checkpoint {path} is corrupt or truncated ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "model" not in state:
        raise LotteryError(f"{path} is not a lottery_core training checkpoint (format {FORMAT})")
    return state


def load_latest(directory: str | os.PathLike, map_location="cpu") -> tuple[dict | None, Path | None, list[str]]:
    """The newest readable checkpoint: (state, path, warnings). Unreadable newer files are skipped,
    each with a warning message; (None, None, warnings) when there is none."""
    messages = []
    for _, path in reversed(list_checkpoints(directory)):
        try:
            return load_checkpoint(path, map_location), path, messages
        except LotteryError as err:
            messages.append(f"{err}; falling back to the previous checkpoint")
    if messages:
        messages[-1] = messages[-1].replace("falling back to the previous checkpoint",
                                            "no readable checkpoint left: training starts from the beginning")
    return None, None, messages


def save_checkpoint(directory: str | os.PathLike, state: dict, epoch: int, keep: int = KEEP) -> Path:
    """Write `state` as the checkpoint after `epoch` epochs (atomically), then keep only the
    `keep` newest epochs up to this one (files of later epochs, from an abandoned past, go too)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(directory, epoch)
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    data = buffer.getbuffer()
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(path.with_name(path.name + ".sha256"), f"{digest}  {path.name}\n".encode())
    write_atomic(path, data)
    older = [p for e, p in list_checkpoints(directory) if e < epoch][-(keep - 1):] if keep > 1 else []
    for _, other in list_checkpoints(directory):
        if other != path and other not in older:
            other.unlink(missing_ok=True)
            other.with_name(other.name + ".sha256").unlink(missing_ok=True)
    return path


def architecture(model: nn.Module) -> list[list]:
    """[name, shape, dtype] of every parameter and buffer: what must match to load a state."""
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()]


def architecture_fingerprint(model: nn.Module) -> str:
    """16 hex digits of a SHA-256 over the model's class and `architecture(model)`."""
    text = type(model).__qualname__ + repr(architecture(model))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def architecture_difference(saved: list[list], model: nn.Module) -> str:
    """The first difference between a saved architecture and `model`'s, in words."""
    mine = {k: (shape, dtype) for k, shape, dtype in architecture(model)}
    theirs = {k: (shape, dtype) for k, shape, dtype in saved}
    for key in theirs:
        if key not in mine:
            return f"it has {key!r}, the model does not"
    for key in mine:
        if key not in theirs:
            return f"the model has {key!r}, it does not"
    for key, value in theirs.items():
        if value != mine[key]:
            return f"{key!r} is {value[0]} {value[1]} there, {mine[key][0]} {mine[key][1]} here"
    return "the model class differs"


def rng_states() -> dict:
    """Every global RNG state, as plain tensors and numbers."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "python": [version, list(internal), gauss],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
    }


def set_rng_states(states: dict) -> None:
    """Restore what `rng_states` recorded (CUDA states only when this machine has the same GPUs)."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and torch.cuda.device_count() == len(states["cuda"]):
        torch.cuda.set_rng_state_all(states["cuda"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))


