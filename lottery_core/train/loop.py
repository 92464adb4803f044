"""The training loop: SGD over batches held on the device, a checkpoint and hooks every epoch.

    result = train(model, data, TrainSettings(epochs=160), seed=0, checkpoint_dir="ckpt/run1")
    result = train(ticket, data, settings, seed=0, start_epoch=i)   # rewinding (Algorithm 1)

Speed: no host-device synchronisation inside an epoch on GPUs (loss and accuracy are summed
on the device, non-finite losses checked every `epoch.NONFINITE_CHECK_EVERY` steps), gradients set
to None instead of zeroed, foreach SGD, channels_last, bf16 autocast where the device computes bf16
natively (CUDA; CPUs with avx512_bf16/amx_bf16: `precision`), cudnn.benchmark on CUDA, torch
threads = the CPUs this process was given (`runtime`).

One job per file: this one orders an epoch's work (`epoch`: the SGD steps and the evaluation;
`checkpoint`: the files; `resume`: what a checkpoint must match; `state`: what hooks see and the
record returned; `runtime`: device, threads, memory format).
"""
import os
import time
import warnings

import torch
import torch.nn as nn

from lottery_core.data import ImageData, num_batches
from lottery_core.errors import LotteryError
from lottery_core.train import checkpoint as ckpt
from lottery_core.train.epoch import evaluate_splits, train_epoch
from lottery_core.train.precision import precision
from lottery_core.train.resume import check_compatible, cpu_state, data_fingerprint, restore
from lottery_core.train.runtime import cpus_given, model_device, runtime, use_channels_last
from lottery_core.train.schedule import Schedule
from lottery_core.train.settings import TrainSettings
from lottery_core.train.state import EpochHook, TrainResult, TrainState

__all__ = ["EpochHook", "TrainResult", "TrainState", "cpus_given", "train"]


def train(model: nn.Module, data: ImageData, settings: TrainSettings, *, seed: int = 0, start_epoch: int = 0,
          checkpoint_dir: str | os.PathLike | None = None, hooks=(), device=None) -> TrainResult:
    """Train `model` in place for epochs start_epoch..settings.epochs-1 and return the record.

    start_epoch = i rewinds the learning rate: the schedule is entered at epoch i and epoch e
    sees the same batches as epoch e of a full run (the data order is a function of (seed, e)).
    With `checkpoint_dir`, a checkpoint is written after every epoch and, if the folder already
    holds one, training resumes from it exactly (a checkpoint of another architecture, seed or
    result-changing setting is refused; a corrupt newest one is skipped with a warning).
    `device` defaults to the model's. Per-epoch metrics: epoch, lr, train_loss, train_acc,
    test_loss, test_acc, test_top5 (val_loss, val_acc, val_top5 with a validation split; the top-5
    ones with >= 5 classes, as `lottery_core.evaluate`), epoch_time_s, train_time_s, eval_time_s,
    checkpoint_time_s, images_per_s, steps.
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
    device = torch.device(device) if device is not None else model_device(model)
    with runtime(settings, device):
        model.to(device)
        channels_last = use_channels_last(settings, device, model)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                    nesterov=settings.nesterov, weight_decay=settings.weight_decay)
        steps = num_batches(len(data.train_labels), settings.batch_size)
        schedule = Schedule(optimizer, settings, steps)
        state = TrainState(model, optimizer, schedule, settings, device, epoch=start_epoch - 1)
        run_identity = {"settings": settings.result_fields(), "seed": int(seed), "start_epoch": start_epoch,
                        "data": data_fingerprint(data), "precision": precision(device, settings.amp)}
        fingerprint = ckpt.architecture_fingerprint(model)
        messages: list[str] = []
        resumed = None
        if checkpoint_dir is not None:
            saved, path, messages = ckpt.load_latest(checkpoint_dir, map_location="cpu")
            for message in messages:
                warnings.warn(message, RuntimeWarning, stacklevel=2)
            if saved is not None:
                check_compatible(saved, path, model, fingerprint, run_identity)
                restore(saved, model, optimizer, schedule)
                state.history, state.epoch, state.checkpoint_path = list(saved["history"]), saved["epoch"] - 1, path
                resumed = saved["epoch"]
        forward = torch.compile(model) if settings.compile else model
        amp = precision(device, settings.amp) == "bf16"
        for epoch in range(state.epoch + 1, settings.epochs):
            metrics = train_epoch(forward, model, data, settings, schedule, optimizer, seed, epoch, device,
                                   channels_last, amp, checkpoint_dir)
            tick = time.perf_counter()
            if (epoch + 1 - start_epoch) % settings.eval_every == 0 or epoch + 1 == settings.epochs:
                metrics.update(evaluate_splits(forward, model, data, device, channels_last, amp))
            metrics["eval_time_s"] = time.perf_counter() - tick
            state.epoch = epoch
            state.history.append(metrics)
            # the checkpoint's copy of this epoch's metrics cannot hold its own writing time
            metrics["checkpoint_time_s"] = 0.0
            metrics["epoch_time_s"] = metrics["train_time_s"] + metrics["eval_time_s"]
            tick = time.perf_counter()
            if checkpoint_dir is not None:
                state.checkpoint_path = ckpt.save_checkpoint(checkpoint_dir, {
                    "epoch": epoch + 1, "model": cpu_state(model.state_dict()),
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
