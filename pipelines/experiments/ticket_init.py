"""ticket_init (Algorithm 2): score at θ_0, remove the p lowest blocks, train n epochs."""
from pipelines import steps
from pipelines.context import RunContext
from pipelines.experiments.base import Trained


def ticket_init(ctx: RunContext) -> Trained:
    theta_0 = steps.initial_model(ctx)                     # the dense network is never trained
    plan = steps.plan_blocks(ctx, theta_0)                 # 1. score every removable block
    ticket = steps.remove(ctx, theta_0, plan)              # 2. remove the p lowest → F′ (θ_0 kept)
    ctx.save_weights(ticket, 0)                             # the ticket's θ_0, for the record
    result = steps.train_model(ctx, ticket)                # 3. train F′ for n epochs
    return Trained(ticket, result, plan=plan)
