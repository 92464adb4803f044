"""iterative: a block ticket found in rounds of k blocks (the iterative analogue of Algorithms 1 and 2).

Each round scores the current ticket with the criterion, removes its k lowest blocks
(`pruning.blocks_per_round`; stage budgets kept) and records the new ticket as an MLflow child run
of this run (tags `round`, `removed_blocks`, `blocks_removed`, `iterative_parent`; metrics macs,
params, macs_fraction, and the final val_acc / acc in % when the round's ticket was trained):

- `pruning.iterative_mode=init`: the current ticket is scored at its θ_0 (the dense θ_0 without
  the removed blocks), with no training between rounds: the iterative analogue of SynFlow. The
  last ticket is then trained n epochs (its epochs are this run's). With `pruning.stop_xi`, every
  round's ticket is trained n epochs in its child run, so that it can be judged.
- `pruning.iterative_mode=rewind` (Algorithm 1 in every round): round 1 scores the finished dense
  run's θ_n; each round removes k blocks, rewinds the ticket to the dense θ_i and the schedule to
  epoch i (`pruning.rewind_epoch`), trains n − i epochs in its child run, and the next round
  scores that trained ticket.

The rounds stop at p blocks in all (`pruning.p`), after the first round whose ticket has at most
`pruning.macs_budget` of the dense MACs, or at the first round whose validation accuracy is more
than `pruning.stop_xi` points below the dense run's; the run then keeps the round before that one
(round 1 when it is the first). The run's final metrics are those of the ticket it keeps. Blocks
are named as in the dense network throughout (`removed_blocks`, `rounds.json`).

Resume: round r trains in `<checkpoints>/<identity>/round-<r>` and the last init ticket in
`.../final`; a resumed run replays the rounds (scoring is deterministic), finished trainings
come back from their last checkpoint at once, and each round's child run is found again by
(parent run, round).

The run logs `round_<x>` metrics (`ROUND_METRICS`) with step = round as each round ends (the
last θ_0 round's accuracies once its ticket has trained). Its artifacts: `rounds.json` and
`rounds.csv` (one row per round, with the one-shot ticket of the same p and otherwise equal
settings where it has finished in the experiment), `plan.json` (the removed blocks) and
`plots/iterative_rounds.png`.
"""
import copy
import csv
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch.nn as nn

from lottery_core import accounting, criteria, surgery
from lottery_core.criteria import controls
from lottery_core.errors import LotteryError
from lottery_core.evaluate import evaluate
from pipelines import plots, steps
from pipelines.context import RunContext
from pipelines.experiments.base import Trained
from pipelines.run_lifecycle import MlflowEpochLogger, closed_as_outcome, reopen
from pipelines.tracking import finished_run

PARENT_TAG = "iterative_parent"   # a round's child run names its iterative run by this tag (and mlflow.parentRunId)
# logged on the iterative run as `round_<x>` with step = round, as each round ends (accuracies in %)
ROUND_METRICS = ("blocks_removed", "macs", "params", "macs_fraction", "val_acc", "test_acc")


@dataclass
class Round:
    """One round: which blocks went (dense names), the ticket's cost, its accuracies when trained."""

    round: int
    removed_now: list[str]          # the k blocks this round removed
    removed: list[str]              # every block removed so far
    macs: int                       # one image, convs + linear
    params: int
    macs_fraction: float            # ticket MACs / dense MACs
    run_id: str                     # the round's child run
    trained: bool = False
    val_acc: float | None = None    # % (validation split), when trained
    test_acc: float | None = None   # %, when trained
    loses: bool = False             # val_acc + stop_xi < dense val_acc
    oneshot_run_id: str | None = None   # the finished one-shot ticket of the same p, if any
    oneshot_test_acc: float | None = None
    oneshot_val_acc: float | None = None

    @property
    def blocks_removed(self) -> int:
        return len(self.removed)


def iterative(ctx: RunContext) -> Trained:
    p = ctx.cfg.pruning
    rewind = p.iterative_mode == "rewind"
    theta_0 = steps.initial_model(ctx)                     # θ_0 of the dense network
    dense_macs = accounting.count_macs(theta_0, _input_size(ctx))
    dense = None
    if rewind:
        current, dense = steps.trained_dense(ctx)          # round 1 scores θ_n of the finished dense run
        theta_i = steps.dense_weights(ctx, dense, p.rewind_epoch)
    else:
        current = theta_0                                   # every round scores a ticket at θ_0
    if p.stop_xi is not None:
        dense = dense or _dense_for_validation(ctx)
        dense_val = _dense_val_acc(dense)
    train_rounds = rewind or p.stop_xi is not None
    batches = steps.scoring_batches(ctx)
    logged = {key: {m.step for m in ctx.client.get_metric_history(ctx.run_id, f"round_{key}")}
              for key in ROUND_METRICS}                     # a resumed run logged some rounds already
    rounds: list[Round] = []
    kept = None                                             # (round, trained model, TrainResult) the run keeps
    removed: list[str] = []
    stop = f"target reached: {p.p} blocks removed (pruning.p)"
    while len(removed) < p.p:
        r = len(rounds) + 1
        k = min(p.blocks_per_round, p.p - len(removed))
        scores = steps.block_scores(ctx, current, batches)            # 1. score the current ticket
        plan = criteria.select_blocks(scores, k, model=current, min_blocks_per_stage=p.min_blocks_per_stage,
                                      criterion=p.criterion)          # 2. its k lowest blocks
        dense_name = {t: d for d, t in surgery.ticket_block_names(theta_0, removed).items()}
        now = [dense_name[b] for b in plan.removed]
        removed = removed + now
        ticket = surgery.remove_blocks(theta_0, removed, p.min_blocks_per_stage)   # θ_0 kept
        if rewind:
            surgery.rewind_to(ticket, theta_i)                          # 3. weights ← θ_i
        cost = accounting.measure(ticket, _input_size(ctx))
        with _child_run(ctx, r, removed, now) as child:
            ctx.client.log_dict(child, {**plan.to_dict(), "removed_dense_names": now, "removed_so_far": removed,
                                        "scores_dense_names": {dense_name[b]: s for b, s in plan.scores.items()}},
                                "plan.json")
            record = Round(r, now, removed, cost.macs, cost.params, cost.macs / dense_macs, child)
            model, result = ticket, None
            if train_rounds:                                            # 4. n − i epochs (rewind) or n (init)
                model = copy.deepcopy(ticket)
                result = steps.train_model(ctx, model, start_epoch=p.rewind_epoch if rewind else 0,
                                            checkpoint_dir=ctx.checkpoint_dir / f"round-{r}",
                                            hooks=_hooks_for(ctx, child))
                _accuracies(ctx, record, model)
                record.loses = p.stop_xi is not None and record.val_acc + p.stop_xi < dense_val
            _log_child(ctx, record)
        _log_round(ctx, record, logged)
        rounds.append(record)
        if record.loses:
            stop = (f"round {r} loses: val_acc {record.val_acc:.2f} + stop_xi {p.stop_xi:g} < dense val_acc "
                    f"{dense_val:.2f}; " + (f"the run keeps round {r - 1}" if kept else "no earlier round to keep"))
            kept = kept or (record, model, result)
            break
        kept = (record, model, result)
        current = model if rewind else ticket                           # the next round scores this one
        if p.macs_budget is not None and record.macs_fraction <= p.macs_budget:
            stop = f"MACs budget reached: {record.macs_fraction:.4f} of the dense MACs <= {p.macs_budget:g}"
            break
    record, model, result = kept
    if not train_rounds:                                                # init: train the last ticket n epochs
        ctx.save_weights(model, 0)
        model = copy.deepcopy(model)
        result = steps.train_model(ctx, model, checkpoint_dir=ctx.checkpoint_dir / "final")
        _accuracies(ctx, record, model)
        _log_child(ctx, record)
        _log_round(ctx, record, logged)
    elif rewind:
        ctx.save_weights(surgery.rewind_to(copy.deepcopy(model), theta_i), p.rewind_epoch)
    else:
        ctx.save_weights(surgery.remove_blocks(theta_0, record.removed, p.min_blocks_per_stage), 0)
    _find_oneshot(ctx, rounds)
    _log_rounds(ctx, rounds, record, stop, controls.stage_counts(record.removed, theta_0))
    final = criteria.Plan(criterion=p.criterion, p=len(record.removed), removed=list(record.removed), scores={},
                          min_blocks_per_stage=p.min_blocks_per_stage,
                          kept=[b for b in surgery.removable_blocks(theta_0, p.min_blocks_per_stage)
                                if b not in record.removed])
    return Trained(model, result, plan=final, dense=dense)


def _input_size(ctx: RunContext) -> tuple[int, ...]:
    return tuple(ctx.data.test_images.shape[1:])


def _dense_for_validation(ctx: RunContext):
    dense = steps.find_dense(ctx)
    if dense is None:
        raise LotteryError(f"pruning.stop_xi compares every round with a finished dense run with identity "
                           f"{ctx.cfg.dense().identity()}; run `lottery run` with pipeline=dense first (a sweep "
                           f"schedules it for you)")
    return dense


def _dense_val_acc(dense) -> float:
    if "val_acc" not in dense.metrics:
        raise LotteryError(f"dense run {dense.run_id} has no val_acc (it ran without a validation split); "
                           f"pruning.stop_xi needs one: run the dense pipeline with the same data.val_size")
    return float(dense.metrics["val_acc"])


def _hooks_for(ctx: RunContext, child: str) -> tuple:
    """The run's epoch hooks, with its MLflow epoch logger writing to the round's child run instead."""
    return tuple(MlflowEpochLogger(ctx.client, child)
                 if isinstance(h, MlflowEpochLogger) and h.run_id == ctx.run_id else h for h in ctx.hooks)


def _accuracies(ctx: RunContext, record: Round, model: nn.Module) -> None:
    """Test accuracy (%) and, with a validation split, validation accuracy (%) of a trained ticket."""
    d = ctx.data
    record.trained = True
    record.test_acc = evaluate(model, d.test_images, d.test_labels, d.mean, d.std)["acc"]
    if len(d.val_images):
        record.val_acc = evaluate(model, d.val_images, d.val_labels, d.mean, d.std)["acc"]


@contextmanager
def _child_run(ctx: RunContext, r: int, removed: list[str], now: list[str]):
    """The round's child run (found again on resume), FINISHED when the round is, else KILLED/FAILED."""
    found = ctx.client.search_runs([ctx.experiment_id], max_results=10, order_by=["attributes.start_time DESC"],
                                   filter_string=f"tags.{PARENT_TAG} = '{ctx.run_id}' AND tags.round = '{r}'")
    tags = {"mlflow.parentRunId": ctx.run_id, PARENT_TAG: ctx.run_id, "round": str(r),
            "iterative_identity": ctx.cfg.identity(), "model": ctx.cfg.model.name,
            "criterion": ctx.cfg.pruning.criterion, "iterative_mode": ctx.cfg.pruning.iterative_mode,
            "blocks_removed": str(len(removed)), "removed_blocks": ",".join(removed),
            "round_removed": ",".join(now), "seed": str(ctx.cfg.seed),
            "mlflow.runName": f"{ctx.cfg.describe()} round {r}"}
    if found:
        child = found[0].info.run_id
        reopen(ctx.client, child, tags)
    else:
        child = ctx.client.create_run(ctx.experiment_id, tags=tags, run_name=tags["mlflow.runName"]).info.run_id
        for key, value in {"round": r, "blocks_removed": len(removed), "removed_this_round": len(now),
                           "blocks_per_round": ctx.cfg.pruning.blocks_per_round}.items():
            ctx.client.log_param(child, key, value)
    with closed_as_outcome(ctx.client, child):
        yield child


def _log_child(ctx: RunContext, record: Round) -> None:
    metrics = {"macs": record.macs, "params": record.params, "macs_fraction": record.macs_fraction,
               "blocks_removed": record.blocks_removed, "val_acc": record.val_acc, "acc": record.test_acc,
               "loses": float(record.loses) if record.trained else None}
    for key, value in metrics.items():
        if value is not None:
            ctx.client.log_metric(record.run_id, key, float(value))


def _find_oneshot(ctx: RunContext, rounds: list[Round]) -> None:
    """For each round, the finished one-shot ticket (ticket_init, or ticket_rewind at the same i)
    removing as many blocks, with otherwise equal settings (found by its identity)."""
    p = ctx.cfg.pruning
    pipeline = "ticket_rewind" if p.iterative_mode == "rewind" else "ticket_init"
    for record in rounds:
        other = replace(ctx.cfg, pipeline=pipeline, pruning=replace(p, p=record.blocks_removed))
        found = finished_run(ctx.client, ctx.experiment_id, other.identity())
        if found is not None:
            record.oneshot_run_id = found.info.run_id
            record.oneshot_test_acc = found.data.metrics.get("acc")
            record.oneshot_val_acc = found.data.metrics.get("val_acc")



def _log_round(ctx: RunContext, record: Round, logged: dict[str, set[int]]) -> None:
    """The round's metrics on this run as `round_<x>` with step = round, each once (`logged`: the
    steps each already has)."""
    for key in ROUND_METRICS:
        value = getattr(record, key)
        if value is not None and record.round not in logged[key]:
            ctx.client.log_metric(ctx.run_id, f"round_{key}", float(value), step=record.round)
            logged[key].add(record.round)


def _log_rounds(ctx: RunContext, rounds: list[Round], kept: Round, stop: str, counts: dict) -> None:
    """The rounds table (JSON, CSV), the plot, the plan and the tags that say what was kept and why
    the rounds stopped."""
    rows = [{**asdict(r), "blocks_removed": r.blocks_removed, "removed_now": ",".join(r.removed_now),
             "removed": ",".join(r.removed), "kept": r.round == kept.round} for r in rounds]
    ctx.log_json({"rounds": rows, "kept_round": kept.round, "stop_reason": stop}, "rounds.json")
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "rounds.csv"
        with open(table, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        ctx.log_file(table)
        figure = plots.iterative_rounds(rows, ctx.cfg.describe(), Path(tmp) / "iterative_rounds.png")
        ctx.log_file(figure, "plots")
    ctx.log_json({"criterion": ctx.cfg.pruning.criterion, "p": len(kept.removed), "removed": kept.removed,
                  "rounds": [r.removed_now for r in rounds if r.round <= kept.round], "stage_counts": counts,
                  "min_blocks_per_stage": ctx.cfg.pruning.min_blocks_per_stage}, "plan.json")
    ctx.set_tags({"removed_blocks": ",".join(kept.removed) or "none", "blocks_removed": len(kept.removed),
                  "stage_counts": "/".join(str(n) for n in counts.values()), "rounds": len(rounds),
                  "kept_round": kept.round, "stop_reason": stop})
