"""A Ray Tune trial: a thin adapter over `pipelines.runner.run`.

It takes the run config the sweep's driver validated (looked up by its plain form in the sweep's
table of built configs, never built again; an Optuna trial applies its sampled values once with
`RunConfig.with_overrides`), gives the run the device Ray assigned (CUDA
when it was given GPUs, else a one-line failure: `trial_device`) and as many torch threads as
CPUs it was given, reports every epoch's metrics to Ray with a copy of the
epoch's checkpoint, and, when Ray retries or restores the trial (after a failure, a lost node or
a killed driver), puts Ray's checkpoint back into the run's checkpoint folder so that training
continues from that epoch. The MLflow run is found again by the config's identity (one run per
trial, however often it is retried). The trial claims its identity first (`pipelines.claim`, the
owner being its Ray trial id; the claim lives on the sweep's storage, which every node sees): a retry or restore of the same trial takes the claim over at once,
another trial of the same identity (an Optuna repeat) waits for it, then finds the finished run.
"""
import importlib
import json
import math
import shutil
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import ray
from ray import tune

from lottery_core.errors import LotteryError
from lottery_core.train.device import cuda_problem
from pipelines import layout
from pipelines.claim import claim_location
from pipelines.config import RunConfig, build_config, to_raw
from pipelines.context import with_fingerprint
from pipelines.run_schema import epoch_metrics
from pipelines.runner import claim_identity, record_failure, run
from pipelines.tracking import sweep_member_tag


class RayReporter:
    """Epoch hook: `tune.report(metrics, checkpoint=...)` with a copy of the epoch's checkpoint file.
    The epoch's metrics go under the names the MLflow run logs them by (`epoch_test_acc`, ...:
    `pipelines.run_schema.epoch_metrics`), never under a final metric's name: the trial's last
    result, its final metrics, is the only one with `acc`, `val_acc`, `train_time_s`, ..."""

    def __init__(self, node_id: str = ""):
        self.node_id = node_id

    def on_epoch_end(self, epoch: int, metrics: dict, state) -> None:
        numbers = {k: v for k, v in epoch_metrics(metrics).items() if math.isfinite(v)}
        numbers["epoch"] = float(epoch)
        result = {**numbers, "node_id": self.node_id}
        path = state.checkpoint_path
        if path is None:
            tune.report(result)
        else:
            with tempfile.TemporaryDirectory() as folder:
                for file in (Path(path), Path(str(path) + ".sha256")):  # the file and its digest
                    if file.exists():
                        shutil.copy2(file, folder)
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


SWEEP_KEYS = ("run", "sweep", "parent_run_id", "storage", "code_version")   # the rest: Optuna's sampled keys


def trial(config: dict, options: dict | None = None, configs: dict[str, RunConfig] | None = None) -> dict:
    """Run one pipeline config and return its final metrics.

    `config`: {"run": the validated config of the trial's grid point (or of the search's base) in
    its nested plain form (`to_raw`: Ray keeps plain values through a restore), "sweep": name,
    "parent_run_id": id, "storage": the sweep's storage root (the identity's claim lives there, seen
    by every node), "code_version": the driver's} plus, for Optuna, the sampled values under their
    dotted keys. `configs`: the sweep's validated, frozen RunConfigs by plain form (`built_configs`,
    passed by `tune.with_parameters`), in which the trial finds its own (`trial_config`).
    `options`: "restart_errored": True when the sweep was resumed with --restart-errored (a trial
    without a Ray checkpoint starts over); "epoch_hooks": import paths of extra epoch hooks (see
    `epoch_hook`), called after the reporter.

    A trial given GPUs trains on CUDA or fails, in one line that says why (`trial_device`), its
    MLflow run marked FAILED with that line: never a quiet run on the CPU.
    """
    options = options or {}
    started = time.time()
    gpus, cpus, gpu_share = assigned()
    requested = trial_config(config, configs)
    threads = max(1, int(cpus))
    device, problem = trial_device(requested.device, gpus)
    cfg = with_fingerprint(replace(requested, device=device, threads=threads))  # the data read on this node
    checkpoint_dir = layout.checkpoint_dir(cfg.results_path(), cfg.identity()).resolve()
    location = claim_location(config["storage"], cfg.identity()) if config.get("storage") else None
    tags = sweep_tags(config.get("sweep", ""))
    if config.get("code_version"):
        tags["code_version"] = config["code_version"]   # workers have no .git: the driver's version
    with claim_identity(checkpoint_dir, cfg.identity(), owner=trial_owner(config), wait=True,
                        location=location) as claim:
        if problem:
            record_failure(cfg, problem, config.get("parent_run_id"), tags)
            raise LotteryError(problem)
        restored = tune.get_checkpoint()
        if restored is not None:
            restore_into(restored, checkpoint_dir)
        elif options.get("restart_errored") and checkpoint_dir.is_dir():
            shutil.rmtree(checkpoint_dir)  # --restart-errored: no Ray checkpoint means start over
        node_id = ray.get_runtime_context().get_node_id()
        hooks = [RayReporter(node_id), *(epoch_hook(path)() for path in options.get("epoch_hooks", ()))]
        outcome = run(cfg, hooks=hooks, parent_run_id=config.get("parent_run_id"), tags=tags, claim=claim,
                      gpu_ids=gpus or None, gpu_share=gpu_share)
    final = {k: float(v) for k, v in outcome.metrics.items()
             if isinstance(v, int | float) and not isinstance(v, bool)}
    final.update({"threads": float(threads), "gpus_assigned": float(len(gpus)),
                  "run_existed": float(outcome.status == "existing"), "node_id": node_id,
                  "trial_started_at": started, "trial_ended_at": time.time(),
                  "mlflow_run_id": outcome.run_id, "identity": outcome.identity})
    tune.report(final)
    return final


def trial_device(requested: str, gpus: list) -> tuple[str, str | None]:
    """(the device a trial trains on, why it cannot, or None). Given GPUs (Ray sets
    CUDA_VISIBLE_DEVICES to them, so `cuda` is the first): `cuda`, and a one-line reason when CUDA
    is unusable in this process (the torch build, the driver); given none: the CPU, or a reason
    when the config asks for CUDA. The launch refuses `device: cpu` with GPUs before any trial."""
    if gpus:
        if requested == "cpu":
            return "cpu", f"this trial was given GPU(s) {gpus} but its config says device: cpu"
        problem = cuda_problem()
        return "cuda", (f"this trial was given GPU(s) {gpus} by Ray, but {problem}: fix the node's NVIDIA "
                        f"driver or image, or run the sweep with device: cpu and resources: {{gpu: 0}}"
                        if problem else None)
    if requested.startswith("cuda"):
        return requested, f"device: {requested}, but this trial was given no GPU: give the sweep resources with gpu > 0"
    return "cpu", None


def epoch_hook(path: str):
    """The factory named by an import path `package.module:name`: called with no arguments in the
    trial's worker, it returns an epoch hook (`on_epoch_end(epoch, metrics, state)`, see
    `lottery_core.train.EpochHook`) that runs after the trial's reporter, once per epoch. The
    extension point for what a sweep's Python API adds to every trial without this module knowing
    it (the fault drills in tests/drills.py use it). The module must be importable on every node."""
    module, _, name = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module), name) if module and name else None
    except ImportError as err:
        raise LotteryError(f"epoch hook {path!r}: cannot import {module!r} ({err})") from None
    except AttributeError:
        factory = None
    if not callable(factory):
        raise LotteryError(f"epoch hook {path!r}: give an import path `package.module:name` of a callable "
                           f"that returns an epoch hook")
    return factory


def sweep_tags(sweep: str) -> dict[str, str]:
    """The tags a trial's run carries: the sweep that made it and its membership of this sweep."""
    return {"sweep": sweep, sweep_member_tag(sweep): "true"} if sweep else {}


def plain_key(raw: dict) -> str:
    """The key of a config in a sweep's table of built configs: the sorted JSON of its nested plain
    form (`to_raw`), which is what Ray's param space carries for the trial."""
    return json.dumps(raw, sort_keys=True)


def built_configs(configs) -> dict[str, RunConfig]:
    """{`plain_key(to_raw(cfg))`: cfg} of a sweep's validated configs (`Sweep.configs()`): the table
    in which the driver (to name trials) and each trial find a trial's RunConfig without building it."""
    return {plain_key(to_raw(cfg)): cfg for cfg in configs}


class DriverConfigs(dict):
    """A sweep's table of built configs (`built_configs`) as the driver's trial names and progress
    lines hold it. Saved empty: Ray pickles a Tuner's name creators and callbacks into its state
    (tuner.pkl), and a resume must never depend on unpickling the RunConfigs of the code version
    that launched the sweep; a lookup that misses builds the config (`trial_config`). The trials
    get the full table through `tune.with_parameters`, which a restore hands over anew."""

    def __reduce__(self):
        return (DriverConfigs, ())


def trial_config(config: dict, configs: dict[str, RunConfig] | None = None) -> RunConfig:
    """The RunConfig of a trial: `config["run"]`, its grid point's (or the search's base's) validated
    config, found in `configs` (`built_configs`) by its plain form; a RunConfig is taken as it is.
    Only a plain form the table lacks (a trial of a sweep launched by an older version, restored from
    Ray's state; a caller without the table) is built, once. An Optuna trial's sampled dotted keys are
    then applied once with `RunConfig.with_overrides` (which validates the whole config). Device and
    threads as in the sweep; the trial sets them."""
    base = config["run"]
    if not isinstance(base, RunConfig):
        base = (configs or {}).get(plain_key(base)) or build_config(json.loads(json.dumps(base)))
    sampled = {k: v for k, v in config.items() if k not in SWEEP_KEYS}
    return base.with_overrides(sampled) if sampled else base


def assigned() -> tuple[list, float, float]:
    """(GPU ids, CPUs, GPU share) Ray gave this trial; the share is its fraction of one GPU
    (0.25 of a GPU shared by four), 1.0 for whole GPUs or none."""
    gpus = list(ray.get_gpu_ids())
    try:
        required = tune.get_context().get_trial_resources().required_resources
    except Exception:  # outside a Tune session (a plain Ray task)
        required = ray.get_runtime_context().get_assigned_resources()
    fraction = float(required.get("GPU", 0) or 0)
    return gpus, required.get("CPU", 1), fraction if 0 < fraction < 1 else 1.0


def restore_into(checkpoint: tune.Checkpoint, checkpoint_dir: Path) -> None:
    """Copy a Ray checkpoint's files into the run's checkpoint folder (newer local files win:
    the training loop resumes from the newest readable checkpoint there)."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    with checkpoint.as_directory() as folder:
        for file in Path(folder).iterdir():
            if file.is_file() and not (checkpoint_dir / file.name).exists():
                shutil.copy2(file, checkpoint_dir / file.name)


def trial_owner(config: dict) -> str | None:
    """The owner of a trial's claim: its sweep and Ray trial id, which Ray keeps when it retries
    or restores the trial (so that the retry takes its own claim over at once); None (a claim of
    this process alone) outside a Tune session."""
    with warnings.catch_warnings():  # outside a Tune session: a warning, and None
        warnings.simplefilter("ignore")
        trial_id = tune.get_context().get_trial_id()
    return f"ray-trial:{config.get('sweep', '')}:{trial_id}" if trial_id else None
