"""The training loop: SGD over batches held on the device, a checkpoint and hooks every epoch.

    result = train(model, data, TrainSettings(epochs=160), seed=0, checkpoint_dir="ckpt/run1")
    result = train(ticket, data, settings, seed=0, start_epoch=i)   # rewinding (Algorithm 1)

Speed: no host-device synchronisation inside an epoch on GPUs (loss and accuracy are summed
on the device, non-finite losses checked every `NONFINITE_CHECK_EVERY` steps), gradients set to
None instead of zeroed, foreach SGD, channels_last, bf16 autocast where the device computes bf16
natively (CUDA; CPUs with avx512_bf16/amx_bf16: `precision`), cudnn.benchmark on CUDA, torch
threads = the CPUs this process was given.
"""
import contextlib
import hashlib
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn as nn
import torch.nn.functional as F

from lottery_core.data import ImageData, eval_batches, num_batches, train_batches
from lottery_core.errors import LotteryError
from lottery_core.train import checkpoint as ckpt
from lottery_core.train.precision import precision
from lottery_core.train.schedule import Schedule
from lottery_core.train.settings import TrainSettings

CPU_CHANNELS_LAST = True      # oneDNN convolutions: ~1.3x faster training here (benchmarks/engine_throughput)
NONFINITE_CHECK_EVERY = 50    # steps between non-finite checks on GPUs (CPU checks every step: it is free)
EVAL_BATCH = 500


@runtime_checkable
class EpochHook(Protocol):
    """Called after every epoch, once its checkpoint is written (`epoch` counts from 0)."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], state: "TrainState") -> None: ...


@dataclass
class TrainState:
    """What a hook sees: the live model, optimizer and schedule, the epoch just finished (0-based),
    the checkpoint written after it (None without a checkpoint_dir) and the metrics so far."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Schedule
    settings: TrainSettings
    device: torch.device
    epoch: int = -1
    checkpoint_path: Path | None = None
    history: list[dict] = field(default_factory=list)

    @property
    def checkpoint(self) -> Path | None:
        return self.checkpoint_path


@dataclass(frozen=True)
class TrainResult:
    """The record of a training run.

    history: one metrics dict per trained epoch (epochs start_epoch..epochs-1, including those
    trained before a resume). total_time_s: sum of the epochs' wall times (training, evaluation,
    checkpoint), across resumes. wall_time_s: this call, end to end. resumed_from_epoch: epochs
    already done by the checkpoint this call resumed from (None for a fresh start).
    warnings: messages also issued with `warnings.warn` (e.g. a corrupt checkpoint skipped).
    """

    history: list[dict]
    total_time_s: float
    epoch_times_s: list[float]
    final: dict
    resumed_from_epoch: int | None = None
    warnings: tuple[str, ...] = ()
    checkpoint: str | None = None
    wall_time_s: float = 0.0


def train(model: nn.Module, data: ImageData, settings: TrainSettings, *, seed: int = 0, start_epoch: int = 0,
          checkpoint_dir: str | os.PathLike | None = None, hooks=(), device=None) -> TrainResult:
    """Train `model` in place for epochs start_epoch..settings.epochs-1 and return the record.

    start_epoch = i rewinds the learning rate: the schedule is entered at epoch i and epoch e
    sees the same batches as epoch e of a full run (the data order is a function of (seed, e)).
    With `checkpoint_dir`, a checkpoint is written after every epoch and, if the folder already
    holds one, training resumes from it exactly (a checkpoint of another architecture, seed or
    result-changing setting is refused; a corrupt newest one is skipped with a warning).
    `device` defaults to the model's. Per-epoch metrics: epoch, lr, train_loss, train_acc,
    test_loss, test_acc (val_loss, val_acc with a validation split; test_top5 with >= 100
    classes), epoch_time_s, train_time_s, eval_time_s, checkpoint_time_s, images_per_s, steps.
    """
    if not isinstance(settings, TrainSettings):
        raise LotteryError(f"settings must be a TrainSettings, got {type(settings).__name__}")
    if not isinstance(start_epoch, int) or not 0 <= start_epoch < settings.epochs:
        raise LotteryError(f"start_epoch must be an integer in 0..{settings.epochs - 1}, got {start_epoch!r}")
    hooks = tuple(hooks)
    for hook in hooks:
        if not callable(getattr(hook, "on_epoch_end", None)):
            raise LotteryError(f"hook {hook!r} has no on_epoch_end(epoch, metrics, state) method")
    began = time.perf_counter()
    device = torch.device(device) if device is not None else _model_device(model)
    with _runtime(settings, device):
        model.to(device)
        channels_last = _use_channels_last(settings, device, model)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                    nesterov=settings.nesterov, weight_decay=settings.weight_decay)
        steps = num_batches(len(data.train_labels), settings.batch_size)
        schedule = Schedule(optimizer, settings, steps)
        state = TrainState(model, optimizer, schedule, settings, device, epoch=start_epoch - 1)
        run_identity = {"settings": settings.result_fields(), "seed": int(seed), "start_epoch": start_epoch,
                        "data": _data_fingerprint(data), "precision": precision(device, settings.amp)}
        fingerprint = ckpt.architecture_fingerprint(model)
        messages: list[str] = []
        resumed = None
        if checkpoint_dir is not None:
            saved, path, messages = ckpt.load_latest(checkpoint_dir, map_location="cpu")
            for message in messages:
                warnings.warn(message, RuntimeWarning, stacklevel=2)
            if saved is not None:
                _check_compatible(saved, path, model, fingerprint, run_identity)
                _restore(saved, model, optimizer, schedule)
                state.history, state.epoch, state.checkpoint_path = list(saved["history"]), saved["epoch"] - 1, path
                resumed = saved["epoch"]
        forward = torch.compile(model) if settings.compile else model
        amp = precision(device, settings.amp) == "bf16"
        for epoch in range(state.epoch + 1, settings.epochs):
            metrics = _train_epoch(forward, model, data, settings, schedule, optimizer, seed, epoch, device,
                                   channels_last, amp, checkpoint_dir)
            tick = time.perf_counter()
            if (epoch + 1 - start_epoch) % settings.eval_every == 0 or epoch + 1 == settings.epochs:
                metrics.update(_evaluate_splits(forward, model, data, device, channels_last, amp))
            metrics["eval_time_s"] = time.perf_counter() - tick
            state.epoch = epoch
            state.history.append(metrics)
            # the checkpoint's copy of this epoch's metrics cannot hold its own writing time
            metrics["checkpoint_time_s"] = 0.0
            metrics["epoch_time_s"] = metrics["train_time_s"] + metrics["eval_time_s"]
            tick = time.perf_counter()
            if checkpoint_dir is not None:
                state.checkpoint_path = ckpt.save_checkpoint(checkpoint_dir, {
                    "epoch": epoch + 1, "model": _cpu_state(model.state_dict()),
                    "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
                    "rng": ckpt.rng_states(), "history": state.history, "fingerprint": fingerprint,
                    "architecture": ckpt.architecture(model), "identity": run_identity,
                    "settings": settings.as_dict()}, epoch + 1)
            metrics["checkpoint_time_s"] = time.perf_counter() - tick
            metrics["epoch_time_s"] = metrics["train_time_s"] + metrics["eval_time_s"] + metrics["checkpoint_time_s"]
            for hook in hooks:
                hook.on_epoch_end(epoch, dict(metrics), state)
    history = state.history
    if not history:
        raise LotteryError("no epoch was trained and no checkpoint holds any (internal error)")
    times = [float(m.get("epoch_time_s", 0.0)) for m in history]
    return TrainResult(history=history, total_time_s=sum(times), epoch_times_s=times, final=dict(history[-1]),
                       resumed_from_epoch=resumed, warnings=tuple(messages),
                       checkpoint=str(state.checkpoint_path) if state.checkpoint_path else None,
                       wall_time_s=time.perf_counter() - began)


def _train_epoch(forward, model, data, settings, schedule, optimizer, seed, epoch, device, channels_last, amp,
                 checkpoint_dir) -> dict:
    model.train()
    began = time.perf_counter()
    steps = schedule.steps_per_epoch
    losses = torch.zeros(steps, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    check_every = 1 if device.type == "cpu" else NONFINITE_CHECK_EVERY
    lr = schedule.set(epoch, 0)
    batches = train_batches(data, settings.batch_size, seed, epoch, augment=settings.augment, device=device,
                            channels_last=channels_last)
    for step, (x, y) in enumerate(batches):
        schedule.set(epoch, step)
        with _autocast(device, amp):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=settings.label_smoothing)
        losses[step] = loss.detach()
        if (step + 1) % check_every == 0 or step + 1 == steps:
            _check_finite(losses, step, epoch, steps, checkpoint_dir)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_time = time.perf_counter() - began
    return {"epoch": epoch, "lr": lr, "train_loss": float(losses.mean()), "train_acc": 100.0 * int(correct) / seen,
            "train_time_s": train_time, "images_per_s": seen / train_time, "steps": steps}


def _check_finite(losses: torch.Tensor, step: int, epoch: int, steps: int, checkpoint_dir) -> None:
    done = losses[: step + 1]
    if bool(torch.isfinite(done).all()):
        return
    bad = int((~torch.isfinite(done)).nonzero()[0])
    last = ckpt.latest_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written"
    raise LotteryError(f"non-finite training loss ({float(done[bad])}) at epoch {epoch}, step {bad} of {steps} "
                       f"(both from 0); {kept}; try a lower learning rate")


@torch.no_grad()
def _evaluate_splits(forward, model, data, device, channels_last, amp) -> dict:
    out = {}
    model.eval()
    try:
        for split in ("test", "val"):
            images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
            if len(labels) == 0:
                continue
            loss = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            correct5 = torch.zeros((), dtype=torch.int64, device=device)
            top5 = data.num_classes >= 100
            for x, y in eval_batches(images, labels, data.mean, data.std, EVAL_BATCH, device, channels_last):
                with _autocast(device, amp):
                    logits = forward(x)
                logits = logits.float()
                loss += F.cross_entropy(logits, y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
                if top5:
                    correct5 += (logits.topk(5, 1).indices == y[:, None]).any(1).sum()
            n = len(labels)
            out[f"{split}_loss"] = float(loss) / n
            out[f"{split}_acc"] = 100.0 * int(correct) / n
            if top5:
                out[f"{split}_top5"] = 100.0 * int(correct5) / n
    finally:
        model.train()
    return out


def _check_compatible(saved: dict, path: Path, model: nn.Module, fingerprint: str, identity: dict) -> None:
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


def _restore(saved: dict, model: nn.Module, optimizer, schedule: Schedule) -> None:
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["scheduler"])
    ckpt.set_rng_states(saved["rng"])


def _cpu_state(state: dict) -> dict:
    return {k: v.detach().cpu() for k, v in state.items()}


def _data_fingerprint(data: ImageData) -> str:
    """Name, split sizes and a digest of the training labels: enough to notice other data."""
    labels = data.train_labels.detach().cpu().contiguous().numpy().tobytes()
    s = data.sizes()
    return f"{data.name}:{s['train']}/{s['val']}/{s['test']}:{hashlib.sha256(labels).hexdigest()[:12]}"


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _use_channels_last(settings: TrainSettings, device: torch.device, model: nn.Module) -> bool:
    if not any(p.dim() == 4 for p in model.parameters()):
        return False
    if settings.channels_last is not None:
        return settings.channels_last
    return device.type == "cuda" or (device.type == "cpu" and CPU_CHANNELS_LAST)


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


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
def _runtime(settings: TrainSettings, device: torch.device):
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
