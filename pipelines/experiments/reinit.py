"""reinit: a control with a ticket's architecture and freshly drawn random weights (Liu et al. 2019)."""
import torch

from pipelines import stages
from pipelines.context import RunContext
from pipelines.experiments.base import Trained

REINIT_SEED_OFFSET = 1_000_003  # fresh weights: a different stream than θ_0 of the same seed


def reinit(ctx: RunContext) -> Trained:
    theta_0 = stages.initial_model(ctx)
    plan = stages.plan_blocks(ctx, theta_0)                 # the architecture of the ticket ...
    torch.manual_seed(ctx.cfg.seed + REINIT_SEED_OFFSET)    # ... with new random weights
    ticket = stages.remove(ctx, stages.new_model(ctx), plan)
    ctx.save_weights(ticket, "theta_0")
    result = stages.train_model(ctx, ticket)
    return Trained(ticket, result, plan=plan)
