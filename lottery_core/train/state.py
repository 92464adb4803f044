"""What a training run shows its hooks after every epoch, and the record it returns."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn as nn

from lottery_core.train.schedule import Schedule
from lottery_core.train.settings import TrainSettings


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
