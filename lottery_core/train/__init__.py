"""The training engine: SGD with step/cosine/one-cycle schedules, bf16 where native, learning-rate rewinding, exact resume.

    settings = TrainSettings(epochs=160, batch_size=128, lr=0.1)
    result = train(model, data, settings, seed=0, checkpoint_dir="ckpt/dense")   # resumes if it can
    result = train(ticket, data, settings, seed=0, start_epoch=i)                # Algorithm 1 rewinding
    result.history[-1]["test_acc"], result.total_time_s

Hooks are any objects with `on_epoch_end(epoch, metrics, state)` (see `EpochHook`).
"""
from lottery_core.train.checkpoint import (
    architecture_fingerprint,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_latest,
    save_checkpoint,
)
from lottery_core.train.loop import EpochHook, TrainResult, TrainState, cpus_given, train
from lottery_core.train.precision import cpu_has_native_bf16
from lottery_core.train.schedule import Schedule, lr_at, momentum_at
from lottery_core.train.settings import SCHEDULES, TrainSettings

__all__ = [
    "SCHEDULES", "EpochHook", "Schedule", "TrainResult", "TrainSettings", "TrainState",
    "architecture_fingerprint", "checkpoint_path", "cpu_has_native_bf16", "cpus_given", "latest_checkpoint",
    "list_checkpoints", "load_checkpoint", "load_latest", "lr_at", "momentum_at", "save_checkpoint",
    "train",
]
