"""Ray outside the test process: a `ray start` cluster's address file never captures the local
default, and a real `ray start --head` cluster with token authentication is joined with --address
(its token picked up as Ray's own CLI does), its driver SIGKILLed, the sweep resumed, and the
cluster stopped by its own process ids (never `ray stop`, which ends every Ray on the machine).

Each test gets its own Ray temp folder (RAY_TMPDIR, short: Ray's socket paths must fit 107 bytes)
and its own HOME (the token file), so nothing here touches another Ray on this machine.
"""
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from conftest import write_image_folder
from helpers import free_port, kill_group, lottery, tiny_sweep_file
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow   # `ray start` clusters with token auth

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
EPOCHS = 4


@pytest.fixture
def ray_home():
    """A short private folder: <it>/ray is Ray's temp folder, <it>/home the HOME of every process."""
    folder = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    (folder / "home").mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def environment(folder: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    env.update({"HOME": str(folder / "home"), "RAY_TMPDIR": str(folder), "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"})
    env.update(extra)
    return env


def sweep_file(folder: Path, data: Path, results: Path, grid: dict, epochs: int, **tracking) -> Path:
    return tiny_sweep_file(folder, data, results, grid, epochs=epochs, experiment="cluster", tracking=tracking)


def test_the_local_default_never_joins_the_cluster_a_ray_start_left_behind(ray_home, tiny_folder):
    # what a `ray start` that died leaves: its address file, naming a GCS that no longer answers
    # (plain ray.init() joins that address and waits on it for minutes)
    (ray_home / "ray").mkdir()
    (ray_home / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
    path = sweep_file(ray_home, tiny_folder, ray_home / "runs", {"pipeline": "dense"}, epochs=1)
    driver = subprocess.Popen(lottery("sweep", str(path), "--name", "local", "--verbose", "0"), cwd=ROOT,
                              env=environment(ray_home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        out, err = driver.communicate(timeout=240)  # the old default waited on the dead address for minutes
    finally:
        kill_group(driver)
    assert driver.returncode == 0, out[-2000:] + err[-3000:]
    assert "sweep local: 1 trials, finished" in out
    sessions = [p.name for p in (ray_home / "ray").iterdir() if p.name.startswith("session_2")]
    assert sessions, "the sweep started no Ray of its own under RAY_TMPDIR"


class RayStartCluster:
    """`ray start --head` in a subprocess of its own session, on free ports, with its own temp
    folder; stopped by SIGKILL to its process group and to every process those processes started."""

    def __init__(self, folder: Path, num_cpus: int = 2, **env):
        self.folder, self.port = folder, free_port()
        ports = {"--port": self.port, "--dashboard-port": free_port(), "--node-manager-port": free_port(),
                 "--object-manager-port": free_port(),
                 "--dashboard-agent-listen-port": free_port(), "--dashboard-agent-grpc-port": free_port(),
                 "--metrics-export-port": free_port(), "--runtime-env-agent-port": free_port()}
        low = free_port()
        command = [str(RAY), "start", "--head", "--num-cpus", str(num_cpus), "--num-gpus", "0",
                   "--include-dashboard", "false", "--temp-dir", str(folder / "ray"), "--disable-usage-stats",
                   "--min-worker-port", str(low), "--max-worker-port", str(low + 40)]
        for flag, port in ports.items():
            command += [flag, str(port)]
        self.log = folder / "ray-start.log"
        self.start = subprocess.Popen(command, env=environment(folder, **env), stdout=open(self.log, "w"),
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self.group = self.start.pid  # its daemons stay in its process group
        code = self.start.wait(timeout=120)  # `ray start` returns once its daemons run
        if code != 0:
            self.stop()
            raise AssertionError(self.log.read_text()[-3000:])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def processes(self) -> list[psutil.Process]:
        """The cluster's processes: its process group and everything they started (Ray's workers)."""
        from scripts.cluster_drill.cluster import group_processes

        return group_processes(self.group)

    def stop(self) -> list[psutil.Process]:
        procs = self.processes()
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        gone, alive = psutil.wait_procs(procs, timeout=30)
        return alive


@pytest.mark.drill
def test_a_real_token_cluster_runs_a_sweep_whose_driver_is_killed_and_resumed(ray_home, tmp_path, mlflow_server):
    token = secrets.token_hex(32)  # Ray 2.60's `ray start --head` turns token auth on when one exists
    (ray_home / "home" / ".ray").mkdir()
    (ray_home / "home" / ".ray" / "auth_token").write_text(token)
    data = write_image_folder(tmp_path / "data", classes=4, train_per_class=48, test_per_class=8)
    uri = mlflow_server
    cluster = None
    try:
        cluster = RayStartCluster(ray_home)
        assert "Token authentication is enabled" in cluster.log.read_text()
        results, storage = tmp_path / "runs", tmp_path / "shared"
        path = sweep_file(tmp_path, data, results, {"pruning.p": [1]}, epochs=EPOCHS, tracking_uri=uri)
        where = ["--address", cluster.address, "--storage", str(storage), "--results-dir", str(results),
                 "--verbose", "0"]

        # RAY_AUTH_MODE=disabled (a user's explicit choice) is respected: one line saying what to set
        refused = subprocess.run(lottery("sweep", str(path), "--name", "refused", *where),
                                 cwd=ROOT, env=environment(ray_home, RAY_AUTH_MODE="disabled"),
                                 capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2
        last = refused.stderr.strip().splitlines()[-1]
        assert last == (f"lottery sweep: error: the Ray cluster at {cluster.address} requires token authentication: "
                        "set RAY_AUTH_MODE=token and the cluster's token: RAY_AUTH_TOKEN=<token> (or "
                        "RAY_AUTH_TOKEN_PATH=<file>, or the file ~/.ray/auth_token); `ray get-auth-token` "
                        "on the head node prints it")
        assert token not in refused.stdout + refused.stderr
        assert not (storage / "refused").exists()

        # RAY_AUTH_MODE unset: the token in ~/.ray/auth_token is used for a cluster on this machine
        log = open(tmp_path / "driver.log", "w")
        driver = subprocess.Popen(lottery("sweep", str(path), "--name", "cl", *where), cwd=ROOT,
                                  env=environment(ray_home), stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        client = MlflowClient(uri)
        deadline = time.time() + 240
        while time.time() < deadline:  # a trial part-way through: kill the driver
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            experiment = client.get_experiment_by_name("cluster")
            running = client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'") \
                if experiment else []
            if any(1 <= len(client.get_metric_history(r.info.run_id, "train_loss")) < EPOCHS for r in running):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the sweep never reached a trial part-way through")
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        kill_group(driver)
        assert any(p.name() == "gcs_server" for p in cluster.processes())  # the cluster outlives its driver

        resumed = subprocess.run(lottery("resume", "cl", *where), cwd=ROOT, env=environment(ray_home),
                                 capture_output=True, text=True, timeout=300, start_new_session=True)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        assert "sweep cl: 2 trials, finished" in resumed.stdout
        assert token not in (tmp_path / "driver.log").read_text() + resumed.stdout + resumed.stderr
        experiment = client.get_experiment_by_name("cluster")
        runs = client.search_runs([experiment.experiment_id], "tags.sweep = 'cl'")
        children = [r for r in runs if r.data.tags.get("sweep_parent") != "true"]
        assert sorted(r.data.tags["pipeline"] for r in children) == ["dense", "ticket_init"]  # one run per trial
        assert {r.info.status for r in runs} == {"FINISHED"}  # the parent too
        for run in children:
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "train_loss"))
            assert steps == list(range(EPOCHS))  # every epoch logged once, across the kill
        assert any(r.data.tags.get("resumed") == "true" for r in children)
    finally:
        left = cluster.stop() if cluster else []
    assert left == [] and cluster.processes() == []
