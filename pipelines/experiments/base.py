"""What a pipeline returns, and the hook with which dense runs keep their θ_i."""
from dataclasses import dataclass

import torch.nn as nn

from lottery_core.train import TrainResult


@dataclass
class Trained:
    """A trained network (ticket or dense), its training record and, for tickets, the pruning plan."""

    model: nn.Module
    result: TrainResult
    plan: object | None = None
    dense: object | None = None


class KeepWeights:
    """Epoch hook: save θ_i (the weights after i epochs) for every i in `epochs`."""

    def __init__(self, ctx, epochs: set[int]):
        self.ctx, self.epochs = ctx, epochs

    def on_epoch_end(self, epoch: int, metrics: dict, state) -> None:
        if epoch + 1 in self.epochs:
            self.ctx.save_weights(state.model, epoch + 1)
