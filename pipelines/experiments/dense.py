"""dense: train the unpruned network; keep θ_0 and the weights of the rewind epochs."""
from pipelines import steps
from pipelines.context import RunContext
from pipelines.experiments.base import KeepWeights, Trained


def dense(ctx: RunContext) -> Trained:
    model = steps.initial_model(ctx)                       # θ_0
    keep = {e for e in ctx.cfg.training.keep_epochs if e < ctx.cfg.training.epochs}
    if 0 in keep:
        ctx.save_weights(model, 0)
    result = steps.train_model(ctx, model, extra_hooks=[KeepWeights(ctx, keep)])
    return Trained(model, result)
