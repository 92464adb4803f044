"""Strict YAML, credentials kept out of what is recorded, sweep records checked."""
import json
import os

import pytest

from lottery_core.errors import LotteryError
from pipelines import credentials, yaml_strict
from pipelines.config import load_config
from pipelines.evaluation import metric_problem
from pipelines.tracking import tracking_uri


@pytest.mark.parametrize("text, value", [("1e-3", 0.001), ("5E4", 50000.0), (".5e-2", 0.005), ("1.0e-3", 0.001),
                                         ("1", 1), ("-2", -2), ("0.1", 0.1), ("abc", "abc"), ("e5", "e5"),
                                         ("[1e-3, 2]", [0.001, 2]), ("true", True), ("-.inf", float("-inf"))])
def test_yaml_numbers_are_read_as_users_mean_them(text, value):
    assert yaml_strict.loads(text) == value


def test_an_exponent_without_a_dot_is_a_number_in_overrides_too():
    assert load_config(None, ["training.lr=1e-3"]).training.lr == 0.001


def test_a_key_given_twice_is_refused_with_both_lines():
    with pytest.raises(LotteryError, match=r"config x: key 'lr' is given twice \(lines 2 and 3\)"):
        yaml_strict.loads("training:\n  lr: 0.1\n  lr: 0.2\n", "config x")


def test_files_that_are_not_utf8_or_not_files_are_one_line(tmp_path):
    (tmp_path / "latin1.yaml").write_bytes(b"seed: 1 # caf\xe9\n")
    with pytest.raises(LotteryError, match="not UTF-8 text"):
        yaml_strict.read_mapping(tmp_path / "latin1.yaml", "config", "a mapping")
    with pytest.raises(LotteryError, match="is a folder"):
        yaml_strict.read_mapping(tmp_path, "config", "a mapping")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(LotteryError, match="expected a mapping, got list"):
        yaml_strict.read_mapping(tmp_path / "list.yaml", "config", "a mapping, got {got}")


@pytest.mark.parametrize("text, shown", [
    ("http://bob:hunter2@h:5000/x", "http://bob:***@h:5000/x"),
    ("see postgresql://u:p%40ss@db/mlflow and s3://k:s@b/p", "see postgresql://u:***@db/mlflow and s3://k:***@b/p"),
    ("http://h:5000", "http://h:5000"),
])
def test_redact_hides_every_password(text, shown):
    assert credentials.redact(text) == shown


def test_http_credentials_move_to_mlflows_variables(monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, "")   # recorded, so that teardown removes what the test sets
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://bob:hunter2@127.0.0.1:5000")
    uri = tracking_uri(load_config())
    assert uri == "http://127.0.0.1:5000"
    assert os.environ["MLFLOW_TRACKING_URI"] == uri
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("bob", "hunter2")


def test_a_database_password_in_the_uri_is_refused(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://bob:hunter2@db/mlflow")
    with pytest.raises(LotteryError, match=r"postgresql://bob:\*\*\*@db/mlflow carries credentials") as err:
        tracking_uri(load_config())
    assert "hunter2" not in str(err.value)


def test_a_config_never_holds_credentials():
    with pytest.raises(LotteryError, match="carries credentials") as err:
        load_config(None, ["tracking.tracking_uri=https://bob:hunter2@mlflow.example.org"])
    assert "hunter2" not in str(err.value)


def test_sweep_points_and_params_hold_no_password(monkeypatch, tmp_path):
    from tune.sweep_file import load_sweep

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://bob:hunter2@127.0.0.1:5000")
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    (tmp_path / "s.yaml").write_text("name: s\nbase: {model: {name: resnet20}}\ngrid: [{pruning.p: [1, 2]}]\n")
    sweep = load_sweep(tmp_path / "s.yaml")
    recorded = json.dumps(sweep.to_dict())   # every point in its plain form
    assert "hunter2" not in recorded and "127.0.0.1:5000" in recorded


@pytest.mark.parametrize("name, pipeline, val_size, problem", [
    ("acc", "ticket_init", 0, None), ("macs", "dense", 0, None), ("delta_acc", "ticket_init", 0, None),
    ("adv_acc.pgd.eps8", "ticket_init", 0, None), ("val_acc", "ticket_init", 500, None),
    ("accuracy", "ticket_init", 0, "no run reports a metric 'accuracy'"),
    ("val_acc", "ticket_init", 0, "needs data.val_size > 0"), ("speedup", "dense", 0, "a dense run has none")])
def test_metric_names_an_optuna_search_may_optimize(name, pipeline, val_size, problem):
    found = metric_problem(name, pipeline, val_size)
    assert (found is None) if problem is None else (problem in found)


def test_a_damaged_sweep_record_is_one_line(tmp_path):
    from tune.storage import read_meta, write_meta

    meta = {"sweep": {}, "parent_run_id": "p", "tracking_uri": "sqlite:////x.db", "experiment": "e"}
    write_meta(str(tmp_path), "s", meta)
    assert read_meta(str(tmp_path), "s") == meta
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["sweep.json"]   # no partial file left
    (tmp_path / "s" / "sweep.json").write_text(json.dumps(meta)[:20])
    with pytest.raises(LotteryError, match="sweep.json is damaged"):
        read_meta(str(tmp_path), "s")
    (tmp_path / "s" / "sweep.json").write_text("{}")
    with pytest.raises(LotteryError, match="lacks sweep, parent_run_id, tracking_uri, experiment"):
        read_meta(str(tmp_path), "s")


def test_a_server_that_is_not_mlflow_is_named_so(tmp_path):
    import http.server
    import threading

    from pipelines.tracking import check_reachable

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(LotteryError, match=r"answers, but not as an MLflow server \(GET /health: HTTP 404\)"):
            check_reachable(f"http://bob:hunter2@127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()


def test_the_cli_bounds_mlflows_http_retries_unless_the_user_set_them(monkeypatch):
    from pipelines.cli import _process_defaults
    from pipelines.tracking_env import HTTP_RETRY_BUDGET

    for name in HTTP_RETRY_BUDGET:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    _process_defaults()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
