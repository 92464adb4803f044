"""Run records (issue 13): a store exported as JSON files and imported into fresh stores.

The store holds a dense run, a SNIP ticket at initialization (p = 1) and an iterative SNIP run of
two rounds of one block (ResNet20 on the tiny data set, 2 epochs): 3 runs and 2 round runs, so 5
records. Imported elsewhere they must give the same report table, the same metric histories and
plans, the same records again (byte for byte), and runs that `lottery run` finds by identity.
"""
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from pipelines import layout, steps
from pipelines.audit import audit_experiment
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.context import RunContext, with_fingerprint
from pipelines.records import KEPT_ARTIFACTS, export_records, import_records
from pipelines.report.runs import load_runs
from pipelines.runner import run
from pipelines.tracking import IMPORTED_TAG, tracking_uri

pytestmark = pytest.mark.slow   # runs trained, exported and imported

EXPERIMENT = "records"


# ResNet20 on the tiny data set, 2 epochs, SNIP; accuracy, cost and CKA (8 images) evaluated
TINY = {
    "model": {"name": "resnet20"}, "threads": 1,       # one thread: faster on a busy CPU, not in the identity
    "data": {"name": "folder"},
    "training": {"epochs": 2, "batch_size": 16, "lr": 0.05, "keep_epochs": [0, 1]},
    "pruning": {"criterion": "snip", "p": 1, "images_per_class": 2},
    "evaluation": {"corruptions": [], "attacks": [], "cka_images": 8},
    "tracking": {"experiment": EXPERIMENT},
}


def tiny(results: Path, data: Path, *overrides):
    """The TINY config on `data`, tracked in `results`."""
    return with_fingerprint(load_config(TINY, [f"data.root={data}", f"tracking.results_dir={results}", *overrides]))


def store_uri(results: Path) -> str:
    return f"sqlite:///{results}/mlflow.db"


def by_identity(uri: str) -> dict:
    """identity (or `<iterative identity>/round-<r>`) -> FINISHED run, over every run of the experiment."""
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id], max_results=1000)
    return {r.data.tags.get("identity") or f"{r.data.tags['iterative_identity']}/round-{r.data.tags['round']}": r
            for r in runs if r.info.status == "FINISHED"}


@pytest.fixture(scope="module")
def original(tmp_path_factory, tiny_folder):
    """The store that trained: dense, ticket_init p = 1, iterative p = 2 (k = 1); and its records."""
    tmp = tmp_path_factory.mktemp("records")
    results = tmp / "trained"
    cfgs = {name: tiny(results, tiny_folder, *overrides) for name, overrides in (
        ("dense", ["pipeline=dense"]), ("ticket", ["pipeline=ticket_init"]),
        ("iterative", ["pipeline=iterative", "pruning.p=2", "pruning.blocks_per_round=1"]))}
    outcomes = {name: run(cfg) for name, cfg in cfgs.items()}
    files = export_records(tracking_uri(cfgs["dense"]), EXPERIMENT, tmp / "records")
    return {"tmp": tmp, "results": results, "uri": tracking_uri(cfgs["dense"]), "cfgs": cfgs,
            "outcomes": outcomes, "folder": tmp / "records", "files": files}


@pytest.fixture(scope="module")
def imported(original):
    """The records imported by `lottery records import` into a fresh results folder."""
    results = original["tmp"] / "fresh"
    assert main(["records", "import", str(original["folder"]), "--results-dir", str(results)]) == 0
    return {"results": results, "uri": store_uri(results)}


def test_one_record_per_finished_run_and_round_named_readably_without_weights_or_run_ids(original):
    ids = {name: cfg.identity() for name, cfg in original["cfgs"].items()}
    iterative = f"iterative-snip-p2-seed0-{ids['iterative']}"
    assert [f.name for f in original["files"]] == sorted([
        f"dense-none-p0-seed0-{ids['dense']}.json", f"ticket_init-snip-p1-seed0-{ids['ticket']}.json",
        f"{iterative}.json", f"{iterative}-round1.json", f"{iterative}-round2.json"])
    records = {f.name: json.loads(f.read_text()) for f in original["files"]}
    artifacts = {name: sorted(r["artifacts"]) for name, r in records.items()}
    assert artifacts == {f"dense-none-p0-seed0-{ids['dense']}.json": [],
                         f"ticket_init-snip-p1-seed0-{ids['ticket']}.json": ["plan.json"],
                         f"{iterative}.json": ["plan.json", "rounds.csv", "rounds.json"],
                         f"{iterative}-round1.json": ["plan.json"], f"{iterative}-round2.json": ["plan.json"]}
    assert set(KEPT_ARTIFACTS) >= {a for names in artifacts.values() for a in names}   # no weights, plots, models
    round1 = records[f"{iterative}-round1.json"]
    assert (round1["key"], round1["parent"]) == (f"{ids['iterative']}/round-1", ids["iterative"])
    assert round1["tags"]["iterative_parent"] == f"@run({ids['iterative']})"        # a run id becomes a reference
    ticket = records[f"ticket_init-snip-p1-seed0-{ids['ticket']}.json"]
    assert ticket["tags"]["comparison"] == f"ok: dense run @run({ids['dense']})"
    assert ticket["artifacts"]["plan.json"]["removed"] == ticket["tags"]["removed_blocks"].split(",")
    assert [step for step, _, _ in ticket["metrics"]["epoch_test_acc"]] == [0, 1]
    for text in (f.read_text() for f in original["files"]):
        assert not re.search(r"\b[0-9a-f]{32}\b", text)                           # no run id left
        assert '"mlflow.' not in text and IMPORTED_TAG not in text


def test_imported_store_gives_the_same_report_table(original, imported):
    before, after = (load_runs(uri, EXPERIMENT).drop(columns="run_id").sort_values("identity")
                     .reset_index(drop=True) for uri in (original["uri"], imported["uri"]))
    assert len(after) == 3 and set(after.pipeline) == {"dense", "ticket_init", "iterative"}
    pd.testing.assert_frame_equal(before[sorted(before.columns)], after[sorted(after.columns)])


def test_lottery_report_over_the_imported_store_writes_the_same_tables(original, imported, tmp_path):
    for name, results in (("old", original["results"]), ("new", imported["results"])):
        assert main(["report", "--experiment", EXPERIMENT, "--results-dir", str(results),
                     "--out", str(tmp_path / name)]) == 0
    tables = sorted(f.name for f in (tmp_path / "old").glob("*.csv"))
    assert {"summary.csv", "iterative.csv"} <= set(tables)
    assert tables == sorted(f.name for f in (tmp_path / "new").glob("*.csv"))
    for name in tables:
        assert (tmp_path / "old" / name).read_text() == (tmp_path / "new" / name).read_text(), name


def test_imported_runs_have_the_same_histories_times_plans_and_parents(original, imported, tmp_path):
    old, new = by_identity(original["uri"]), by_identity(imported["uri"])
    assert sorted(old) == sorted(new) and len(new) == 5
    old_client, new_client = MlflowClient(original["uri"]), MlflowClient(imported["uri"])
    for key, run_old in old.items():
        run_new = new[key]
        assert run_new.data.tags[IMPORTED_TAG].endswith(".json") and IMPORTED_TAG not in run_old.data.tags
        assert (run_new.info.start_time, run_new.info.end_time, run_new.info.run_name, run_new.data.params) == \
            (run_old.info.start_time, run_old.info.end_time, run_old.info.run_name, run_old.data.params)
        for metric in run_old.data.metrics:
            history = [sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(r.info.run_id, metric))
                       for client, r in ((old_client, run_old), (new_client, run_new))]
            assert history[0] == history[1], (key, metric)
        for name in {a.path for a in old_client.list_artifacts(run_old.info.run_id)} & {"plan.json", "filter_plan.json"}:
            plans = [json.loads(Path(client.download_artifacts(r.info.run_id, name, str(tmp_path / side))).read_text())
                     for client, r, side in ((old_client, run_old, "old"), (new_client, run_new, "new"))]
            assert plans[0] == plans[1]
    iterative = original["cfgs"]["iterative"].identity()
    parent = new[iterative].info.run_id
    for r in (1, 2):
        child = new[f"{iterative}/round-{r}"]
        assert child.data.tags["mlflow.parentRunId"] == parent == child.data.tags["iterative_parent"]
    table = json.loads(Path(new_client.download_artifacts(parent, "rounds.json", str(tmp_path / "r"))).read_text())
    assert [row["run_id"] for row in table["rounds"]] == [new[f"{iterative}/round-{r}"].info.run_id for r in (1, 2)]
    comparison = new[original["cfgs"]["ticket"].identity()].data.tags["comparison"]
    assert comparison == f"ok: dense run {new[original['cfgs']['dense'].identity()].info.run_id}"


def test_exporting_the_imported_store_gives_the_same_files_byte_for_byte(original, imported, tmp_path, capsys):
    assert main(["records", "export", "--experiment", EXPERIMENT, "--results-dir", str(imported["results"]),
                 "--out", str(tmp_path / "again")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("5 run records (2 of them iterative rounds) written to ")
    assert "Downloading artifacts" not in err                   # no progress bar per run
    again = sorted((tmp_path / "again").glob("*.json"))
    assert [f.name for f in again] == [f.name for f in original["files"]]
    for first, second in zip(original["files"], again, strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_the_ledger_of_both_stores_is_clean_with_one_attempt_per_run(original, imported, capsys):
    for uri in (original["uri"], imported["uri"]):
        audits = audit_experiment(uri, EXPERIMENT)
        assert len(audits) == 5 and all(a.problems == [] for a in audits)
        # the three runs trained once each; the rounds of an iterative run at θ0 only score
        assert [a.attempts for a in audits] == [((0, 0),), ((0, 0),), None, None, ((0, 0),)]
    assert main(["records", "check", "--experiment", EXPERIMENT, "--results-dir", str(imported["results"])]) == 0
    assert "5 identities: 5 finished, 0 not; 5 runs" in capsys.readouterr().out


def test_a_second_import_changes_nothing(original, imported):
    before = {k: r.info.run_id for k, r in by_identity(imported["uri"]).items()}
    counts = import_records(original["folder"], imported["uri"], EXPERIMENT)
    assert (counts.imported, counts.skipped) == (0, 5)
    client = MlflowClient(imported["uri"])
    every = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id], max_results=100)
    assert len(every) == 5 and {k: r.info.run_id for k, r in by_identity(imported["uri"]).items()} == before


def test_a_later_export_completes_runs_imported_from_an_earlier_one(original, tmp_path):
    """A record exported after a timing pass holds metrics and tags its earlier export lacked; imported
    over the earlier one it adds them to the FINISHED run and changes nothing it already had."""
    later = tmp_path / "later"
    shutil.copytree(original["folder"], later)
    name = next(f.name for f in sorted(later.glob("dense-*.json")))
    record = json.loads((later / name).read_text())
    acc = record["metrics"]["acc"]
    record["metrics"]["latency_b1_ms"] = [[0, 1765000000000, 1.5]]
    record["metrics"]["acc"] = [[0, 1765000000000, 1.0]]         # a key the run has: left as it is
    record["tags"]["latency_pass"] = "pass-1"
    (later / name).write_text(json.dumps(record))
    uri = store_uri(tmp_path / "store")
    assert import_records(original["folder"], uri, EXPERIMENT).imported == 5
    counts = import_records(later, uri, EXPERIMENT)
    assert (counts.imported, counts.skipped, counts.completed) == (0, 5, 1)
    run_ = by_identity(uri)[record["key"]]
    history = MlflowClient(uri).get_metric_history(run_.info.run_id, "acc")
    assert run_.data.metrics["latency_b1_ms"] == 1.5 and run_.data.tags["latency_pass"] == "pass-1"
    assert [[m.step, m.timestamp, m.value] for m in history] == acc
    assert import_records(later, uri, EXPERIMENT).completed == 0


def test_runs_after_import_find_the_imported_dense_run_and_never_retrain_it(original, tiny_folder):
    results = original["tmp"] / "next-shard"
    counts = import_records(original["folder"], store_uri(results), EXPERIMENT)
    assert (counts.imported, counts.skipped) == (5, 0)
    dense_id = by_identity(store_uri(results))[original["cfgs"]["dense"].identity()].info.run_id

    def dense_runs() -> int:
        return sum(r.data.tags.get("pipeline") == "dense" for r in by_identity(store_uri(results)).values())

    assert run(tiny(results, tiny_folder, "pipeline=dense")).status == "existing"        # found by identity
    # a rewind ticket needs the dense run's θ_1 and θ_n, which records do not hold: one clear line
    rewind = tiny(results, tiny_folder, "pipeline=ticket_rewind", "pruning.rewind_epoch=1")
    client = MlflowClient(store_uri(results))
    ctx = RunContext(rewind, client, client.get_experiment_by_name(EXPERIMENT).experiment_id, "",
                     torch.device("cpu"), results / "unused")
    with pytest.raises(LotteryError, match=rf"^ticket_rewind needs theta_1\.pt of dense run {dense_id} \(identity "
                                           rf"{original['cfgs']['dense'].identity()}\), which was imported from "
                                           r"records, and records hold no weights: copy \S+ from the machine") as err:
        steps.dense_weights(ctx, steps.find_dense(ctx), 1)
    assert "\n" not in str(err.value)
    # CKA needs θ_n too: a ticket trained against an imported dense run is compared with it (Δ, costs)
    # and says in a tag that CKA was skipped, because the record holds no weights
    ticket = tiny(results, tiny_folder, "pipeline=ticket_init", "pruning.p=2")
    outcome = run(ticket)
    assert outcome.status == "finished" and "cka_vs_dense" not in outcome.metrics and "delta_acc" in outcome.metrics
    tags = client.get_run(outcome.run_id).data.tags
    assert tags["comparison"] == f"ok: dense run {dense_id}"
    assert re.fullmatch(rf"skipped: dense run {dense_id} was imported from records, which hold no weights "
                        r"\(copy \S+ here to measure it\)", tags["cka"])
    # with the dense weights copied from the machine that trained it, CKA is measured against the imported run
    identity = original["cfgs"]["dense"].identity()
    shutil.copytree(layout.weights_dir(original["results"], identity), layout.weights_dir(results, identity))
    outcome = run(tiny(results, tiny_folder, "pipeline=ticket_init", "pruning.p=2", "pruning.criterion=grasp"))
    assert outcome.status == "finished" and "cka_vs_dense" in outcome.metrics
    assert "cka" not in client.get_run(outcome.run_id).data.tags
    assert dense_runs() == 1


def test_import_of_only_some_runs_takes_an_iterative_run_with_its_rounds(original, tmp_path):
    uri = store_uri(tmp_path)
    iterative = original["cfgs"]["iterative"].identity()
    counts = import_records(original["folder"], uri, EXPERIMENT, only={iterative})
    assert (counts.imported, counts.skipped) == (3, 0)
    assert sorted(by_identity(uri)) == [iterative, f"{iterative}/round-1", f"{iterative}/round-2"]
    counts = import_records(original["folder"], uri, EXPERIMENT, only={original["cfgs"]["dense"].identity(), iterative})
    assert (counts.imported, counts.skipped) == (1, 3) and len(by_identity(uri)) == 4


def bad_folder(tmp_path: Path, name: str, content: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "x.json").write_text(content)
    return folder


@pytest.mark.parametrize("case, message", [
    ("missing", r"records folder .*missing does not exist"),
    ("not_json", r"x\.json is not a run record \(not readable as JSON"),
    ("not_record", r"x\.json is not a run record \(no format_version\)"),
    ("version", r"x\.json is a run record of format version 99; this version of the project reads format version 1"),
])
def test_import_of_bad_records_is_one_line_and_creates_no_store(case, message, tmp_path, capsys):
    folder = {"missing": lambda: tmp_path / "missing",
              "not_json": lambda: bad_folder(tmp_path, "a", "{not json"),
              "not_record": lambda: bad_folder(tmp_path, "b", '{"runs": []}'),
              "version": lambda: bad_folder(tmp_path, "c", '{"format_version": 99}')}[case]()
    assert main(["records", "import", str(folder), "--results-dir", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.match(r"lottery records: error: .*" + message, err)
    assert not (tmp_path / "store").exists()


def test_a_bad_record_among_good_ones_imports_nothing(original, tmp_path, capsys):
    folder = tmp_path / "mixed"
    shutil.copytree(original["folder"], folder)
    (folder / "zz.json").write_text('{"format_version": 1, "key": "k"}')
    assert main(["records", "import", str(folder), "--results-dir", str(tmp_path / "store")]) == 2
    assert "zz.json is not a run record (parent missing or of the wrong type)" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_export_of_an_unknown_experiment_is_one_line(original, tmp_path, capsys):
    code = main(["records", "export", "--experiment", "nope", "--results-dir", str(original["results"]),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no MLflow experiment 'nope'" in err
    assert not (tmp_path / "out").exists()
