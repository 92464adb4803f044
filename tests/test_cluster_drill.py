"""The cluster drill's pure helpers (scripts/cluster_drill): the command lines and environments it
builds, and the arithmetic of its checks. No cluster is started here (`just cluster-drill` does)."""
from pathlib import Path

import pytest

from scripts.cluster_drill import checks
from scripts.cluster_drill import commands as cmd
from scripts.cluster_drill.drills import DRILLS

S3 = cmd.S3(9000, secret="s3cret")


def env(token: bool = True, **base) -> dict[str, str]:
    return cmd.node_env(cmd.base_env({"PATH": "/usr/bin", **base}), home=Path("/tmp/cdx/w1/home"),
                        token_file=Path("/tmp/cdx/token") if token else None, tracking_uri="http://127.0.0.1:5000",
                        s3=S3, cache_dir=Path("/cache"), temp_dir=Path("/tmp/cdx/w1/ray"))


def test_a_node_gets_the_token_by_file_and_never_the_callers_cluster():
    got = env(RAY_ADDRESS="10.0.0.1:6379", RAY_AUTH_TOKEN="leaked", MLFLOW_TRACKING_URI="http://other:5000",
              AWS_PROFILE="prod", AWS_SECRET_ACCESS_KEY="real")
    assert got["RAY_AUTH_MODE"] == "token" and got["RAY_AUTH_TOKEN_PATH"] == "/tmp/cdx/token"
    assert "RAY_AUTH_TOKEN" not in got and "RAY_ADDRESS" not in got and "AWS_PROFILE" not in got
    assert got["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert got["AWS_ENDPOINT_URL"] == got["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert got["AWS_SECRET_ACCESS_KEY"] == "s3cret" and got["HOME"] == "/tmp/cdx/w1/home"
    assert got["PYTHONPATH"].split(":")[0] == str(cmd.ROOT)


def test_a_client_without_the_token_has_no_token_variable_at_all():
    got = env(token=False, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH="/root/.ray/auth_token")
    assert not {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & set(got)


def test_workers_have_two_fake_gpus_in_a_mount_namespace_of_their_own():
    ports = {flag: 1000 + i for i, flag in enumerate(cmd.RAY_PORT_FLAGS)} | {"workers": 20000}
    worker = cmd.ray_worker_command("127.0.0.1:6379", Path("/tmp/cdx/w1/ray"), ports)
    assert worker[worker.index("--num-gpus") + 1] == "2" and worker[worker.index("--num-cpus") + 1] == "2"
    assert worker[worker.index("--address") + 1] == "127.0.0.1:6379" and "--head" not in worker
    assert worker[worker.index("--max-worker-port") + 1] == str(20000 + cmd.WORKER_PORTS - 1)
    wrapped = cmd.in_own_mount_namespace(worker, Path("/tmp/cdx/node-private"))
    assert wrapped[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert "mount -t tmpfs" in wrapped[wrapped.index("-c") + 1] and "/tmp/cdx/node-private" in wrapped
    assert wrapped[-len(worker):] == worker
    head_ports = ports | {flag: 2000 + i for i, flag in enumerate(cmd.HEAD_PORT_FLAGS)}
    head = cmd.ray_head_command(Path("/tmp/cdx/head/ray"), head_ports)
    assert head[head.index("--num-cpus") + 1] == "0" and "--head" in head


def test_no_password_on_a_command_line():
    pg = cmd.postgres_commands(Path("/pg/data"), Path("/pg/sockets"), 5432, Path("/pg/password"))
    assert pg["initdb"][:3] == ["runuser", "-u", "postgres"] and "--pwfile=/pg/password" in pg["initdb"]
    uri = cmd.postgres_uri(5432)
    assert uri == "postgresql+psycopg2://postgres@127.0.0.1:5432/mlflow"
    line = cmd.mlflow_command(5000, uri, S3.uri("mlflow"))
    assert line[line.index("--artifacts-destination") + 1] == "s3://lottery-drill/mlflow"
    assert not any("s3cret" in part for part in line)


def test_sweep_files_are_tiny_cpu_runs():
    base = cmd.base_config(results_dir=Path("/p/results"), tracking_uri="http://h:1", experiment="e")
    spec = cmd.sweep_spec(base, grid={"pipeline": "dense"}, cpu=1, gpu=0)
    assert spec["resources"] == {"cpu": 1, "gpu": 0} and spec["base"]["device"] == "cpu"
    assert spec["base"]["training"]["epochs"] <= 3 and 1 in spec["base"]["training"]["keep_epochs"]
    assert "optuna" not in spec
    assert {d.name for d in DRILLS} == {"auth", "sweep-gpu", "sweep", "node-loss", "driver-loss", "claims",
                                        "storage", "load"}


def history(epochs: int, t0: int = 1000, final: float | None = None) -> list[tuple[int, int]]:
    points = [(step, t0 + 10 * step) for step in range(epochs)]
    return points + ([(0, t0 + 10 * epochs + 5)] if final is not None else [])


def test_metric_points_expected_from_runs_epochs_and_keys():
    # a run logged before the one-meaning rule (pipelines.run_schema): train_time_s per epoch and as a
    # final value (step 0, after the last epoch): not a duplicate
    run = {"train_loss": history(3), "train_time_s": history(3, final=1.0), "acc": [(0, 2000)]}
    got = checks.count_metric_points([run, run], epochs=3)
    assert (got["runs"], got["keys"], got["expected"], got["logged"]) == (2, 2, 12, 12)
    assert got["duplicates"] == [] and got["missing"] == []


def test_metric_points_find_a_step_logged_twice_and_one_lost():
    twice = {"train_loss": [*history(3), (1, 1015)], "test_acc": history(3)}
    lost = {"train_loss": history(3), "test_acc": [(0, 1000), (2, 1020)]}
    got = checks.count_metric_points([twice, lost], epochs=3)
    assert got["expected"] == 12 and got["logged"] == 12   # one extra, one missing
    assert got["duplicates"] == [(0, "train_loss", 1)] and got["missing"] == [(1, "test_acc", 1)]
    with pytest.raises(ValueError):
        checks.epoch_keys(twice, 1)


def test_a_rewound_ticket_is_expected_from_its_rewind_epoch():
    dense = {"train_loss": history(3), "lr": history(3)}
    rewound = {"train_loss": history(3)[1:], "lr": history(3)[1:]}    # trains epochs 1 and 2 only
    got = checks.count_metric_points([dense, rewound], epochs=3, starts=[0, 1])
    assert (got["expected"], got["logged"], got["missing"], got["duplicates"]) == (10, 10, [], [])
    got = checks.count_metric_points([dense, rewound], epochs=3)          # as if it trained from 0
    assert got["missing"] == [(1, "lr", 0), (1, "train_loss", 0)]


def test_tunes_state_knows_a_checkpoint_written_before_it():
    from datetime import UTC, datetime

    def obj(key, second):
        return {"Key": f"sweeps/s/phase0/{key}", "Size": 1, "LastModified": datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC)}

    objects = [obj("t1/checkpoint_000000/epoch-0001.pt", 10), obj("t2/checkpoint_000000/epoch-0001.pt", 14),
               obj("t1/checkpoint_000001/epoch-0002.pt", 20), obj("experiment_state-x.json", 16)]
    assert checks.checkpoints_in_state(objects) == (1, 6.0)      # t2's came 2 s before the state: too close
    assert checks.checkpoints_in_state(objects[:3]) == (0, None)


def test_overlap_log_counts_and_table():
    assert checks.max_overlap([(0, 10), (1, 5), (2, 6), (4, 12), (11, 13)]) == 4
    assert checks.max_overlap([(0, 1), (1, 2)]) == 1    # one ends as the next starts
    log = "\n".join([
        'INFO:     127.0.0.1:1 - "POST /api/2.0/mlflow/runs/log-batch HTTP/1.1" 200 OK',
        'INFO:     127.0.0.1:2 - "GET /api/2.0/mlflow/runs/get?run_id=x HTTP/1.1" 404 Not Found',
        'INFO:     127.0.0.1:3 - "POST /api/2.0/mlflow/runs/log-metric HTTP/1.1" 503 Service Unavailable',
        "sqlite3.OperationalError: database is locked"])
    assert checks.server_log_problems(log) == {"requests": 3, "http_5xx": 1, "database_locked": 1, "tracebacks": 0}
    served = "\n".join([
        'INFO: 127.0.0.1:4 - "GET /api/2.0/mlflow-artifacts/artifacts/1/ab/artifacts/weights/theta_1.pt HTTP/1.1" 200 OK',
        'INFO: 127.0.0.1:5 - "GET /api/2.0/mlflow-artifacts/artifacts?path=1%2Fcd%2Fartifacts%2Fweights%2Ftheta_1.pt '
        'HTTP/1.1" 200 OK',   # a listing, not a download
        'INFO: 127.0.0.1:5 - "GET /api/2.0/mlflow-artifacts/presigned/1/cd/artifacts/weights/theta_1.pt HTTP/1.1" 200 OK',
        'INFO: 127.0.0.1:6 - "PUT /api/2.0/mlflow-artifacts/artifacts/1/ef/artifacts/weights/theta_1.pt HTTP/1.1" 200 OK'])
    assert checks.downloads(log + "\n" + served, "weights/theta_1.pt") == {"proxied": 1, "presigned": 1}
    text = checks.table([("short", 1), ("a longer name", "word " * 40)], width=60)
    assert all(len(line) <= 60 for line in text.splitlines()) and text.count("\n") >= 3


def test_disk_inventory_by_kind(tmp_path):
    (tmp_path / "checkpoints" / "abc").mkdir(parents=True)
    (tmp_path / "checkpoints" / "abc" / "epoch-0001.pt").write_bytes(b"x" * 10)
    (tmp_path / "checkpoints" / "abc.claim").write_text("{}")
    (tmp_path / "weights" / "abc").mkdir(parents=True)
    (tmp_path / "weights" / "abc" / "theta_1.pt").write_bytes(b"x" * 5)
    assert checks.disk_inventory(tmp_path) == {"checkpoints": [1, 10], "claims": [1, 2], "weights": [1, 5]}
    assert checks.disk_inventory(tmp_path / "gone") == {} and checks.describe_inventory({}) == "empty"
