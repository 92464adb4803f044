"""Learning rate and momentum as pure functions of (epoch, step): rewinding and resuming need no replay."""
import math

import torch

from lottery_core.train.settings import TrainSettings


def lr_at(settings: TrainSettings, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
    """The learning rate of step `step` (0-based, within the epoch) of epoch `epoch` (0-based).

    Warm-up rises linearly, step by step, to `lr` at the end of epoch `warmup_epochs - 1`; then
    "step" multiplies by `gamma` for every milestone epoch <= `epoch`, and "cosine" follows
    lr * (1 + cos(pi * t)) / 2 with t the fraction of post-warm-up steps done; "onecycle" is
    torch's OneCycleLR (two phases, cosine annealing) evaluated at global step t.
    """
    s = settings
    t = epoch * steps_per_epoch + step  # global step
    if s.schedule == "onecycle":
        peak = s.lr
        start = peak / s.div_factor
        return _one_cycle(t, s, steps_per_epoch, start, peak, start / s.final_div_factor)
    warm = s.warmup_epochs * steps_per_epoch
    if t < warm:
        return s.lr * (t + 1) / warm
    if s.schedule == "cosine":
        span = max(1, s.epochs * steps_per_epoch - warm)
        return s.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (t - warm) / span)))
    return s.lr * s.gamma ** sum(epoch >= m for m in s.milestone_epochs())


def momentum_at(settings: TrainSettings, epoch: int, step: int = 0, steps_per_epoch: int = 1) -> float:
    """SGD momentum of a step: constant `momentum`, except under "onecycle", where it falls from
    `momentum` to `base_momentum` while the lr rises and comes back while it falls."""
    s = settings
    if s.schedule != "onecycle":
        return s.momentum
    t = epoch * steps_per_epoch + step
    return _one_cycle(t, s, steps_per_epoch, s.momentum, s.base_momentum, s.momentum)


def _one_cycle(t: int, s: TrainSettings, steps_per_epoch: int, start: float, peak: float, end: float) -> float:
    """OneCycleLR's two-phase cosine: start -> peak over steps 0..pct_start*T - 1, then peak -> end
    over the remaining steps to T - 1 (T = all steps), as torch.optim.lr_scheduler computes it."""
    total = s.epochs * steps_per_epoch
    rise_end = float(s.pct_start * total) - 1
    if t <= rise_end:
        a, b, pct = start, peak, t / rise_end if rise_end > 0 else 1.0
    else:
        a, b, pct = peak, end, (t - rise_end) / (total - 1 - rise_end)
    return b + (a - b) / 2.0 * (math.cos(math.pi * min(1.0, pct)) + 1)


class Schedule:
    """Sets the optimizer's learning rate (and momentum) before every step from `lr_at` and
    `momentum_at` (no internal counter
    to replay: `start(epoch)` jumps anywhere in the schedule, which is what rewinding needs).

    Exposes `state_dict()`/`load_state_dict()` like torch schedulers; the state is the position.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, settings: TrainSettings, steps_per_epoch: int):
        self.optimizer, self.settings, self.steps_per_epoch = optimizer, settings, steps_per_epoch
        self.epoch = self.step_in_epoch = 0
        self.last_lr = lr_at(settings, 0, 0, steps_per_epoch)

    def lr(self, epoch: int, step: int = 0) -> float:
        return lr_at(self.settings, epoch, step, self.steps_per_epoch)

    def set(self, epoch: int, step: int) -> float:
        """Put the lr (and momentum) of (epoch, step) into every parameter group; returns the lr."""
        self.epoch, self.step_in_epoch = epoch, step
        self.last_lr = lr = self.lr(epoch, step)
        momentum = momentum_at(self.settings, epoch, step, self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            if "momentum" in group:
                group["momentum"] = momentum
        return lr

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step_in_epoch, "steps_per_epoch": self.steps_per_epoch,
                "last_lr": self.last_lr}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.step_in_epoch, self.last_lr = state["epoch"], state["step"], state["last_lr"]
