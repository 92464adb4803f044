"""Finished runs <-> record files: what a shard of work commits to git, and how a store gets it back.

    export_records(uri, "reproduction", Path("records"))    # one JSON file per FINISHED run
    import_records(Path("records"), uri, "reproduction")     # the same runs in another (fresh) store

A record is one run as text: its name, status, start and end times (ms since the epoch), params,
tags, every metric's whole history ([step, timestamp ms, value], sorted), and the small artifacts
that carry science (`KEPT_ARTIFACTS`: the plan with every block score, the filter plan, the
iterative rounds). Never weights, checkpoints, MLflow models, ONNX files or plots: records are
small and diff well, and a run that needs a dense run's weights (ticket_rewind, the reinit of a
rewind ticket, CKA) cannot take them from a record (`pipelines.steps.dense_weights` says so).

Runs are named by identity, never by run id: a run's key is its `identity` tag, a round run of an
iterative run is `<identity>/round-<r>` and names its parent by key; a run id of an exported run
found in a tag or an artifact (e.g. `comparison`: "ok: dense run <id>", `rounds.json`) is written
`@run(<key>)` and becomes the new run's id on import. MLflow's own `mlflow.*` tags are left out
(the run name has its own field, the parent link is the parent's key) and so is `IMPORTED_TAG`:
exporting an imported store gives the same files, byte for byte (sorted keys). Sweep parent runs
are not exported (their runs keep their `sweep` / `in_sweep.<name>` tags).

Import validates every record before it creates a run, creates parents before their round runs,
skips a record whose run is already FINISHED in the experiment (by identity; a round run by its
parent and round), and tags each run it creates with `IMPORTED_TAG` = the record's file name.

Records of runs logged before the rule "one meaning per metric key" (`pipelines.run_schema`) are
imported under today's names (`current_metrics`, one table: `run_schema.LEGACY_METRICS`): a legacy
per-epoch history key becomes its `epoch_` name (`test_acc` -> `epoch_test_acc`), and the final
value that three legacy keys also held at step 0 beside their history becomes the final key
(`train_time_s` stays the total, `epoch_time_s`'s final value becomes `mean_epoch_train_time_s`).
The record files themselves are not rewritten; records of today's runs import unchanged.
"""
import json
import re
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError, first_line
from pipelines import credentials
from pipelines.experiments.iterative import PARENT_TAG
from pipelines.run_schema import LEGACY_METRICS
from pipelines.tracking import IMPORTED_TAG, ensure_experiment, experiment_runs, finished_run

FORMAT_VERSION = 1
# the artifacts a record keeps (top-level files of a run); everything else (weights/, plots/, onnx/,
# MLflow models) stays out
KEPT_ARTIFACTS = ("plan.json", "filter_plan.json", "rounds.json", "rounds.csv")
_RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")
_REFERENCE = re.compile(r"@run\(([^()\s]+)\)")
_FIELDS = {"format_version": int, "key": str, "parent": (str, type(None)), "experiment": str, "run_name": str,
           "status": str, "start_time": int, "end_time": (int, type(None)), "params": dict, "tags": dict,
           "metrics": dict, "artifacts": dict}


@dataclass(frozen=True)
class ImportCounts:
    """What `import_records` did: runs created, records skipped (their run was already FINISHED), and
    how many of those skipped runs got metrics or tags from their record that they lacked."""

    imported: int
    skipped: int
    completed: int = 0


def round_key(parent_key: str, round_: int | str) -> str:
    """The key of round `round_`'s run of the iterative run `parent_key`: `<identity>/round-<r>`."""
    return f"{parent_key}/round-{round_}"


def export_records(tracking_uri: str, experiment: str, out_dir: Path, sweep: str | None = None) -> list[Path]:
    """Write one record per FINISHED run of `experiment` (or of sweep `sweep`) into `out_dir`, and one
    per FINISHED round run of each exported iterative run; returns the files written, sorted.
    The newest FINISHED run of an identity is the one exported."""
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise LotteryError(f"no MLflow experiment {experiment!r} at {credentials.redact(tracking_uri)}: "
                           "give the experiment your runs used (--experiment)")
    newest_first = sorted(experiment_runs(client, exp.experiment_id, sweep), key=lambda r: -r.info.start_time)
    runs: dict[str, object] = {}                           # key -> run
    for run in newest_first:
        tags = run.data.tags
        if run.info.status == "FINISHED" and "pipeline" in tags and tags.get("identity"):
            runs.setdefault(tags["identity"], run)
    parents = {}                                           # round key -> parent key
    for key, run in list(runs.items()):
        if run.data.tags["pipeline"] == "iterative":
            for child in _round_runs(client, exp.experiment_id, run.info.run_id):
                child_key = round_key(key, child.data.tags["round"])
                if child_key not in runs:
                    runs[child_key], parents[child_key] = child, key
    if not runs:
        where = f"sweep {sweep!r} of experiment {experiment!r}" if sweep else f"experiment {experiment!r}"
        raise LotteryError(f"{where} has no finished runs: nothing to export")
    keys = {run.info.run_id: key for key, run in runs.items()}
    names = {key: _file_name(run.data.tags) for key, run in runs.items() if key not in parents}
    names.update({key: f"{names[parent].removesuffix('.json')}-round{runs[key].data.tags['round']}.json"
                  for key, parent in parents.items()})
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LotteryError(f"records folder {out_dir} cannot be created ({err.strerror}); give a writable --out") from None
    written = []
    for key, run in runs.items():
        record = _record(client, run, key, parents.get(key), experiment)
        text = json.dumps(record, indent=1, sort_keys=True) + "\n"
        text = _RUN_ID.sub(lambda m: f"@run({keys[m.group()]})" if m.group() in keys else m.group(), text)
        path = out_dir / names[key]
        path.write_text(credentials.redact(text))   # the last guard: no credentials in a committed file
        written.append(path)
    return sorted(written)


def _round_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    """The FINISHED round runs of an iterative run, newest first."""
    found = client.search_runs([experiment_id], filter_string=f"tags.{PARENT_TAG} = '{parent_run_id}'",
                               order_by=["attributes.start_time DESC"], max_results=1000)
    return [r for r in found if r.info.status == "FINISHED" and r.data.tags.get("round")]


def _file_name(tags: dict[str, str]) -> str:
    """`<pipeline>-<criterion>[-<control>]-p<p>-seed<seed>-<identity>.json`, e.g.
    `ticket_init-grasp-inverted-p3-seed0-1a2b3c4d5e6f.json` (letters, digits, '_', '.', '-' only)."""
    control = tags.get("control", "none")
    parts = [tags["pipeline"], tags.get("criterion", "none"), *([control] if control not in ("", "none") else []),
             f"p{tags.get('p', '0')}", f"seed{tags.get('seed', '')}", tags["identity"]]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(parts)) + ".json"


def _record(client: MlflowClient, run, key: str, parent: str | None, experiment: str) -> dict:
    """One run as a record (see the module docstring); run ids still in it (the caller names them)."""
    run_id = run.info.run_id
    metrics = {name: sorted([m.step, m.timestamp, m.value] for m in client.get_metric_history(run_id, name))
               for name in run.data.metrics}
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.") and k != IMPORTED_TAG}
    return {"format_version": FORMAT_VERSION, "key": key, "parent": parent, "experiment": experiment,
            "run_name": run.info.run_name or "", "status": run.info.status, "start_time": run.info.start_time,
            "end_time": run.info.end_time, "params": dict(run.data.params), "tags": tags, "metrics": metrics,
            "artifacts": _kept_artifacts(client, run_id)}


def _kept_artifacts(client: MlflowClient, run_id: str) -> dict:
    """The run's `KEPT_ARTIFACTS`: JSON files as their content, other text files as text."""
    present = {a.path for a in client.list_artifacts(run_id) if not a.is_dir}
    kept = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in KEPT_ARTIFACTS:
            if name in present:
                text = Path(client.download_artifacts(run_id, name, tmp)).read_text()
                kept[name] = json.loads(text) if name.endswith(".json") else text
    return kept


def read_records(in_dir: Path) -> dict[str, tuple[str, dict]]:
    """Every record in `in_dir` (its `*.json` files; other files are ignored), validated: key ->
    (file name, record). LotteryError (one line) on a missing folder, a file that is not a record,
    a record of another format version, two records of one run, or a round run without its parent."""
    folder = Path(in_dir)
    if not folder.is_dir():
        raise LotteryError(f"records folder {folder} does not exist; give the folder `lottery records export` wrote")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise LotteryError(f"records folder {folder} holds no records (*.json files)")
    records: dict[str, tuple[str, dict]] = {}
    for path in files:
        record = _validated(path)
        if record["key"] in records:
            raise LotteryError(f"{path.name} and {records[record['key']][0]} are records of the same run "
                               f"({record['key']}); keep one")
        records[record["key"]] = (path.name, record)
    for name, record in records.values():
        if record["parent"] is not None and record["parent"] not in records:
            raise LotteryError(f"record {name} is a round of run {record['parent']}, whose record is not in {folder}")
    return records


def _validated(path: Path) -> dict:
    """The record in `path`, or a one-line LotteryError saying why it is none."""
    def refuse(why: str):
        raise LotteryError(f"{path} is not a run record ({why}); records are the files `lottery records export` "
                           "writes")

    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        refuse(f"not readable as JSON: {first_line(err)}")
    if not isinstance(record, dict) or "format_version" not in record:
        refuse("no format_version")
    if record["format_version"] != FORMAT_VERSION:
        raise LotteryError(f"{path} is a run record of format version {record['format_version']!r}; this version "
                           f"of the project reads format version {FORMAT_VERSION}")
    for field, kind in _FIELDS.items():
        if field not in record or not isinstance(record[field], kind):
            refuse(f"{field} missing or of the wrong type")
    if record["status"] != "FINISHED":
        refuse(f"status {record['status']!r}; records are FINISHED runs")
    if not all(isinstance(v, str) for v in (*record["params"].values(), *record["tags"].values())):
        refuse("a param or tag that is not text")
    for name, history in record["metrics"].items():
        if not isinstance(history, list) or not all(
                isinstance(m, list) and len(m) == 3 and all(isinstance(x, int | float) for x in m) for m in history):
            refuse(f"metric {name!r} is not a list of [step, timestamp, value]")
    unknown = set(record["artifacts"]) - set(KEPT_ARTIFACTS)
    if unknown:
        refuse(f"artifacts {sorted(unknown)} are not among {list(KEPT_ARTIFACTS)}")
    if record["parent"] is None and record["tags"].get("identity") != record["key"]:
        refuse("its key is not its identity tag")
    if record["parent"] is not None and not record["tags"].get("round"):
        refuse("a round run without a round tag")
    return record


def import_records(in_dir: Path, tracking_uri: str, experiment: str | None = None,
                   only: Collection[str] | None = None) -> ImportCounts:
    """Recreate the runs of the records in `in_dir` in `experiment` (default: the records' own) of
    the store at `tracking_uri`, created when missing (artifacts beside a SQLite store). `only`: the
    keys (identities) of the runs to import, the round runs of an iterative run going with it; None:
    every record. Every record is validated first; a run already FINISHED there is not created again,
    but gets the record's metrics and tags it lacks (`_complete`: a record exported after a timing
    pass completes a run imported from an earlier export); a failure part-way deletes the runs this
    call created. Returns the counts."""
    records = read_records(in_dir)
    if only is not None:
        wanted = set(only)
        records = {key: (name, record) for key, (name, record) in records.items()
                   if (record["parent"] or key) in wanted}
        if not records:
            return ImportCounts(imported=0, skipped=0)
    experiment = experiment or records_experiment(records, in_dir)
    client = MlflowClient(tracking_uri)
    results = Path(tracking_uri.removeprefix("sqlite:///")).parent if tracking_uri.startswith("sqlite:///") else Path.cwd()
    experiment_id = ensure_experiment(tracking_uri, experiment, results)
    ids: dict[str, str] = {}          # key -> run id in this store
    created: list[tuple[str, str, dict]] = []   # (run id, file name, record)
    completed = 0
    ordered = sorted(records.values(), key=lambda item: (item[1]["parent"] is not None, item[1]["key"]))
    try:
        for name, record in ordered:
            existing = _existing(client, experiment_id, record, ids)
            if existing is not None:
                ids[record["key"]] = existing
                completed += _complete(client, existing, record)
                continue
            ids[record["key"]] = _create(client, experiment_id, name, record, ids)
            created.append((ids[record["key"]], name, record))
        for run_id, _, record in created:   # every run exists now: references resolve
            _finish(client, run_id, record, ids)
    except BaseException:
        for run_id, _, _ in created:
            client.delete_run(run_id)
        raise
    return ImportCounts(imported=len(created), skipped=len(records) - len(created), completed=completed)


def records_experiment(records: dict, in_dir: Path) -> str:
    """The experiment the records of `read_records` came from; LotteryError when they name several."""
    names = sorted({record["experiment"] for _, record in records.values()})
    if len(names) > 1:
        raise LotteryError(f"the records in {in_dir} come from experiments {', '.join(names)}: name the one to "
                           "import into with --experiment")
    return names[0]


def _existing(client: MlflowClient, experiment_id: str, record: dict, ids: dict[str, str]) -> str | None:
    """The id of the FINISHED run this record already is in the experiment, or None."""
    if record["parent"] is None:
        found = finished_run(client, experiment_id, record["key"])
        return None if found is None else found.info.run_id
    parent = ids[record["parent"]]
    found = client.search_runs([experiment_id], max_results=10, order_by=["attributes.start_time DESC"],
                               filter_string=f"tags.{PARENT_TAG} = '{parent}' AND tags.round = '{record['tags']['round']}'")
    finished = [r for r in found if r.info.status == "FINISHED"]
    return finished[0].info.run_id if finished else None


def _complete(client: MlflowClient, run_id: str, record: dict) -> bool:
    """Log into the FINISHED run `run_id` the record's metric histories whose key it lacks and its
    tags that it lacks (not MLflow's own, none naming another run); what the run has stays as it is.
    True when anything was logged."""
    data = client.get_run(run_id).data
    missing = {key: history for key, history in current_metrics(record["metrics"]).items() if key not in data.metrics}
    tags = [RunTag(k, v) for k, v in sorted(record["tags"].items())
            if k not in data.tags and not k.startswith("mlflow.") and not _REFERENCE.search(v)]
    _log_histories(client, run_id, missing)
    if tags:
        client.log_batch(run_id, tags=tags)
    return bool(missing or tags)


def _log_histories(client: MlflowClient, run_id: str, histories: dict[str, list]) -> None:
    """Log metric histories ({key: [[step, timestamp ms, value], ...]}) into `run_id`, in batches."""
    metrics = [Metric(key, float(value), int(timestamp), int(step))
               for key, history in sorted(histories.items()) for step, timestamp, value in history]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000])


def _create(client: MlflowClient, experiment_id: str, name: str, record: dict, ids: dict[str, str]) -> str:
    """A new RUNNING run with the record's times, params, metric histories and the tags that name no
    other run (those follow in `_finish`, once every run exists)."""
    tags = {k: v for k, v in record["tags"].items() if not _REFERENCE.search(v)}
    tags[IMPORTED_TAG] = name
    if record["parent"] is not None:
        tags["mlflow.parentRunId"] = ids[record["parent"]]
    run_id = client.create_run(experiment_id, start_time=record["start_time"], tags=tags,
                               run_name=record["run_name"] or None).info.run_id
    params = [Param(k, v) for k, v in sorted(record["params"].items())]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start:start + 100])
    _log_histories(client, run_id, current_metrics(record["metrics"]))
    return run_id


# legacy keys that no run logs today: a record holding one was logged before the naming rule
_LEGACY_ONLY = frozenset(old for old, (_, final) in LEGACY_METRICS.items() if final != old)


def current_metrics(metrics: dict[str, list]) -> dict[str, list]:
    """A record's metric histories ({key: [[step, timestamp ms, value], ...]}) under today's keys.

    A record holding none of the legacy-only keys (`epoch_time_s`, `test_acc`, `steps`, ...) is
    returned as it is. Otherwise every key of `run_schema.LEGACY_METRICS` is renamed: a history key
    to its `epoch_` name; a key that also held a final value (val_acc, train_time_s, epoch_time_s)
    is split: its final value, the last entry at step 0, logged after every entry of a later step
    (the evaluation follows the training), goes to the final key, the rest to the history key.
    """
    if not _LEGACY_ONLY.intersection(metrics):
        return metrics
    out: dict[str, list] = {}
    for key, entries in metrics.items():
        if key not in LEGACY_METRICS:
            out.setdefault(key, []).extend(entries)
            continue
        history_key, final_key = LEGACY_METRICS[key]
        history = sorted(entries)
        if final_key is not None:
            at_zero = [m for m in history if m[0] == 0]
            later = max((m[1] for m in history if m[0] != 0), default=None)
            if at_zero and (later is None or at_zero[-1][1] >= later):
                final = max(at_zero, key=lambda m: m[1])
                history.remove(final)
                out.setdefault(final_key, []).append(final)
        if history:
            out.setdefault(history_key, []).extend(history)
    return {key: sorted(entries) for key, entries in out.items()}


def _finish(client: MlflowClient, run_id: str, record: dict, ids: dict[str, str]) -> None:
    """The tags that name other runs and the kept artifacts, references resolved; then FINISHED at the
    record's end time."""
    tags = [RunTag(k, _resolve(v, ids)) for k, v in sorted(record["tags"].items()) if _REFERENCE.search(v)]
    if tags:
        client.log_batch(run_id, tags=tags)
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in sorted(record["artifacts"].items()):
            content = _resolve(content, ids)
            path = Path(tmp) / name
            path.write_text(json.dumps(content, indent=2, sort_keys=True) if name.endswith(".json") else content)
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED", end_time=record["end_time"])


def _resolve(value, ids: dict[str, str]):
    """`value` (text, or JSON content) with every `@run(<key>)` of a known run replaced by its run id."""
    if isinstance(value, str):
        return _REFERENCE.sub(lambda m: ids.get(m.group(1), m.group()), value)
    if isinstance(value, list):
        return [_resolve(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, ids) for k, v in value.items()}
    return value


__all__ = ["FORMAT_VERSION", "IMPORTED_TAG", "ImportCounts", "KEPT_ARTIFACTS", "current_metrics", "export_records",
           "import_records", "read_records", "records_experiment"]
