"""MLflow for sweeps: a parent run per sweep, a child run per trial, nothing left RUNNING.

Child runs are opened by `pipelines.runner.run` (tag `mlflow.parentRunId`, found again by their
identity when a trial is retried or resumed). The sweep's driver owns the parent run and closes,
at the end, the child runs of attempts that died with their process (still RUNNING): FAILED when
the trial errored, KILLED otherwise. Their metrics stay.
"""
import json
import logging
from pathlib import Path

from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError

log = logging.getLogger(__name__)


def open_parent(uri: str, experiment_id: str, name: str, description: str) -> str:
    """Create the sweep's parent run (tags sweep=<name>, sweep_parent=true); returns its id."""
    client = MlflowClient(uri)
    run = client.create_run(experiment_id, run_name=f"sweep {name}",
                            tags={"sweep": name, "sweep_parent": "true",
                                  "mlflow.note.content": f"Ray Tune sweep {name}: {description}"})
    return run.info.run_id


def log_sweep(uri: str, run_id: str, meta: dict) -> None:
    """The validated sweep (every trial's config, resources, storage) as the parent's `sweep.json`."""
    client = MlflowClient(uri)
    client.log_dict(run_id, meta, "sweep.json")
    sweep = meta["sweep"]
    client.log_batch(run_id, params=[Param("trials", str(len(sweep["points"]) or (sweep["optuna"] or {}).get("num_samples"))),
                                     Param("resources", json.dumps(meta["resources"])),
                                     Param("resources_requested", json.dumps(sweep["resources"])),
                                     Param("code_version", meta["code_version"]),
                                     Param("max_concurrent", str(sweep["max_concurrent"])),
                                     Param("retries", str(sweep["retries"])), Param("storage", meta["storage"])])


def reopen_parent(uri: str, run_id: str) -> None:
    MlflowClient(uri).update_run(run_id, status="RUNNING")


def close_parent(uri: str, run_id: str, status: str) -> None:
    MlflowClient(uri).set_terminated(run_id, status)


def children(uri: str, parent_run_id: str) -> list:
    """Every child run of a parent, any status."""
    client = MlflowClient(uri)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    return client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'",
                              max_results=50_000)


def close_stale_children(uri: str, parent_run_id: str, errored_identities=()) -> list[str]:
    """Close child runs still RUNNING after the sweep (their attempt died with its worker):
    FAILED when their trial errored, else KILLED. Returns the ids closed."""
    client = MlflowClient(uri)
    closed = []
    for run in children(uri, parent_run_id):
        if run.info.status in ("RUNNING", "SCHEDULED"):
            status = "FAILED" if run.data.tags.get("identity") in set(errored_identities) else "KILLED"
            client.set_terminated(run.info.run_id, status)
            closed.append(run.info.run_id)
    return closed


def write_sweep_report(uri: str, experiment: str, name: str, out_dir: Path, parent_run_id: str,
                       questions=()) -> tuple[Path | None, str]:
    """The sweep's report (pipelines.report), logged to the parent run under `report/`, answering
    the sweep file's declared `questions` (its raw `questions:` mapping; () when it declared none).

    Returns (folder, main table). A missing report module or a report that cannot be made (e.g.
    no finished run yet) never fails the sweep: the reason comes back instead of the table.
    """
    try:
        from pipelines.report import write_report
    except ImportError as err:
        return None, f"(no report: pipelines.report is unavailable: {err})"
    try:
        files = write_report(uri, experiment, out_dir, sweep=name, log_to_mlflow_run=parent_run_id,
                             questions=questions)
    except LotteryError as err:
        return None, f"(no report: {err})"
    except Exception as err:  # the runs are safe in MLflow; `lottery report` can try again
        log.warning("the report of sweep %s failed", name, exc_info=True)
        return None, f"(no report: {type(err).__name__}: {err}; try `lottery report {name}`)"
    return Path(out_dir), files.main_table


def measure_sweep_latency(uri: str, experiment: str, name: str, latency: dict, finished: bool,
                          on_cluster: bool = False) -> str:
    """The sweep file's `latency:` pass (`pipelines.latency.measure_runs` over the sweep's runs), run
    once every trial has finished; returns one line saying what it did. On a cluster it runs as a
    Ray task on a worker node, one holding a GPU when the cluster has one (the head may have none).
    It never fails the sweep: a pass that cannot run says why and how to run it by hand."""
    by_hand = f"`lottery latency --sweep {name} --experiment {experiment}`"
    if not finished:
        return f"latency not measured: not every trial finished (a resume that finishes them measures it, or {by_hand})"
    try:
        if on_cluster:
            import ray

            task = ray.remote(**latency_task_resources(latency))(measure_latency)
            return ray.get(task.remote(uri, experiment, name, latency))
        return measure_latency(uri, experiment, name, latency)
    except LotteryError as err:
        return f"latency not measured: {err}"
    except Exception as err:  # the runs are safe in MLflow; the pass can be run again by hand
        log.warning("the latency pass of sweep %s failed", name, exc_info=True)
        return f"latency not measured: {type(err).__name__}: {err}; try {by_hand}"


def measure_latency(uri: str, experiment: str, name: str, latency: dict) -> str:
    """The latency pass itself, in this process; its one-line summary."""
    from pipelines.latency import measure_runs
    from pipelines.latency_settings import latency_settings

    return measure_runs(uri, experiment, name, latency_settings(latency), say=lambda line: None).summary()


def latency_task_resources(latency: dict) -> dict:
    """Ray resources of the latency task: one GPU where the cluster has one, else its CPU threads."""
    from tune.resources import alive_nodes

    if any(n.get("GPU", 0) >= 1 for n in alive_nodes()):
        return {"num_gpus": 1, "num_cpus": latency.get("threads") or 1}
    return {"num_cpus": latency.get("threads") or 1}


def write_confirmation_sweep(sweep, report_dir: Path | None, seeds: int = 5) -> Path | None:
    """After an Optuna search: `<report>/confirm.yaml`, a grid sweep with the search's base that
    reruns every front configuration with per-stage counts over `seeds` seeds, each beside random
    blocks of the same per-stage counts (`pipelines.report.pareto.confirmation_grid`), with its
    questions declared (`confirmation_questions`); its report names the smallest winning ticket. None when there is no front with stage counts."""
    import pandas as pd
    import yaml

    from pipelines.report.pareto import confirmation_grid, confirmation_questions

    front_csv = report_dir / "pareto.csv" if report_dir else None
    if sweep.optuna is None or front_csv is None or not front_csv.is_file():
        return None
    front = pd.read_csv(front_csv, keep_default_na=False, dtype={"planned_stage_counts": str})
    front["on_front"] = front["on_front"].astype(str) == "True"
    grid = confirmation_grid(front, seeds)
    if not grid:
        return None
    spec = {"name": f"{sweep.name}-confirm", "base": sweep.base, "grid": grid, "resources": sweep.resources,
            "max_concurrent": sweep.max_concurrent, "retries": sweep.retries,
            "questions": confirmation_questions(grid)}
    path = report_dir / "confirm.yaml"
    path.write_text(f"# The front of search {sweep.name}, rerun over {seeds} seeds beside same-stage random "
                    f"blocks:\n#   lottery sweep {path}\n" + yaml.safe_dump(spec, sort_keys=False))
    return path
