"""ticket_rewind (Algorithm 1): score the trained dense network, remove p blocks, rewind to θ_i."""
from lottery_core import surgery
from pipelines import steps
from pipelines.context import RunContext
from pipelines.experiments.base import Trained


def ticket_rewind(ctx: RunContext) -> Trained:
    i = ctx.cfg.pruning.rewind_epoch
    trained, dense = steps.trained_dense(ctx)              # 1. θ_n of a finished dense run (reused)
    plan = steps.plan_blocks(ctx, trained)                 # 2. score the trained blocks
    ticket = steps.remove(ctx, trained, plan)              # 3. remove the p lowest → F′
    surgery.rewind_to(ticket, steps.dense_weights(ctx, dense, i))  # 4. weights ← θ_i
    ctx.save_weights(ticket, i)
    result = steps.train_model(ctx, ticket, start_epoch=i)  # 5. lr schedule from epoch i; n − i epochs
    return Trained(ticket, result, plan=plan, dense=dense)
