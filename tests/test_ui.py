"""`lottery ui`: the MLflow UI of a local store, bound to 127.0.0.1 only, announced with the link to
the newest sweep's saved view (its runs with the key columns chosen; `pipelines.ui_view`), or to
the experiment's runs table when it has no sweep (MLflow 3 opens a GenAI overview page otherwise)."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from helpers import free_port
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from pipelines import ui_view

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["tags.`pipeline`", "tags.`criterion`", "tags.`p`", "tags.`seed`", "metrics.`acc`", "metrics.`delta_acc`",
           "tags.`verdict`", "metrics.`macs_reduction_pct`"]


def run(client, experiment_id, tags, metrics, parent=None):
    tags = {"model": "resnet20", "control": "none", "rewind_epoch": "0", **tags}
    if parent:
        tags["mlflow.parentRunId"] = parent
    r = client.create_run(experiment_id, tags=tags)
    for key, value in metrics.items():
        client.log_metric(r.info.run_id, key, value)
    client.set_terminated(r.info.run_id, "FINISHED")
    return r.info.run_id


def sweep(client, experiment_id, name, seeds=(0,)):
    """A sweep's parent run and its children as the sweep logs them: dense, a GraSP ticket."""
    parent = client.create_run(experiment_id, run_name=f"sweep {name}",
                               tags={"sweep": name, "sweep_parent": "true"}).info.run_id
    ids = {}
    for seed in seeds:
        ids[("dense", seed)] = run(client, experiment_id, {"sweep": name, "pipeline": "dense", "criterion": "none",
                                                           "p": "0", "seed": str(seed), "identity": f"d{seed}",
                                                           "dense_identity": f"d{seed}"},
                                   {"acc": 40.0 + seed, "macs": 100.0}, parent)
        ids[("grasp", seed)] = run(client, experiment_id, {"sweep": name, "pipeline": "ticket_init", "criterion": "grasp",
                                                           "p": "1", "seed": str(seed), "identity": f"g{seed}",
                                                           "dense_identity": f"d{seed}"},
                                   {"acc": 41.0 + seed + 0.1 * seed, "macs": 89.0, "delta_acc": 1.0 + 0.1 * seed,
                                    "macs_reduction_pct": 11.0}, parent)
    client.set_terminated(parent, "FINISHED")
    return parent, ids


def test_the_view_state_is_the_ui_saved_view_envelope_with_the_key_columns():
    value = ui_view.envelope("sweep demo-1", ui_view.view_state("demo-1"), now_ms=1)
    outer = json.loads(value)
    assert set(outer) == {"name", "createdAt", "updatedAt", "state"} and outer["name"] == "sweep demo-1"
    assert isinstance(outer["state"], str)           # the UI parses `state` as a JSON string
    state = json.loads(outer["state"])
    assert state["selectedColumns"] == COLUMNS
    assert state["searchFilter"] == "tags.sweep = 'demo-1' AND tags.pipeline LIKE '%'"
    assert state["orderByKey"] == "metrics.`acc`" and state["orderByAsc"] is False
    assert "runsExpanded" not in state               # the UI drops it from a saved view
    assert ui_view.read_view(value) == state
    assert ui_view.sweep_page("http://h:1/", "7", "sweep-demo-1") == \
        "http://h:1/#/experiments/7/runs?viewStateShareKey=sweep-demo-1&workflowType=machine_learning"


def test_the_sweep_filter_finds_its_children_without_the_parent(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    eid = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    parent, ids = sweep(client, eid, "s-1")
    sweep(client, eid, "s-2")
    found = {r.info.run_id for r in client.search_runs([eid], filter_string=ui_view.sweep_filter("s-1"))}
    assert found == set(ids.values()) and parent not in found
    assert ui_view.latest_sweep(client, eid)[0] == "s-2"
    assert ui_view.sweep_parent(client, eid, "s-1") == parent and ui_view.sweep_parent(client, eid, "x") is None


def test_verdicts_come_from_the_report_one_seed_has_none(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    eid = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    _, one = sweep(client, eid, "one")
    _, three = sweep(client, eid, "three", seeds=(0, 1, 2))
    assert ui_view.write_verdicts(client, uri, "e", "one") == 2
    assert client.get_run(one[("dense", 0)]).data.tags["verdict"] == "reference (dense)"
    assert client.get_run(one[("grasp", 0)]).data.tags["verdict"] == "1 seed: no verdict"
    # Δ 1.0, 1.1, 1.2 over 3 seeds, no question declared: the raw verdict, said to be exploratory
    assert ui_view.verdicts(uri, "e", "three")[three[("grasp", 1)]] == "better (exploratory)"
    with pytest.raises(LotteryError, match="no finished runs"):
        ui_view.verdicts(uri, "e", "nothing")
    # a sweep that declared a question about its tickets gets the adjusted verdict and the question
    parent, declared = sweep(client, eid, "declared", seeds=(0, 1, 2))
    client.log_dict(parent, {"sweep": {"questions": {"questions": [
        {"id": "Q1", "ask": "Does GraSP win?", "compare": "ticket_vs_dense", "select": {"criterion": "grasp"}}]}}},
        "sweep.json")
    assert ui_view.verdicts(uri, "e", "declared")[declared[("grasp", 1)]] == "better (Q1)"


def start_ui(tmp_path, port, *extra):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port), "--results-dir",
                             str(tmp_path), *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)


def test_ui_listens_on_localhost_only_and_prints_the_view_of_the_newest_sweep(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment("other")
    experiment_id = client.create_experiment("ui-check", artifact_location=(tmp_path / "artifacts").as_uri())
    sweep(client, experiment_id, "old")
    _, ids = sweep(client, experiment_id, "demo-1")
    port = free_port()
    ui = start_ui(tmp_path, port, "--experiment", "ui-check")
    try:
        first = ui.stdout.readline().strip()
        assert first == (f"MLflow UI on http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?"
                         f"viewStateShareKey=sweep-demo-1&workflowType=machine_learning "
                         f"(store {uri}); Ctrl-C stops it")
        assert ui.stdout.readline().startswith("the view 'sweep demo-1' (Views menu): one row per run")
        api = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/get?experiment_id={experiment_id}"
        deadline = time.time() + 240   # a loaded 2-core machine: over a minute to import
        while True:  # the page's experiment is the one asked for, with the view the link names
            try:
                with urllib.request.urlopen(api, timeout=2) as answer:
                    experiment = json.loads(answer.read())["experiment"]
                    break
            except OSError:
                assert ui.poll() is None and time.time() < deadline, "the MLflow UI did not start"
                time.sleep(0.5)
        assert experiment["name"] == "ui-check"
        tags = {t["key"]: t["value"] for t in experiment["tags"]}
        assert json.loads(json.loads(tags["mlflow.sharedViewState.sweep-demo-1"])["state"])["selectedColumns"] == COLUMNS
        assert "mlflow.sharedViewState.sweep-old" not in tags
        assert client.get_run(ids[("grasp", 0)]).data.tags["verdict"] == "1 seed: no verdict"
        listening = {c.laddr.ip for c in psutil.net_connections(kind="inet")
                     if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}  # not 0.0.0.0, not another interface
    finally:
        os.killpg(ui.pid, signal.SIGKILL)
        ui.wait(timeout=30)


def test_without_a_sweep_the_link_is_the_runs_page_and_an_unknown_sweep_is_refused(tmp_path):
    from pipelines.cli import main

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_experiment("no-sweep", artifact_location=(tmp_path / "a").as_uri())
    assert main(["ui", "--results-dir", str(tmp_path), "--experiment", "no-sweep", "--sweep", "nope"]) == 2
    from pipelines.cli import _runs_page
    from pipelines.config import load_config

    cfg = load_config(None, [f"tracking.results_dir={tmp_path}", "tracking.experiment=no-sweep"])
    page, view = _runs_page("http://127.0.0.1:5000", f"sqlite:///{tmp_path / 'mlflow.db'}", cfg)
    eid = client.get_experiment_by_name("no-sweep").experiment_id
    assert page == f"http://127.0.0.1:5000/#/experiments/{eid}/runs?workflowType=machine_learning" and view == ""
