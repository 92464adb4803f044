"""Drills for sweeps (issue 6): a SIGKILLed driver and a SIGKILLed worker, a node that goes away
on a (simulated) cluster, and a table of bad sweep inputs through the `lottery` command.

The drills run their sweep drivers in subprocesses (a driver that is killed must not be pytest),
each in its own session so that whatever it leaves behind is cleaned up by process group.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from conftest import write_image_folder
from drills import DRILL_FILE
from helpers import free_port, kill_group, lottery, tiny_sweep_file
from mlflow.tracking import MlflowClient

from pipelines.audit import audit_experiment
from pipelines.cli import main

pytestmark = pytest.mark.slow   # real Ray clusters and SIGKILLed drivers

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 5
# RAY_AUTH_MODE=disabled: the drills' clusters run without token authentication whatever token
# ~/.ray holds (else the driver, finding the token, turns token mode on for a cluster on this
# machine, and a node the drill adds afterwards inherits it and refuses the head's calls)
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
       "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def drill_data(tmp_path_factory) -> Path:
    """Enough images that an epoch lasts about a second (the drills act between epochs)."""
    return write_image_folder(tmp_path_factory.mktemp("drill_data"), classes=4, train_per_class=48, test_per_class=8)


def sweep_file(folder: Path, data: Path, results: Path, grid: dict, **extra) -> Path:
    return tiny_sweep_file(folder, data, results, grid, epochs=EPOCHS, experiment="drills", **extra)


def run_states(db: Path) -> dict[str, dict]:
    """run name -> status, end time and the epochs logged, read straight from the SQLite store."""
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
        try:
            rows = con.execute("SELECT r.run_uuid, r.name, r.status, r.end_time, "
                               "(SELECT COUNT(*) FROM metrics m WHERE m.run_uuid = r.run_uuid AND m.key = 'train_loss') "
                               "FROM runs r").fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return {}
    return {name: {"id": rid, "status": status, "end_time": end, "epochs": n} for rid, name, status, end, n in rows}


def epochs(client: MlflowClient, run_id: str) -> list[tuple[int, int]]:
    """(epoch, timestamp in ms) of every logged epoch."""
    return sorted((m.step, m.timestamp) for m in client.get_metric_history(run_id, "train_loss"))


@pytest.mark.drill
def test_sigkilled_driver_and_worker_then_resume_finishes_with_one_run_per_trial(tmp_path, drill_data):
    results = tmp_path / "runs"
    results.mkdir()
    # one trial at a time: the dense run (first) is the trial that reaches epoch 1 first, whatever the
    # machine's speed (two at once, a smaller ticket may get there before it)
    path = sweep_file(tmp_path, drill_data, results, {"pruning.criterion": ["snip", "magnitude", "random"]},
                      max_concurrent=1)
    (results / DRILL_FILE).write_text("kill 1")  # the first trial to finish epoch 1 (the dense run) loses its worker
    log = open(tmp_path / "driver.log", "w")
    # the driver: the sweep's Python API with the drill's epoch hook (tests/drills.py), in a process of its own
    driver = subprocess.Popen([sys.executable, "-m", "tests.drills", str(path), "drill", str(results)],
                              cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    db = results / "mlflow.db"
    try:
        deadline = time.time() + 420
        while time.time() < deadline:  # one trial finished, another one part-way: kill the driver
            states = run_states(db)
            dense = [s for name, s in states.items() if name.startswith("dense")]
            running = [s for name, s in states.items() if name.startswith("ticket") and s["status"] == "RUNNING"
                       and 1 <= s["epochs"] < EPOCHS - 1]
            if dense and dense[0]["status"] == "FINISHED" and running:
                break
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("the sweep never reached the point of the drill")
        os.kill(driver.pid, signal.SIGKILL)
        killed_at_ms = time.time() * 1000
        driver.wait(timeout=30)
        time.sleep(2)  # what the driver's Ray had running dies with it (its raylet fate-shares)
    finally:
        kill_group(driver)
    before = run_states(db)
    interrupted = {name for name, s in before.items() if s["status"] == "RUNNING" and name.startswith("ticket")}
    assert interrupted and before["dense resnet20 seed=0"]["status"] == "FINISHED"
    client = MlflowClient(f"sqlite:///{db}")
    logged_before = {name: epochs(client, before[name]["id"]) for name in interrupted}

    resumed = subprocess.run(lottery("resume", "drill", "--results-dir", str(results), "--verbose", "0"),
                             cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600, start_new_session=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "sweep drill: 4 trials, finished" in resumed.stdout

    after = run_states(db)
    meta = json.loads((results / "ray" / "drill" / "sweep.json").read_text())
    runs = client.search_runs([client.get_experiment_by_name("drills").experiment_id],
                              f"tags.mlflow.parentRunId = '{meta['parent_run_id']}'")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}  # exactly one run per trial
    assert all(s["status"] == "FINISHED" for s in after.values())  # none left RUNNING, parent included
    # the trial that had finished was not run again
    assert after["dense resnet20 seed=0"]["end_time"] == before["dense resnet20 seed=0"]["end_time"]
    by_name = {r.data.tags["mlflow.runName"]: r for r in runs}
    dense = by_name["dense resnet20 seed=0"]
    # ... and its worker, SIGKILLed after epoch 1, was retried from that checkpoint: 5 epochs, each once
    assert dense.data.tags.get("resumed") == "true" and dense.data.metrics["epochs_trained"] == EPOCHS
    assert dense.data.metrics["resumed_from_epoch"] == 2  # epochs 0 and 1 were not trained again
    assert [e for e, _ in epochs(client, dense.info.run_id)] == list(range(EPOCHS))
    for name in interrupted:  # the interrupted tickets continued: the epochs before the kill are kept
        now = epochs(client, by_name[name].info.run_id)
        assert [e for e, _ in now] == list(range(EPOCHS))
        assert now[:len(logged_before[name])] == logged_before[name]
        assert all(t > killed_at_ms for _, t in now[len(logged_before[name]):])
        assert by_name[name].data.tags.get("resumed") == "true"
        assert by_name[name].data.metrics["epochs_trained"] == EPOCHS
    # the ledger `lottery records check` reads says the same: every attempt went on where the last stopped
    audits = {a.name: a for a in audit_experiment(f"sqlite:///{db}", "drills", sweep="drill")}
    assert len(audits) == 4 and all(a.problems == [] for a in audits.values())
    assert audits["dense resnet20 seed=0"].attempts == ((0, 0), (2, 0))
    assert all(len(audits[name].attempts) == 2 for name in interrupted)


CLUSTER_SCRIPT = textwrap.dedent("""
    import json, sys, threading, time
    from mlflow.tracking import MlflowClient
    from ray.cluster_utils import Cluster

    sweep_path, results, storage, uri = sys.argv[1:5]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    node_a = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    import ray
    ray.init(address=cluster.address, log_to_driver=False)
    from lottery_core.errors import LotteryError
    from tune.launch import launch
    from tune.sweep_file import load_sweep

    moved, done = {}, {}

    def sweep():  # in a thread: adding a node needs the main thread (it installs signal handlers)
        try:
            done["outcome"] = launch(load_sweep(sweep_path, name="moved"), results_dir=results,
                                     address=cluster.address, storage=storage)
        except BaseException as err:
            done["error"] = repr(err)

    runner = threading.Thread(target=sweep, daemon=True)
    runner.start()
    client = MlflowClient(uri)
    while runner.is_alive() and "node_b" not in moved:  # once the trial logged an epoch on node A: move it
        try:
            exp = client.get_experiment_by_name("drills")
            runs = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING' and tags.pipeline = 'dense'")
            if runs and client.get_metric_history(runs[0].info.run_id, "train_loss"):
                moved["epochs_before"] = len(client.get_metric_history(runs[0].info.run_id, "train_loss"))
                moved["cpu_nodes_before"] = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
                node_b = cluster.add_node(num_cpus=1)
                moved["node_b"] = node_b.node_id
                cluster.remove_node(node_a)
        except AttributeError:
            pass  # no experiment yet
        time.sleep(0.1)
    runner.join()
    if "error" in done:
        print("RESULT " + json.dumps({"ok": False, "errors": [done["error"]]}))
        sys.exit(1)
    outcome = done["outcome"]
    from ray import tune
    result = tune.Tuner.restore(f"{storage}/moved/phase0", trainable="trial").get_results()[0]
    nodes = [n for n in result.metrics_dataframe["node_id"].tolist() if isinstance(n, str)]
    print("RESULT " + json.dumps({"ok": outcome.ok, "errors": outcome.errors, "parent": outcome.parent_run_id,
                                  "node_a": node_a.node_id, "nodes": nodes, **moved}))
    ray.shutdown()
    cluster.shutdown()
""")


@pytest.mark.drill
def test_a_trial_moves_to_another_node_when_its_node_is_removed(tmp_path, drill_data, mlflow_server):
    uri = mlflow_server
    results, storage = tmp_path / "runs", tmp_path / "shared"
    path = sweep_file(tmp_path, drill_data, results, {"pipeline": "dense"}, retries=2)
    spec = yaml.safe_load(path.read_text())
    spec["base"]["tracking"]["tracking_uri"] = uri
    path.write_text(yaml.safe_dump(spec))
    script = tmp_path / "cluster_drill.py"
    script.write_text(CLUSTER_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), str(path), str(results), str(storage), uri],
                               cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        out, _ = process.communicate(timeout=480)
    finally:
        kill_group(process)
    print(out[:8000])  # shown when the drill fails
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    assert line, out[-4000:]
    got = json.loads(line.removeprefix("RESULT "))
    assert got["ok"], got["errors"]
    # moved from A to B: the epochs logged before B existed ran on A, the only node with a CPU then
    # (Ray's own result log may lose the rows reported before the failure, so it only shows the end)
    assert got["cpu_nodes_before"] == [got["node_a"]] and got["nodes"][-1] == got["node_b"]
    assert set(got["nodes"]) <= {got["node_a"], got["node_b"]}
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("drills").experiment_id],
                                f"tags.mlflow.parentRunId = '{got['parent']}'")
    assert run.info.status == "FINISHED" and run.data.tags.get("resumed") == "true"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(steps) == list(range(EPOCHS))  # continued from its checkpoint on node B
    assert got["epochs_before"] >= 1


def bad_sweep_inputs(tmp_path: Path, data: Path) -> list[tuple[list[str], str]]:
    results = tmp_path / "runs"
    good = sweep_file(tmp_path, data, results, {"pruning.p": [1]})
    spec = yaml.safe_load(good.read_text())

    def variant(name: str, **changes) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**spec, **changes}))
        return str(path)

    (tmp_path / "broken.yaml").write_text("grid: {pruning.p: [1\n")
    (results / "ray" / "taken").mkdir(parents=True)
    (results / "ray" / "taken" / "sweep.json").write_text("{}")
    runs = ["--results-dir", str(results)]
    port = free_port()
    return [
        (["sweep", str(tmp_path / "missing.yaml")], "sweep file not found"),
        (["sweep", str(tmp_path / "broken.yaml")], "not valid YAML"),
        (["sweep", variant("unknown", nodes=2)], "unknown sweep key 'nodes' in unknown.yaml; allowed: name, base, grid"),
        (["sweep", variant("empty", grid={})], "the sweep grid is empty"),
        (["sweep", variant("novalues", grid={"seed": []})], "field 'seed' has no values"),
        (["sweep", variant("invalid", grid={"pruning.p": [1, 5, 6]})], "2 of 3 grid points are invalid: {pruning.p=5}"),
        (["sweep", variant("both", optuna={"space": {}})], "give exactly one of 'grid' or 'optuna'"),
        (["sweep", variant("gpu", resources={"gpu": -1})], "resources.gpu must be a fraction"),
        (["sweep", variant("conc", max_concurrent="two")], "max_concurrent must be an integer >= 0, got 'two'"),
        (["sweep", str(good), "--set", "training.epochs=0"], "training.epochs must be an integer >= 1, got 0"),
        (["sweep", str(good), "--set", "optimizer.lr=1"], "unknown config key 'optimizer'"),
        (["sweep", str(good), "--set", "seed"], "not of the form section.key=value"),
        (["sweep", str(good), "--name", "a b"], "sweep name 'a b': use letters"),
        (["sweep", str(good), "--name", "taken", *runs], "a sweep named 'taken' already exists"),
        (["sweep", str(good), "--address", f"127.0.0.1:{port}", "--storage", "s3://bucket/sweeps",
          "--set", "tracking.tracking_uri=http://127.0.0.1:5000"], f"no Ray cluster answers at 127.0.0.1:{port}"),
        (["sweep", str(good), "--address", f"127.0.0.1:{port}", "--storage", "/nfs/x", *runs],
         "trials log to an MLflow tracking server, not sqlite:"),
        (["resume", "nope", *runs], "no sweep named 'nope'"),
        (["resume", "nope", "--results-dir", str(tmp_path / "elsewhere")], "known sweeps: none"),
    ]


def test_bad_sweep_inputs_table(tmp_path, tiny_folder, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    table = bad_sweep_inputs(tmp_path, tiny_folder)
    for argv, expected in table:
        code = main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, argv
        assert len(err) == 1 and err[0].startswith(f"lottery {argv[0]}: error: ") and expected in err[0], (argv, err)
    import ray
    assert not ray.is_initialized()   # every one refused before Ray started
