"""ticket_init (Algorithm 2): score at θ_0, remove the p lowest blocks, train n epochs."""
from pipelines import stages
from pipelines.context import RunContext
from pipelines.experiments.base import Trained


def ticket_init(ctx: RunContext) -> Trained:
    theta_0 = stages.initial_model(ctx)                     # the dense network is never trained
    plan = stages.plan_blocks(ctx, theta_0)                 # 1. score every removable block
    ticket = stages.remove(ctx, theta_0, plan)              # 2. remove the p lowest → F′ (θ_0 kept)
    ctx.save_weights(ticket, 0)                             # the ticket's θ_0, for the record
    result = stages.train_model(ctx, ticket)                # 3. train F′ for n epochs
    return Trained(ticket, result, plan=plan)


def needs_trained_dense(pruning) -> bool:
    """Never: it plans at θ_0 (its comparison with the dense run is made once both have finished)."""
    return False
