"""Run one pipeline as one MLflow run, found again by its identity.

    outcome = run(load_config("configs/quick/resnet32_ticket_init.yaml"))

- a FINISHED run with the same identity is returned as it is (nothing is trained twice);
- otherwise the identity is claimed first (`pipelines.claim`: one live process per identity,
  across processes and nodes); a live claimant elsewhere means `ClaimBusy` (one line naming its
  host, pid and last heartbeat), or, with `wait=True`, waiting until it finishes or dies;
- under the claim, an unfinished run (RUNNING after a crash, KILLED after Ctrl-C, FAILED) is
  reopened and training continues from the newest checkpoint in <results_dir>/checkpoints/<identity>:
  a RUNNING run found then is abandoned (its claimant is gone), never one a live process holds;
- Ctrl-C marks the run KILLED, any other error FAILED; the checkpoint stays; the claim is released.
"""
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from lottery_core.emissions import SHARE_RULE, EmissionsMeter
from lottery_core.train.device import resolve_device
from pipelines import layout, plots
from pipelines.claim import EXPIRE_AFTER, Claim
from pipelines.config import RunConfig
from pipelines.config.checks import check_precision
from pipelines.config.pipeline_registry import get_pipeline
from pipelines.context import RunContext, with_fingerprint
from pipelines.evaluation import evaluate_run
from pipelines.logged_model import log_trained
from pipelines.run_lifecycle import MlflowEpochLogger, closed_as_outcome, reopen
from pipelines.tracking import (
    SWEEP_MEMBER_PREFIX,
    UNFINISHED,
    code_version,
    find_runs,
    finished_run,
    prepare_store,
)


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced: its MLflow run id, identity, final metrics, and whether it was trained now."""

    run_id: str
    identity: str
    metrics: dict
    status: str  # "finished" (trained now) or "existing" (found finished, not run again)


def run_tags(cfg: RunConfig) -> dict[str, str]:
    """The tags that make a run findable: pipeline, model, criterion, control, p, seed, identity, ..."""
    pipeline = get_pipeline(cfg.pipeline)
    ticket = pipeline.prunes
    p = cfg.read_settings().pruning
    return {"pipeline": cfg.pipeline, "model": cfg.model.name, "dataset": cfg.data.name,
            "criterion": p.chooser() if ticket else "none",
            "control": p.control if ticket else "none", "draw": str(p.draw), "reinit_of": "",
            "p": str(p.p if ticket else 0),
            "planned_stage_counts": "/".join(map(str, p.stage_counts)) if ticket else "",   # "" = the criterion's choice
            "rewind_epoch": str(p.rewind_epoch),   # 0 where the pipeline does not rewind (read_settings)
            "seed": str(cfg.seed), "identity": cfg.identity(), "dense_identity": cfg.dense().identity(),
            "device_kind": cfg.device_kind(), "precision": cfg.precision(),
            "data_fingerprint": cfg.data.fingerprint or "",
            "code_version": code_version(), "mlflow.runName": cfg.describe(), **pipeline.tags(p)}


def membership_tags(tags: dict[str, str]) -> dict[str, str]:
    """The tags a reused run takes from a caller: its sweep membership (`in_sweep.<name>`)."""
    return {k: v for k, v in tags.items() if k.startswith(SWEEP_MEMBER_PREFIX)}


def run(cfg: RunConfig, *, hooks=(), parent_run_id: str | None = None, tags: dict[str, str] | None = None,
        claim: Claim | None = None, wait: bool = False, gpu_ids: list[int] | None = None,
        gpu_share: float = 1.0) -> RunOutcome:
    """Run `cfg` once (see module docstring); returns the run's final metrics.

    `claim`: the identity's claim, already held by the caller (a Ray trial, which claims before it
    restores Ray's checkpoint into the folder; the caller releases it); without one, `run` claims
    the identity itself for the run's duration, waiting for a live claimant only with `wait`.
    `gpu_ids`: the GPUs this run was given (e.g. Ray's), the only ones its energy counts (None: the
    visible ones). `gpu_share`: the fraction of them it holds (Ray's fractional request; 1: whole
    GPUs): it is charged that share of their energy (`lottery_core.emissions.SHARE_RULE`, named
    in the run's tag `energy_rule`).
    """
    device = resolve_device(cfg.device)            # before anything is created
    check_precision(cfg)                           # this machine's, which may not be the driver's
    uri, experiment_id = prepare_store(cfg)       # an unreachable server is reported here
    client = MlflowClient(uri)
    cfg = with_fingerprint(cfg)                    # the data is part of the identity
    identity = cfg.identity()
    done = finished_run(client, experiment_id, identity)
    if done is not None:
        return _reused(client, done, identity, tags)
    checkpoint_dir = layout.checkpoint_dir(cfg.results_path(), identity).resolve()
    own_claim = claim is None
    if own_claim:
        claim = claim_identity(checkpoint_dir, identity, wait=wait)
    try:
        done = finished_run(client, experiment_id, identity)   # finished while we waited
        if done is not None:
            return _reused(client, done, identity, tags)
        return _train(cfg, client, experiment_id, device, checkpoint_dir, claim, hooks, parent_run_id, tags,
                      gpu_ids, gpu_share)
    finally:
        if own_claim:
            claim.release()


def claim_identity(checkpoint_dir: Path, identity: str, owner: str | None = None, wait: bool = False,
                   location: str | None = None) -> Claim:
    """Claim the run of `identity` whose checkpoints are `checkpoint_dir` (see `pipelines.claim`);
    say on stderr whom it waits for (with `wait`) and whose claim it took over. `location`: where
    the claim lives when not beside the checkpoints (a sweep's shared storage, path or s3:// URI,
    `pipelines.claim.claim_location`), so that every node of a cluster sees it."""
    def waiting(holder):
        print(f"identity {identity} is claimed by {holder.describe()}: waiting until it finishes "
              f"or misses {EXPIRE_AFTER} heartbeats", file=sys.stderr, flush=True)

    claim = Claim(location or layout.claim_file(checkpoint_dir), owner=owner,
                  label=f"identity {identity}").acquire(wait=wait, on_wait=waiting)
    if claim.replaced is not None:
        why = "a retry of the same owner" if claim.replaced.owner == claim.owner else "expired"
        print(f"identity {identity}: took over the claim of {claim.replaced.describe()} ({why})",
              file=sys.stderr, flush=True)
    return claim


def record_failure(cfg: RunConfig, reason: str, parent_run_id: str | None = None,
                   tags: dict[str, str] | None = None) -> str:
    """Mark the run of `cfg`'s identity FAILED (created, or its unfinished run reopened) with the tag
    `failure: <reason>`, for work that could not even start (a trial whose GPU CUDA cannot use).
    Call under the identity's claim. Returns the run id."""
    uri, experiment_id = prepare_store(cfg)
    client = MlflowClient(uri)
    run_id = _open_run(client, experiment_id, cfg, parent_run_id, {**(tags or {}), "failure": reason[:4000]})
    client.set_terminated(run_id, "FAILED")
    return run_id


def _reused(client: MlflowClient, done, identity: str, tags: dict[str, str] | None) -> RunOutcome:
    """A FINISHED run returned as it is; it joins the caller's sweep too."""
    for key, value in membership_tags(tags or {}).items():
        client.set_tag(done.info.run_id, key, value)
    return RunOutcome(done.info.run_id, identity, dict(done.data.metrics), "existing")


def _train(cfg: RunConfig, client: MlflowClient, experiment_id: str, device, checkpoint_dir: Path, claim: Claim,
           hooks, parent_run_id: str | None, tags: dict[str, str] | None,
           gpu_ids: list[int] | None = None, gpu_share: float = 1.0) -> RunOutcome:
    """Open (or reopen) the run under the held claim, run the pipeline, evaluate, close the run."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ctx = RunContext(cfg, client, experiment_id, run_id="", device=device,
                     checkpoint_dir=checkpoint_dir)
    _ = ctx.data  # load (or fail on) the data before a run is opened
    claim.refresh()  # still ours (loading the data may take long): else ClaimLost, nothing touched
    ctx.run_id = _open_run(client, experiment_id, cfg, parent_run_id, tags or {})
    ctx.hooks = (claim, MlflowEpochLogger(client, ctx.run_id), *hooks)   # a lost claim stops first
    with closed_as_outcome(client, ctx.run_id):   # FINISHED, KILLED or FAILED; a lost claim: untouched
        with EmissionsMeter(country_iso_code=cfg.evaluation.country_iso_code, gpu_ids=gpu_ids,
                            gpu_share=gpu_share) as meter:
            trained = get_pipeline(cfg.pipeline).fn(ctx)
        metrics, status_tags = evaluate_run(ctx, trained, meter.result)
        if device.type == "cuda":
            metrics["gpu_share"] = gpu_share
            status_tags["energy_rule"] = SHARE_RULE
        ctx.log_metrics(metrics)
        ctx.set_tags(status_tags)
        ctx.save_weights(trained.model, layout.FINAL)
        log_trained(ctx, trained)   # tracking.log_model, tracking.export_onnx (off by default)
        _log_plots(ctx, trained)
        for warning in getattr(trained.result, "warnings", ()) or ():
            ctx.set_tags({"warning": str(warning)[:4000]})
        claim.refresh()  # the run is still ours to close
    return RunOutcome(ctx.run_id, cfg.identity(), metrics, "finished")


def _open_run(client: MlflowClient, experiment_id: str, cfg: RunConfig, parent_run_id, extra_tags) -> str:
    """Reopen the newest unfinished run of this identity (closing older ones as KILLED), or create one.
    Called under the identity's claim: no live process holds any of these runs."""
    unfinished = find_runs(client, experiment_id, cfg.identity(), UNFINISHED)
    tags = {**run_tags(cfg), **extra_tags}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    if unfinished:
        run_id = unfinished[0].info.run_id
        for stale in unfinished[1:]:
            client.set_terminated(stale.info.run_id, "KILLED")
        reopen(client, run_id, tags)
        client.set_tag(run_id, "resumed", "true")
        return run_id
    created = client.create_run(experiment_id, tags=tags, run_name=cfg.describe())
    run_id = created.info.run_id
    params = [Param(k, str(v)[:6000]) for k, v in cfg.to_flat().items()]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start:start + 100])
    return run_id


def _log_plots(ctx: RunContext, trained) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if trained.plan is not None and trained.plan.scores:
            plots.block_scores(trained.plan.to_dict(), folder / "block_scores.png")
        ticket_curves = _curves(ctx.client, ctx.run_id)
        dense_run = finished_run(ctx.client, ctx.experiment_id, ctx.cfg.dense().identity())
        dense_curves = _curves(ctx.client, dense_run.info.run_id) if dense_run and ctx.cfg.pipeline != "dense" else None
        plots.learning_curves(ticket_curves, dense_curves, ctx.cfg.describe(), folder / "learning_curves.png")
        for png in sorted(folder.glob("*.png")):
            ctx.log_file(png, "plots")


def _curves(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
            for key in ("epoch_test_acc", "train_loss")}


os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
