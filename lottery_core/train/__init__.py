"""The training engine: SGD with step/cosine/one-cycle schedules, bf16 where native, learning-rate rewinding, exact resume.

    settings = TrainSettings(epochs=160, batch_size=128, lr=0.1)
    result = train(model, data, settings, seed=0, checkpoint_dir="ckpt/dense")   # resumes if it can
    result = train(ticket, data, settings, seed=0, start_epoch=i)                # Algorithm 1 rewinding
    result.history[-1]["test_acc"], result.total_time_s

Hooks are any objects with `on_epoch_end(epoch, metrics, state)` (see `EpochHook`).
"""
from lottery_core.lazy import lazy_attributes
from lottery_core.train.settings import SCHEDULES, TrainSettings

# name -> the module that defines it, imported on first use: `settings` is torch-free (the run
# config validates against its declarations before torch is imported), the rest is not
_LAZY = {
    "architecture_fingerprint": "checkpoint", "checkpoint_path": "checkpoint", "latest_checkpoint": "checkpoint",
    "list_checkpoints": "checkpoint", "load_checkpoint": "checkpoint", "load_latest": "checkpoint",
    "save_checkpoint": "checkpoint", "EpochHook": "loop", "TrainResult": "loop", "TrainState": "loop",
    "cpus_given": "loop", "train": "loop", "cpu_has_native_bf16": "precision", "Schedule": "schedule",
    "lr_at": "schedule", "momentum_at": "schedule",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "SCHEDULES", "EpochHook", "Schedule", "TrainResult", "TrainSettings", "TrainState",
    "architecture_fingerprint", "checkpoint_path", "cpu_has_native_bf16", "cpus_given", "latest_checkpoint",
    "list_checkpoints", "load_checkpoint", "load_latest", "lr_at", "momentum_at", "save_checkpoint",
    "train",
]
