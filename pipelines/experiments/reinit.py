"""reinit: a ticket's architecture with freshly drawn random weights, trained from scratch for the
full n epochs (Liu et al. 2019, "Rethinking the value of network pruning").

`pruning.reinit_of` says whose architecture: "ticket_init" plans at θ_0 (Algorithm 2's ticket),
"ticket_rewind" plans on the trained dense network θ_n (Algorithm 1's ticket, the control the
paper names). The architecture of a rewind ticket does not depend on the rewind point i (it is
planned on θ_n), so one reinit control serves every column of Table 1.
"""
from pipelines import steps
from pipelines.context import RunContext
from pipelines.experiments.base import Trained

REINIT_SEED_OFFSET = 1_000_003  # fresh weights: a different stream than θ_0 of the same seed


def reinit(ctx: RunContext) -> Trained:
    if ctx.cfg.pruning.reinit_of == "ticket_rewind":
        source, dense = steps.trained_dense(ctx)           # the architecture of Algorithm 1's ticket ...
    else:
        source, dense = steps.initial_model(ctx), None     # ... or of Algorithm 2's
    plan = steps.plan_blocks(ctx, source)
    fresh = steps.new_model(ctx, seed=ctx.cfg.seed + REINIT_SEED_OFFSET)   # ... with new random weights
    ticket = steps.remove(ctx, fresh, plan)
    ctx.save_weights(ticket, 0)
    result = steps.train_model(ctx, ticket)                # n epochs from epoch 0
    return Trained(ticket, result, plan=plan, dense=dense)
