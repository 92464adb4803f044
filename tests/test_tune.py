"""Sweeps on a real local Ray with a real SQLite MLflow store (tiny data, tiny network)."""
import time

import pytest
import ray
import yaml
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from tune.runner import check_cluster, launch, probe_address, resume
from tune.sweep_file import load_sweep

TINY = {
    "model": {"name": "resnet20"},
    "training": {"epochs": 2, "batch_size": 16, "lr": 0.05, "keep_epochs": [0]},
    "pruning": {"images_per_class": 2},
    "evaluation": {"corruptions": [], "attacks": [], "cka_images": 0},
}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)  # GPU declared, none real
    yield
    ray.shutdown()


def sweep_file(tmp_path, tiny_folder, grid=None, **extra):
    base = {**TINY, "data": {"name": "folder", "root": str(tiny_folder)},
            "tracking": {"results_dir": str(tmp_path / "runs"), "experiment": "sweeps"}}
    spec = {"base": base, "resources": {"cpu": 1}, "max_concurrent": 2, **extra}
    if grid is not None:
        spec["grid"] = grid
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def children(uri, parent):
    client = MlflowClient(uri)
    exp = client.get_run(parent).info.experiment_id
    return client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")


def test_grid_runs_every_trial_once_under_one_parent(local_ray, tmp_path, tiny_folder):
    path = sweep_file(tmp_path, tiny_folder, grid={"pipeline": "ticket_init", "pruning.criterion": ["snip", "magnitude"],
                                                   "pruning.p": [1, 2]})
    sweep = load_sweep(path, name="grid4")
    assert len(sweep.points) == 5 and sweep.points[0]["pipeline"] == "dense"  # one dense baseline, added once
    outcome = launch(sweep, results_dir=tmp_path / "runs")
    assert outcome.errors == [] and outcome.trials == 5
    runs = children(outcome.tracking_uri, outcome.parent_run_id)
    assert len(runs) == 5 and all(r.info.status == "FINISHED" for r in runs)
    assert sorted(r.data.tags["pipeline"] for r in runs) == ["dense"] + ["ticket_init"] * 4
    assert all(r.data.tags["sweep"] == "grid4" for r in runs)
    parent = MlflowClient(outcome.tracking_uri).get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep"] == "grid4"
    assert (outcome.report_dir / "report.md").exists() and "ticket_init" in outcome.main_table
    assert any(a.path == "report" for a in MlflowClient(outcome.tracking_uri).list_artifacts(outcome.parent_run_id))
    with pytest.raises(LotteryError, match="a sweep named 'grid4' already exists"):
        launch(load_sweep(path, name="grid4"), results_dir=tmp_path / "runs")


def test_a_failed_trial_is_retried_from_its_checkpoint(local_ray, tmp_path, tiny_folder):
    path = sweep_file(tmp_path, tiny_folder, grid={"pipeline": "dense"}, retries=1)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "DRILL_FAIL_AT_EPOCH").write_text("0")
    outcome = launch(load_sweep(path, name="retry"), results_dir=tmp_path / "runs")
    assert outcome.errors == [] and not (tmp_path / "runs" / "DRILL_FAIL_AT_EPOCH").exists()
    (run,) = children(outcome.tracking_uri, outcome.parent_run_id)
    assert run.info.status == "FINISHED" and run.data.tags.get("resumed") == "true"
    steps = [m.step for m in MlflowClient(outcome.tracking_uri).get_metric_history(run.info.run_id, "test_acc")]
    assert steps == [0, 1]  # epoch 0 was not trained again: the retry continued from its checkpoint


def test_fractional_gpus_share_one_gpu(local_ray, tmp_path, tiny_folder):
    path = sweep_file(tmp_path, tiny_folder, grid={"pipeline": "dense", "seed": [0, 1, 2, 3]},
                      resources={"cpu": 0.5, "gpu": 0.25}, max_concurrent=4)
    outcome = launch(load_sweep(path, name="gpu"), results_dir=tmp_path / "runs")
    runs = children(outcome.tracking_uri, outcome.parent_run_id)
    assert outcome.errors == [] and len(runs) == 4
    assert all(r.data.metrics.get("acc") is not None for r in runs)


def test_optuna_search_of_a_few_samples(local_ray, tmp_path, tiny_folder):
    path = sweep_file(tmp_path, tiny_folder, optuna={"space": {"pruning.p": {"type": "int", "low": 1, "high": 3},
                                                               "pruning.criterion": {"type": "categorical", "choices": ["snip", "magnitude"]}},
                                                     "metrics": ["acc", "macs"], "modes": ["max", "min"], "num_samples": 3})
    outcome = launch(load_sweep(path, name="optuna"), results_dir=tmp_path / "runs")
    runs = children(outcome.tracking_uri, outcome.parent_run_id)
    assert outcome.errors == [] and len(runs) >= 3  # the dense baseline plus up to 3 distinct tickets
    assert {r.data.tags["pipeline"] for r in runs} == {"dense", "ticket_init"}


@pytest.mark.parametrize("spec,message", [
    ({"grid": {"seed": [0]}, "nodes": 3}, r"unknown sweep key 'nodes'; allowed: name, base, grid"),
    ({"grid": {}}, r"the sweep grid is empty"),
    ({"grid": {"pruning.p": []}}, r"field 'pruning.p' has no values"),
    ({"grid": {"pruning.p": [1, 4, 5]}}, r"2 of 3 grid points are invalid: \{pruning.p=4\}: pruning.p=4 exceeds .*\{pruning.p=5\}"),
    ({}, r"give exactly one of 'grid' or 'optuna'"),
    ({"grid": {"seed": [0]}, "resources": {"tpu": 1}}, r"unknown resource 'tpu'"),
    ({"grid": {"seed": [0]}, "resources": {"gpu": 1.5}}, r"resources.gpu must be a fraction"),
])
def test_bad_sweep_files(tmp_path, tiny_folder, spec, message):
    path = sweep_file(tmp_path, tiny_folder, **spec)
    with pytest.raises(LotteryError, match=message):
        load_sweep(path)


def test_unreachable_address_fails_within_seconds():
    started = time.perf_counter()
    with pytest.raises(LotteryError, match=r"no Ray cluster answers at 127.0.0.1:9"):
        probe_address("127.0.0.1:9")
    assert time.perf_counter() - started < 10


def test_a_cluster_needs_shared_storage_and_a_tracking_server():
    with pytest.raises(LotteryError, match="a cluster needs storage every node can reach"):
        check_cluster("auto", "/local/path", False, "http://head:5000")
    with pytest.raises(LotteryError, match="a cluster needs an MLflow tracking server"):
        check_cluster("auto", "s3://bucket/sweeps", False, "sqlite:////tmp/x.db")
    check_cluster("auto", "/nfs/sweeps", True, "http://head:5000")  # declared shared: accepted


def test_resume_of_an_unknown_sweep_lists_the_known_ones(tmp_path):
    (tmp_path / "ray" / "old").mkdir(parents=True)
    (tmp_path / "ray" / "old" / "sweep.json").write_text("{}")
    with pytest.raises(LotteryError, match="no sweep named 'new' in .*; known sweeps: old"):
        resume("new", results_dir=tmp_path)
