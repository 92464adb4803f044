"""MLflow plumbing: the store, finding a run again by its identity, logging without surprises.

The default store is `sqlite:///<results_dir>/mlflow.db` with artifacts in `<results_dir>/artifacts`
(absolute paths: a Ray trial runs in its own working directory). `MLFLOW_TRACKING_URI` or
`tracking.tracking_uri` points elsewhere; a server URI is probed before any training starts.
"""
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError, first_line
from lottery_core.filelock import exclusive_lock
from pipelines import credentials, layout
from pipelines.config import RunConfig

UNFINISHED = ("RUNNING", "FAILED", "KILLED", "SCHEDULED")
# A run belongs to every sweep that ran it or reused it: tag `in_sweep.<sweep name>` = "true"
# (the `sweep` tag names only the sweep that created it).
SWEEP_MEMBER_PREFIX = "in_sweep."
# A run created from a record (`pipelines.records`) carries this tag (value: the record's file name):
# it has its metrics and plans, never weights.
IMPORTED_TAG = "imported_from_records"


def sweep_member_tag(sweep: str) -> str:
    """The tag key that marks a run as part of sweep `sweep` (sweep names are letters, digits, -_.)."""
    return SWEEP_MEMBER_PREFIX + sweep


def check_sweep_name(name) -> str:
    """A sweep name is a folder and an MLflow tag: letters, digits, '-', '_', '.' (not first)."""
    name = str(name)
    if not name or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in name) or name.startswith("."):
        raise LotteryError(f"sweep name {name!r}: use letters, digits, '-', '_' and '.' only (not a path)")
    return name


def tracking_uri(cfg: RunConfig) -> str:
    """The tracking URI for a config: setting, else $MLFLOW_TRACKING_URI (its credentials moved to
    MLflow's credential variables, see `pipelines.credentials`), else SQLite in results_dir."""
    uri = cfg.tracking.tracking_uri
    if not uri and os.environ.get("MLFLOW_TRACKING_URI"):
        uri = credentials.split_credentials(os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = uri   # what Ray's workers inherit holds no password either
    if uri:
        if "://" not in uri and not uri.startswith("databricks"):
            raise LotteryError(f"tracking URI {uri!r} is a plain path; MLflow's file store is deprecated: "
                               f"use sqlite:////abs/path/mlflow.db or http://host:port")
        return uri
    return f"sqlite:///{layout.store_database(cfg.results_path())}"


def check_reachable(uri: str, timeout_s: float = 3.0) -> None:
    """Raise a one-line LotteryError when an http(s) tracking URI is not an MLflow server that
    answers its health endpoint (`GET /health`, unauthenticated even with MLflow's auth app)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    shown = credentials.redact(uri)
    hint = (f"start it (mlflow server --host 127.0.0.1 --port {port}) or set tracking.tracking_uri / "
            "MLFLOW_TRACKING_URI")
    health = f"{credentials.without_credentials(uri).rstrip('/')}/health"   # unauthenticated
    try:
        with urllib.request.urlopen(health, timeout=timeout_s) as answer:
            body = answer.read(64).decode(errors="replace").strip()
    except urllib.error.HTTPError as err:
        raise LotteryError(f"{shown} answers, but not as an MLflow server (GET /health: HTTP {err.code}); "
                           f"{hint}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        reason = getattr(reason, "strerror", None) or reason
        raise LotteryError(f"MLflow tracking server {shown} is unreachable ({reason}); {hint}") from None
    if body != "OK":
        raise LotteryError(f"{shown} answers, but not as an MLflow server (GET /health gave {body[:30]!r}); {hint}")


def check_driver(uri: str) -> None:
    """Raise a one-line LotteryError when a database tracking URI's SQLAlchemy driver is missing
    (e.g. postgresql:// without psycopg2), instead of MLflow's traceback at the first query."""
    scheme = uri.split("://", 1)[0]
    if scheme in ("http", "https", "sqlite", "file", "databricks") or "://" not in uri:
        return
    import sqlalchemy.engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        sqlalchemy.engine.make_url(uri).get_dialect().import_dbapi()
    except (NoSuchModuleError, ArgumentError) as err:
        raise LotteryError(f"tracking URI {credentials.redact(uri)}: SQLAlchemy knows no database {scheme!r} "
                           f"({first_line(err)}); use http(s)://, sqlite:///, postgresql://, "
                           "mysql:// or mssql://") from None
    except ImportError as err:
        raise LotteryError(f"tracking URI {credentials.redact(uri)} needs the Python module {err.name!r}, which is "
                           "not installed here: install it, or name a driver you have in the URI "
                           "(postgresql+psycopg2://, mysql+pymysql://)") from None


def check_uri(uri: str) -> None:
    """The checks every store gets before it is used: a server answers, a database has its driver."""
    check_reachable(uri)
    check_driver(uri)


def existing_store(cfg: RunConfig) -> str:
    """The tracking URI of a store that must exist already (report, ui): a SQLite store that is
    not there is a one-line error, not a new empty store."""
    uri = tracking_uri(cfg)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise LotteryError(f"no MLflow store in {cfg.results_path()} (no mlflow.db): nothing has run with this "
                           "--results-dir yet; give the folder your runs used")
    check_uri(uri)
    return uri


def prepare_store(cfg: RunConfig) -> tuple[str, str]:
    """Create the store and experiment once (call in the driver before parallel trials start).

    Returns (tracking_uri, experiment_id). Probes a server URI first.
    """
    uri = tracking_uri(cfg)
    check_uri(uri)
    if not uri.startswith("sqlite:///"):
        return uri, _experiment(cfg, uri)
    database = Path(uri.removeprefix("sqlite:///"))
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LotteryError(f"results folder {database.parent} cannot be created ({err.strerror}); "
                           "choose a writable --results-dir / tracking.results_dir") from None
    # concurrent first-time migrations of one SQLite file race (MLflow creates its tables without a lock): one process at a time
    with exclusive_lock(layout.store_lock(database)):
        return uri, _experiment(cfg, uri)


def _refusal(err: Exception) -> int | None:
    """401 or 403 when an MLflow request was refused for its credentials (MLflow's auth app), else None."""
    code = getattr(err, "error_code", "")
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return 401 if code == "UNAUTHENTICATED" else 403
    found = re.search(r"error code (401|403)\b", str(err))
    return int(found.group(1)) if found else None


def _experiment(cfg: RunConfig, uri: str) -> str:
    return ensure_experiment(uri, cfg.tracking.experiment, cfg.results_path())


def ensure_experiment(uri: str, name: str, results: Path) -> str:
    """The id of experiment `name`, created (with artifacts in `results`/artifacts beside a SQLite
    store) when it does not exist, restored when it was deleted."""
    client = MlflowClient(uri)
    try:
        experiment = client.get_experiment_by_name(name)
    except mlflow.exceptions.MlflowException as err:
        refusal = _refusal(err)
        if refusal is None:
            raise
        raise LotteryError(f"MLflow tracking server {credentials.redact(uri)} refused this client (HTTP {refusal}): set "
                           "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment to an "
                           "account of that server") from None
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    artifacts = None
    if uri.startswith("sqlite:///"):
        artifacts = layout.artifacts_dir(results).as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifacts)
    except mlflow.exceptions.MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(name).experiment_id


def find_runs(client: MlflowClient, experiment_id: str, identity: str, statuses=None) -> list:
    """Runs of one identity, newest first; `statuses` filters (e.g. ("FINISHED",))."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.identity = '{identity}'",
                              order_by=["attributes.start_time DESC"], max_results=100)
    return [r for r in runs if statuses is None or r.info.status in statuses]


def experiment_runs(client: MlflowClient, experiment_id: str, sweep: str | None = None) -> list:
    """Every run of an experiment, or of one sweep: the runs it made (tag `sweep`) and the finished
    runs it reused (tag `in_sweep.<sweep>`)."""
    if not sweep:
        return client.search_runs([experiment_id], max_results=50_000)
    found = {r.info.run_id: r for query in (f"tags.sweep = '{sweep}'", f"tags.`{sweep_member_tag(sweep)}` = 'true'")
             for r in client.search_runs([experiment_id], filter_string=query, max_results=50_000)}
    return list(found.values())


def finished_run(client: MlflowClient, experiment_id: str, identity: str):
    """The newest FINISHED run of an identity, or None."""
    runs = find_runs(client, experiment_id, identity, ("FINISHED",))
    return runs[0] if runs else None


def code_version() -> str:
    """The git commit of the code (with '-dirty' when the tree has changes), else 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


__all__ = ["IMPORTED_TAG", "RunStatus", "check_driver", "check_reachable", "check_uri", "check_sweep_name", "existing_store", "code_version", "experiment_runs", "find_runs", "finished_run",
           "prepare_store", "tracking_uri"]
