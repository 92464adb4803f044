"""The steps every pipeline is made of: θ_0, scoring, surgery, training, dense lookup.

Each is a short function over a `RunContext`, so a pipeline reads like the paper's algorithm.
"""
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn

from lottery_core import criteria, models, surgery
from lottery_core.criteria import controls
from lottery_core.errors import LotteryError
from lottery_core.train import TrainResult, TrainSettings, train
from pipelines import layout
from pipelines.context import RunContext
from pipelines.tracking import IMPORTED_TAG, finished_run


def new_model(ctx: RunContext, seed: int | None = None) -> nn.Module:
    """The configured dense architecture on the device, initialised from `seed` (None: from torch's
    current RNG state, for a model whose weights are loaded next)."""
    m = ctx.cfg.model
    return models.build(m.name, num_classes=ctx.data.num_classes, seed=seed, **m.builder_options()).to(ctx.device)


def initial_model(ctx: RunContext) -> nn.Module:
    """θ_0: the dense network initialised from the run's seed (identical for a ticket and its dense run)."""
    return new_model(ctx, seed=ctx.cfg.seed)


def scoring_batches(ctx: RunContext):
    """The seeded, class-balanced scoring images (pruning.images_per_class per class); under a control
    that acts on the scoring data (shuffled_labels, random_inputs), as it changes them, drawn by (seed, draw)."""
    d, p = ctx.data, ctx.cfg.pruning
    batches = criteria.scoring_batches(d.train_images, d.train_labels, p.images_per_class,
                                       seed=ctx.cfg.seed, mean=d.mean, std=d.std, device=ctx.device)
    control = criteria.get_control(p.control)
    if control is not None and control.acts_on == "scoring_data":
        return control.fn(batches, draw_seed(ctx))
    return batches


def draw_seed(ctx: RunContext) -> int:
    """The seed of this run's random draw: a function of (seed, pruning.draw)."""
    return controls.draw_seed(ctx.cfg.seed, ctx.cfg.pruning.draw)


def criterion_options(ctx: RunContext) -> dict:
    return {**ctx.cfg.pruning.criterion_options(), "seed": draw_seed(ctx)}   # options the config validated


def block_scores(ctx: RunContext, model: nn.Module, batches=None) -> dict[str, float]:
    """Every removable block's score under the configured criterion and its options (higher = keep),
    on `batches` (default: this run's `scoring_batches`)."""
    p = ctx.cfg.pruning
    return criteria.score_blocks(model, p.criterion, scoring_batches(ctx) if batches is None else batches,
                                 aggregate=p.aggregate, min_blocks_per_stage=p.min_blocks_per_stage,
                                 **criterion_options(ctx))


def plan_blocks(ctx: RunContext, model: nn.Module):
    """Which blocks go: the criterion's p lowest, or as the configured control changes that
    (`lottery_core.criteria.control_registry`: its `acts_on`).

    The plan is logged as `plan.json` (every block's score, the control, per-stage counts)."""
    p = ctx.cfg.pruning
    control = criteria.get_control(p.control)        # None: the criterion's p lowest
    acts_on = control.acts_on if control is not None else None
    if acts_on == "blocks":                           # no criterion: the control names the blocks
        removed = control.fn(model, p.p, p.min_blocks_per_stage)
        plan = criteria.Plan(criterion=control.name, p=p.p, removed=removed, scores={},
                             min_blocks_per_stage=p.min_blocks_per_stage,
                             kept=[b for b in surgery.removable_blocks(model, p.min_blocks_per_stage)
                                   if b not in removed])
    else:
        scores = block_scores(ctx, model)
        chosen = control.fn(scores) if acts_on == "scores" else scores
        plan = criteria.select_blocks(chosen, p.p, model=model, min_blocks_per_stage=p.min_blocks_per_stage,
                                      criterion=p.criterion, stage_counts=p.stage_counts or None)
        removed = plan.removed
        if acts_on == "choice":                       # another choice of the same shape
            removed = control.fn(plan.removed, model, draw_seed(ctx), p.min_blocks_per_stage)
        plan = replace(plan, scores=dict(scores), removed=removed, kept=[b for b in scores if b not in removed])
    counts = controls.stage_counts(plan.removed, model)
    ctx.log_json({**plan.to_dict(), "control": p.control, "stage_counts": counts}, "plan.json")
    ctx.set_tags({"removed_blocks": ",".join(plan.removed) or "none",
                  "stage_counts": "/".join(str(n) for n in counts.values())})   # stages in order
    return plan


def remove(ctx: RunContext, model: nn.Module, plan) -> nn.Module:
    """The block ticket: a new, physically shallower network with the kept weights of `model`."""
    return surgery.remove_blocks(model, plan.removed, ctx.cfg.pruning.min_blocks_per_stage)


def settings(ctx: RunContext) -> TrainSettings:
    return ctx.cfg.training.settings(threads=ctx.cfg.threads)


def train_model(ctx: RunContext, model: nn.Module, start_epoch: int = 0, extra_hooks=(), *,
                checkpoint_dir: Path | None = None, hooks: tuple | None = None) -> TrainResult:
    """Train epochs start_epoch..n-1 (start_epoch = i rewinds the schedule), checkpointing each epoch
    into `checkpoint_dir` (default: the run's); `hooks` replace the run's own (`ctx.hooks`)."""
    return train(model, ctx.data, settings(ctx), seed=ctx.cfg.seed, start_epoch=start_epoch,
                 checkpoint_dir=ctx.checkpoint_dir if checkpoint_dir is None else checkpoint_dir,
                 hooks=(*(ctx.hooks if hooks is None else hooks), *extra_hooks), device=ctx.device)


@dataclass(frozen=True)
class DenseRun:
    """A finished dense run found through MLflow: its run id and final metrics."""

    run_id: str
    identity: str
    metrics: dict
    imported: bool = False   # created from a record (`pipelines.records`): metrics, no weights


def find_dense(ctx: RunContext) -> DenseRun | None:
    """The finished dense run this ticket compares against (same seed, model, data, training)."""
    identity = ctx.cfg.dense().identity()
    run = finished_run(ctx.client, ctx.experiment_id, identity)
    return None if run is None else DenseRun(run.info.run_id, identity, dict(run.data.metrics),
                                             imported=IMPORTED_TAG in run.data.tags)


def weights_missing(ctx: RunContext, dense: DenseRun, epoch: int | str) -> Path | None:
    """The local path of θ_epoch when `dense` came from records and the file is not in this results
    folder (a record holds no weights), else None."""
    local = layout.weights_dir(ctx.cfg.results_path(), dense.identity) / layout.weights_name(epoch)
    return local if dense.imported and not local.exists() else None


def check_weights_here(ctx: RunContext, dense: DenseRun, epoch: int | str, needed_by: str) -> None:
    """LotteryError (one line) when `weights_missing`: `needed_by` cannot have θ_epoch of `dense`."""
    local = weights_missing(ctx, dense, epoch)
    if local is not None:
        raise LotteryError(f"{needed_by} needs {layout.weights_name(epoch)} of dense run {dense.run_id} (identity "
                           f"{dense.identity}), which was imported from records, and records hold no weights: copy "
                           f"{local.parent} from the machine that trained it, or run this where its dense run trains")


def dense_weights(ctx: RunContext, dense: DenseRun, epoch: int | str) -> dict[str, torch.Tensor]:
    """θ_i of a finished dense run (`epoch` an int, or 'final'), read from this results folder or its
    MLflow artifacts (a dense run imported from records has neither: `check_weights_here`)."""
    check_weights_here(ctx, dense, epoch, ctx.cfg.pipeline)
    local = layout.weights_dir(ctx.cfg.results_path(), dense.identity) / layout.weights_name(epoch)
    if not local.exists():
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(ctx.client.download_artifacts(dense.run_id, layout.weights_artifact(epoch), tmp))
                return torch.load(path, map_location=ctx.device, weights_only=True)
        except Exception:
            raise LotteryError(f"dense run {dense.run_id} has no {layout.weights_artifact(epoch)}; add {epoch} to "
                               f"training.keep_epochs and run the dense pipeline again") from None
    return torch.load(local, map_location=ctx.device, weights_only=True)


def trained_dense(ctx: RunContext) -> tuple[nn.Module, DenseRun]:
    """θ_n: the trained dense network of this run's finished dense run (reused, never retrained)."""
    dense = find_dense(ctx)
    if dense is None:
        raise LotteryError(f"{ctx.cfg.pipeline} needs a finished dense run with identity "
                           f"{ctx.cfg.dense().identity()}; run `lottery run` with pipeline=dense first "
                           f"(a sweep schedules it for you)")
    model = initial_model(ctx)
    model.load_state_dict(dense_weights(ctx, dense, layout.FINAL))
    return model, dense
