"""`lottery ui`: the MLflow UI of a local store, bound to 127.0.0.1 only, announced with the direct
link to the experiment's runs table (MLflow 3 opens a GenAI overview page otherwise)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_listens_on_localhost_only_and_prints_the_runs_page_of_the_experiment(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment("other")
    experiment_id = client.create_experiment("ui-check", artifact_location=(tmp_path / "artifacts").as_uri())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    ui = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port), "--results-dir",
                           str(tmp_path), "--experiment", "ui-check"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        first = ui.stdout.readline().strip()
        assert first == (f"MLflow UI on http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs "
                         f"(store {uri}); Ctrl-C stops it")
        api = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/get?experiment_id={experiment_id}"
        deadline = time.time() + 90
        while True:  # the page's experiment is the one asked for
            try:
                with urllib.request.urlopen(api, timeout=2) as answer:
                    assert json.loads(answer.read())["experiment"]["name"] == "ui-check"
                    break
            except OSError:
                assert ui.poll() is None and time.time() < deadline, "the MLflow UI did not start"
                time.sleep(0.5)
        listening = {c.laddr.ip for c in psutil.net_connections(kind="inet")
                     if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}  # not 0.0.0.0, not another interface
    finally:
        os.killpg(ui.pid, signal.SIGKILL)
        ui.wait(timeout=30)
