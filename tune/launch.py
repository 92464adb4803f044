"""Sweeps on Ray Tune: launch, resume, report.

    sweep = load_sweep("tune/sweeps/demo.yaml", ["data.root=/data/cifar10"], name="demo-1")
    outcome = launch(sweep, results_dir="lottery-runs")      # local Ray unless address/RAY_ADDRESS
    outcome = resume("demo-1", results_dir="lottery-runs")   # after a crash, Ctrl-C or failed trials

A sweep is one Tune experiment per phase (dense baselines, then tickets; see `Sweep.phases`),
each stored under `<storage>/<name>/phase<k>` and resumed with `Tuner.restore`: finished trials
never run again, errored ones continue from their last checkpoint (or start over with
`restart_errored`). Ray Tune does the scheduling, retries (`FailureConfig`) and restores; this
module only builds the Tuners, checks the inputs first, and keeps MLflow tidy.
"""
import functools
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import ray
from ray import tune

from lottery_core.errors import LotteryError
from pipelines import layout
from pipelines.comparison_fill import fill_comparisons
from pipelines.config import RunConfig, to_raw
from pipelines.tracking import code_version, prepare_store, tracking_uri
from tune import storage as st
from tune import sweep_runs
from tune.ray_cluster import init_ray
from tune.resources import alive_nodes, idle_gpus, size_trials, trial_slots
from tune.sweep_file import Sweep
from tune.trial import DriverConfigs, built_configs, epoch_hook, trial, trial_config
from tune.trial_events import ProgressPrinter, describe_trial


@dataclass
class SweepOutcome:
    """What a sweep (or its resume) ended with."""

    name: str
    parent_run_id: str
    tracking_uri: str
    experiment: str
    storage: str
    trials: int = 0                      # trials of every phase that ran (finished, errored, stopped)
    errors: list[str] = field(default_factory=list)   # one line per errored trial
    interrupted: bool = False            # stopped (Ctrl-C) before every trial ended
    reused: int = 0                      # trials that found their config already finished in MLflow
    report_dir: Path | None = None
    confirmation: Path | None = None   # an Optuna search's front, to rerun over seeds (confirm.yaml)
    main_table: str = ""
    latency: str = ""                    # what the sweep file's latency pass did (one line), or ""
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.interrupted


def launch(sweep: Sweep, *, results_dir=None, address: str | None = None, storage: str | None = None,
           verbose: int = 0, epoch_hooks=()) -> SweepOutcome:
    """Check everything, then run the sweep's phases on Ray Tune (a new local Ray unless `address`
    or RAY_ADDRESS names a cluster). Raises LotteryError on bad input before any trial starts: on
    a cluster, among others, a storage that some node cannot read (`tune.storage.check_shared`).
    `verbose`: 0 silent, 1 a line per trial event, 2 Ray Tune's own progress tables.
    `epoch_hooks`: import paths `package.module:factory` of epoch hooks every trial adds (see
    `tune.trial.epoch_hook`; the tests' fault drills use it); not part of the sweep's record."""
    started = time.perf_counter()
    for path in epoch_hooks:
        epoch_hook(path)  # a bad path is refused here, not in every trial
    cfg = first_config(sweep)
    results_dir = Path(results_dir).resolve() if results_dir else cfg.results_path()
    address = st.cluster_address(address)
    root = st.storage_root(results_dir, storage or sweep.storage)
    uri = tracking_uri(cfg)
    st.check_cluster(address, uri)
    if st.sweep_exists(root, sweep.name):
        raise LotteryError(f"a sweep named {sweep.name!r} already exists in {root}: choose another --name, "
                           f"or continue it with `lottery resume {sweep.name}`")
    uri, experiment_id = prepare_store(cfg)  # once, in the driver, before trials touch the store
    own_ray = init_ray(address)
    try:
        resources = plan_resources(sweep, alive_nodes(), strict=address is None)
        if address:
            st.check_shared(root)
        parent = sweep_runs.open_parent(uri, experiment_id, sweep.name, sweep.describe())
        meta = {"sweep": sweep.to_dict(), "parent_run_id": parent, "tracking_uri": uri,
                "experiment": cfg.tracking.experiment, "storage": root, "results_dir": str(results_dir),
                "xi": cfg.evaluation.xi, "resources": resources, "code_version": code_version(),
                "address": address,
                "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        st.write_meta(root, sweep.name, meta)
        sweep_runs.log_sweep(uri, parent, meta)
        outcome = SweepOutcome(sweep.name, parent, uri, cfg.tracking.experiment, root)
        _run_phases(sweep, outcome, results_dir, meta, restore=False, verbose=verbose,
                    epoch_hooks=tuple(epoch_hooks))
    finally:
        if own_ray:
            ray.shutdown()
    outcome.wall_time_s = time.perf_counter() - started
    return outcome


def resume(name: str, *, results_dir=None, address: str | None = None, storage: str | None = None,
           restart_errored: bool = False, verbose: int = 0, epoch_hooks=()) -> SweepOutcome:
    """Finish a sweep with Ray Tune's own restore: finished trials are kept, unfinished and errored
    ones continue from their last checkpoint (errored ones start over with `restart_errored`).
    `epoch_hooks` as in `launch` (they are not remembered from the launch)."""
    started = time.perf_counter()
    for path in epoch_hooks:
        epoch_hook(path)
    from pipelines.config import load_config

    results_dir = Path(results_dir).resolve() if results_dir else load_config().results_path()
    root = st.storage_root(results_dir, storage)
    meta = st.read_meta(root, name)
    sweep = Sweep.from_dict(meta["sweep"])   # each config built once, from the record
    address = st.cluster_address(address)
    st.check_cluster(address, meta["tracking_uri"])
    prepare_store(first_config(sweep))  # probes a server
    own_ray = init_ray(address)
    try:
        if address:   # the nodes may differ from the launch's
            st.check_shared(root)
        meta["address"] = address   # where this resume runs
        if "resources" not in meta:   # a sweep launched before resources were sized at launch
            meta["resources"] = plan_resources(sweep, alive_nodes(), strict=address is None)
        sweep_runs.reopen_parent(meta["tracking_uri"], meta["parent_run_id"])
        outcome = SweepOutcome(name, meta["parent_run_id"], meta["tracking_uri"], meta["experiment"], root)
        _run_phases(sweep, outcome, Path(meta.get("results_dir", results_dir)), meta,
                    restore=True, restart_errored=restart_errored, verbose=verbose,
                    epoch_hooks=tuple(epoch_hooks))
    finally:
        if own_ray:
            ray.shutdown()
    outcome.wall_time_s = time.perf_counter() - started
    return outcome


def first_config(sweep: Sweep) -> RunConfig:
    """The config that says where the sweep's results and MLflow store are: its first trial's (the
    settings outside the identity are the same in every trial of a sweep), or an Optuna search's base."""
    return sweep.points[0] if sweep.points else sweep.search_base


def plan_resources(sweep: Sweep, nodes: list[dict], strict: bool) -> dict:
    """The per-trial {cpu, gpu} the sweep asks Ray for: `resources: auto` sized from the cluster's
    `nodes` (tune.resources), or the sweep's own request checked against them. A request no node
    can hold: an error on a local Ray, a warning on a cluster (an autoscaler may add such nodes);
    one that leaves GPUs idle while trials wait: a warning with the numbers. A device that the
    request contradicts (device: cpu holding GPUs, device: cuda without one) is refused."""
    devices = {cfg.device for cfg in sweep.configs()}
    on_cpu = devices == {"cpu"}
    if sweep.resources == "auto":
        resources = size_trials([{**n, "GPU": 0} if on_cpu else n for n in nodes], sweep.concurrency())
        if not on_cpu and resources["gpu"] == 0 and not strict:
            print("warning: resources: auto found no GPU on the cluster now, so trials get none and train on "
                  "CPUs; if an autoscaler is to add GPU nodes, give the sweep explicit resources such as "
                  "{cpu: 4, gpu: 1}", flush=True)
    else:
        resources = dict(sweep.resources)
        warning = idle_gpus(nodes, resources, max((len(p) for p in sweep.phases()), default=0) or
                            sweep.concurrency(), sweep.max_concurrent)
        if warning:
            print(f"warning: {warning}", flush=True)
    cpu, gpu = resources["cpu"], resources["gpu"]
    if gpu > 0 and "cpu" in devices:
        raise LotteryError(f"device: cpu with resources {{gpu: {gpu:g}}} would hold GPUs that its trials never use: "
                           f"set device: auto (or cuda), or resources: {{gpu: 0}}")
    cuda = sorted(d for d in devices if d.startswith("cuda"))
    if gpu == 0 and cuda:
        where = "this cluster has no GPU" if sweep.resources == "auto" else "resources ask for none"
        raise LotteryError(f"device: {cuda[0]} needs a GPU per trial, and {where}: set resources: {{gpu: 1}} on a "
                           f"cluster with GPUs, or device: auto (or cpu)")
    if not any(trial_slots(n, cpu, gpu) for n in nodes):
        best = max(nodes, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)), default={})
        message = (f"no Ray node can hold a trial of resources {{cpu: {cpu:g}, gpu: {gpu:g}}}: the largest has "
                   f"{best.get('CPU', 0):g} CPUs and {best.get('GPU', 0):g} GPUs; lower the sweep's resources")
        if strict:
            raise LotteryError(message)
        print(f"warning: {message} (unless the autoscaler adds bigger nodes)", flush=True)
    return resources


def trainable(resources: dict, restart_errored: bool = False, epoch_hooks: tuple[str, ...] = (),
              configs: dict[str, RunConfig] | None = None):
    """The trial function with the sweep's per-trial resources (same name on launch and restore) and
    its validated configs (`tune.trial.built_configs`), which `tune.with_parameters` hands every
    trial through Ray's object store: a trial finds its RunConfig there, never builds it again."""
    options = {"restart_errored": restart_errored, "epoch_hooks": epoch_hooks}
    return tune.with_resources(tune.with_parameters(trial, options=options, configs=configs or {}),
                               {"cpu": resources["cpu"], "gpu": resources["gpu"]})


def trial_name(t, configs: dict[str, RunConfig] | None = None) -> str:
    """A trial's name in Tune's output and folders: its run's one description (`RunConfig.describe()`,
    via `tune.trial_events.describe_trial`, the config found in the sweep's table `configs`), made
    folder-safe, e.g. `ticket_init-resnet20-snip-p-1-seed-0_a1b2c_00003`."""
    try:
        label = describe_trial(t.config, configs)
    except Exception:  # a config that cannot be read is reported by the trial itself
        label = "trial"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label) + f"_{t.trial_id}"


def _tuner(sweep: Sweep, phase: int, points: list[RunConfig], outcome: SweepOutcome, meta: dict, verbose: int,
           epoch_hooks: tuple[str, ...], configs: dict[str, RunConfig]) -> tune.Tuner:
    total = len(points) or sweep.optuna["num_samples"]
    known = DriverConfigs(configs)   # for the names and progress lines; saved empty with the Tuner's state
    name = functools.partial(trial_name, configs=known)
    run_config = tune.RunConfig(
        name=f"phase{phase}", storage_path=f"{outcome.storage}/{sweep.name}",
        verbose=1 if verbose >= 2 else 0, callbacks=[ProgressPrinter(total, known)] if verbose == 1 else None,
        failure_config=tune.FailureConfig(max_failures=sweep.retries),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2))
    limit = sweep.max_concurrent or None
    # reuse_actors: a worker that finished a trial takes the next one (torch, MLflow and the
    # pipeline are imported once per worker, not once per trial)
    if points:  # a grid phase (or the dense baseline of an Optuna search)
        return tune.Tuner(trainable(meta["resources"], epoch_hooks=epoch_hooks, configs=configs),
                          param_space=_param_space(sweep, points, meta),
                          tune_config=tune.TuneConfig(max_concurrent_trials=limit, trial_name_creator=name,
                                                      trial_dirname_creator=name, reuse_actors=True),
                          run_config=run_config)
    from tune.search import FinalResultOptunaSearch  # imports Optuna

    o = sweep.optuna
    metric, mode = (o["metrics"][0], o["modes"][0]) if len(o["metrics"]) == 1 else (o["metrics"], o["modes"])
    search = FinalResultOptunaSearch(metric=metric, mode=mode, seed=o["seed"])
    return tune.Tuner(trainable(meta["resources"], epoch_hooks=epoch_hooks, configs=configs),
                      param_space=_param_space(sweep, points, meta),
                      tune_config=tune.TuneConfig(search_alg=search, num_samples=o["num_samples"],
                                                  max_concurrent_trials=limit, trial_name_creator=name,
                                                  trial_dirname_creator=name, reuse_actors=True),
                      run_config=run_config)


def _distribution(spec: dict):
    if spec["type"] == "int":
        return tune.qlograndint(spec["low"], spec["high"], 1) if spec.get("log") else tune.randint(spec["low"], spec["high"] + 1)
    if spec["type"] == "float":
        return tune.loguniform(spec["low"], spec["high"]) if spec.get("log") else tune.uniform(spec["low"], spec["high"])
    return tune.choice(spec["choices"])


def _param_space(sweep: Sweep, points: list[RunConfig], meta: dict) -> dict:
    """A phase's Tune param space: each grid point's validated RunConfig in its nested plain form
    (`to_raw`; or the search's base and its Optuna distributions), the sweep's name, its parent run,
    its storage (where claims live) and the driver's code version (`tune.trial.SWEEP_KEYS`). Plain
    values only: Ray stores any other object as a placeholder that a restore does not resolve; the
    trial finds the RunConfig itself by that plain form (`tune.trial.trial_config`)."""
    common = {"sweep": sweep.name, "parent_run_id": meta["parent_run_id"], "storage": meta["storage"],
              "code_version": meta["code_version"]}
    if points:
        return {"run": tune.grid_search([to_raw(cfg) for cfg in points]), **common}
    space = {key: _distribution(spec) for key, spec in sweep.optuna["space"].items()}
    return {"run": to_raw(sweep.search_base), **common, **space}


def _run_phases(sweep: Sweep, outcome: SweepOutcome, results_dir: Path, meta: dict, *, restore: bool,
                restart_errored: bool = False, verbose: int = 0, epoch_hooks: tuple[str, ...] = ()) -> None:
    """Fit (or restore and fit) each phase in turn; a phase with errors or an interruption stops
    the sweep there (later phases start from its runs). After each phase, tickets that finished
    before their dense run get their comparison. Then tidy MLflow and write the report."""
    xi = meta.get("xi", 0.0)
    meta.setdefault("code_version", "unknown")   # a sweep launched before the driver recorded it
    if sweep.optuna is not None:
        # per-epoch results do not carry the search's final metrics (acc, macs): only the last does
        os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    errored: list[str] = []
    configs = built_configs(sweep.configs())   # what the trials and their names look up, built once
    try:
        for k, points in enumerate(sweep.phases()):
            path = f"{outcome.storage}/{sweep.name}/phase{k}"
            if restore and tune.Tuner.can_restore(path):
                tuner = tune.Tuner.restore(path, trainable=trainable(meta["resources"], restart_errored, epoch_hooks,
                                                                     configs),
                                           resume_unfinished=True, resume_errored=not restart_errored,
                                           restart_errored=restart_errored)
            else:
                tuner = _tuner(sweep, k, points, outcome, meta, verbose, epoch_hooks, configs)
            results = tuner.fit()
            outcome.trials += len(results)
            for r in results:
                metrics = r.metrics or {}
                if r.error is not None:
                    errored.append(_identity(r.config, configs))
                    where = f" (traceback: {r.path}/error.txt)" if r.path else ""
                    outcome.errors.append(f"{_label(r.config, configs)}: {error_line(r.error)}{where}")
                elif "mlflow_run_id" not in metrics:
                    outcome.interrupted = True
                elif metrics.get("run_existed"):
                    outcome.reused += 1
            _try(fill_comparisons, outcome.tracking_uri, outcome.experiment, sweep.name, xi)
            if not outcome.ok:
                break
    except BaseException:
        _try(sweep_runs.close_parent, outcome.tracking_uri, outcome.parent_run_id, "KILLED")
        raise
    try:
        sweep_runs.close_stale_children(outcome.tracking_uri, outcome.parent_run_id, errored)
    except Exception as err:  # e.g. the tracking server went away: the trials said so already
        outcome.errors.append(f"MLflow at {outcome.tracking_uri} could not be updated ({error_line(err)}); "
                              f"bring it back and resume")
        return  # the parent stays RUNNING until the resume closes it
    if sweep.latency is not None:   # after every trial, so the cores are free; before the report, which shows it
        outcome.latency = sweep_runs.measure_sweep_latency(outcome.tracking_uri, outcome.experiment, sweep.name,
                                                         sweep.latency, finished=outcome.ok,
                                                         on_cluster=bool(meta.get("address")))
    out = Path(outcome.storage) / sweep.name / "report" if not st.is_uri(outcome.storage) else \
        layout.reports_dir(results_dir, sweep.name)
    outcome.report_dir, outcome.main_table = sweep_runs.write_sweep_report(
        outcome.tracking_uri, outcome.experiment, sweep.name, out, outcome.parent_run_id, sweep.questions or ())
    try:
        outcome.confirmation = sweep_runs.write_confirmation_sweep(sweep, outcome.report_dir)
    except Exception as err:  # the search is done and reported; the follow-up file is a convenience
        outcome.errors.append(f"the confirmation sweep of the front could not be written: {error_line(err)}")
    status = "FINISHED" if outcome.ok else ("KILLED" if outcome.interrupted and not outcome.errors else "FAILED")
    _try(sweep_runs.close_parent, outcome.tracking_uri, outcome.parent_run_id, status)


def _try(function, *args) -> None:
    try:
        function(*args)
    except Exception:  # a tracking server that is gone: the run is closed by the next resume
        pass


def _identity(config: dict, configs: dict[str, RunConfig]) -> str:
    try:
        return trial_config(config, configs).identity()
    except Exception:
        return ""


def _label(config: dict, configs: dict[str, RunConfig]) -> str:
    try:
        return trial_config(config, configs).describe()
    except Exception:
        return "trial"


def error_line(error: BaseException) -> str:
    """The line of a trial's traceback that says what went wrong (`SomeError: message`)."""
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b.*:", line)]
    line = (found or lines or [type(error).__name__])[-1]
    return line[:400]
