"""The cluster's MLflow server as the launch files start it (tune/cluster/*.yaml): MLflow's
basic-auth app on a private address, its admin password and Flask secret key from files, the
clients' credentials only in their environment (MLFLOW_TRACKING_USERNAME / _PASSWORD).

A real `mlflow server --app-name basic-auth` on 127.0.0.1 (needs `mlflow[auth]`, in the dev extra):
a `lottery run` logs with the credentials from its environment, and is refused in one line
without them. Then the launch files themselves, read as YAML.
"""
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from helpers import free_port

pytestmark = pytest.mark.slow   # a real basic-auth MLflow server

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tune" / "cluster"
TINY = {"model": {"name": "resnet20"}, "pipeline": "dense",
        "training": {"epochs": 1, "batch_size": 16, "lr": 0.05, "keep_epochs": [0]},
        "evaluation": {"corruptions": [], "attacks": [], "cka_images": 0}}


def start_auth_server(folder: Path, port: int, username: str, password: str) -> subprocess.Popen:
    """`mlflow server --app-name basic-auth` as the launch files start it, on 127.0.0.1."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "secret-key").write_text(secrets.token_hex(32))
    (folder / "auth.ini").write_text(
        f"[mlflow]\ndefault_permission = NO_PERMISSIONS\ndatabase_uri = sqlite:///{folder / 'auth.db'}\n"
        f"admin_username = {username}\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(folder / "auth.ini"), "MLFLOW_AUTH_ADMIN_PASSWORD": password,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": (folder / "secret-key").read_text()}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "ab"), start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if server.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                if answer.read().strip() == b"OK":
                    return server
        except OSError:
            time.sleep(0.5)
    stop(server)
    raise AssertionError(f"the basic-auth server did not start (mlflow[auth] is in the dev extra: "
                         f"pip install -e '.[dev]'): {(folder / 'server.log').read_text()[-2000:]}")


def stop(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.wait(timeout=30)


def test_a_run_logs_with_credentials_from_its_environment_and_is_refused_without(tmp_path, tiny_folder):
    username, password = "lottery", secrets.token_urlsafe(18)
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_auth_server(tmp_path / "server", port, username, password)
    try:
        config = tmp_path / "tiny.yaml"
        config.write_text(yaml.safe_dump({**TINY, "data": {"name": "folder", "root": str(tiny_folder)},
                                          "tracking": {"results_dir": str(tmp_path / "runs"), "experiment": "auth"}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        env.update({"MLFLOW_TRACKING_URI": uri, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
        refused = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", str(config)], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
        assert refused.stderr.strip().splitlines() == [
            f"lottery run: error: MLflow tracking server {uri} refused this client (HTTP 401): set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment to an account of that server"]
        assert not (tmp_path / "runs" / "checkpoints").exists()

        env.update({"MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password})
        done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", str(config)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert password not in done.stdout + done.stderr

        from mlflow.tracking import MlflowClient

        os.environ.update({"MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password})
        try:
            client = MlflowClient(uri)
            experiment = client.get_experiment_by_name("auth")
            (run,) = client.search_runs([experiment.experiment_id])
            assert run.info.status == "FINISHED" and [m.step for m in client.get_metric_history(
                run.info.run_id, "train_loss")] == [0]
            assert password not in str(run.data.params) + str(run.data.tags)
        finally:
            for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                os.environ.pop(key, None)
    finally:
        stop(server)


@pytest.mark.parametrize("name", ["aws-gpu", "local-machines"])
def test_launch_files_start_mlflow_privately_with_authentication(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    text = (CLUSTER / f"{name}.yaml").read_text()
    config = prepare_config(yaml.safe_load(text))
    validate_config(config)  # Ray's schema
    head = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in head
    (server,) = [c for c in config["head_start_ray_commands"] if "mlflow server" in c]
    assert "--app-name basic-auth" in server and "0.0.0.0" not in text
    host = server.split("--host ", 1)[1].split(" --", 1)[0]
    assert host in ('"$(hostname -I | cut -d\' \' -f1)"', "10.0.0.10")  # the head's private address
    assert 'MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat ~/.lottery/mlflow-secret-key)"' in server
    assert 'MLFLOW_AUTH_ADMIN_PASSWORD="$MLFLOW_TRACKING_PASSWORD"' in server  # from the credentials file
    setup = " ".join(config["head_setup_commands"])
    assert "mlflow[auth]==3.17.2" in setup and "default_permission = NO_PERMISSIONS" in setup
    # workers: credentials from a file copied over SSH into each node's own environment
    mounts = config["file_mounts"]
    assert any(k.endswith("/.lottery/mlflow-credentials") and v == "~/.lottery/mlflow-credentials"
               for k, v in mounts.items())
    assert any(". ~/.lottery/mlflow-credentials" in c for c in config["setup_commands"])
    # never through Ray's runtime_env, a param or a sweep file
    commands = json.dumps(config)
    assert "runtime_env" not in commands and "MLFLOW_TRACKING_PASSWORD=" not in commands
    assert "--set tracking" not in commands
