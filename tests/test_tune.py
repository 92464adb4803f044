"""Sweeps on a real local Ray with real MLflow stores (a tiny ImageFolder, ResNet20, 2-3 epochs).

The module shares one Ray (2 CPUs, 1 declared GPU on this CPU-only machine); drills that kill a
driver or simulate a cluster live in test_drills_sweep.py and run in subprocesses.
"""
import argparse
import os
import signal
import socket
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from drills import DRILL_FILE, FAULT_ONCE
from helpers import free_port, start_mlflow_server, stop
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from pipelines.config import PruningConfig, build_config
from tune import storage as st
from tune.launch import error_line, launch, resume
from tune.ray_cluster import probe_address
from tune.sweep_file import load_sweep
from tune.sweep_runs import children

TINY = {
    "model": {"name": "resnet20"},
    "training": {"epochs": 2, "batch_size": 16, "lr": 0.05, "keep_epochs": [0]},
    "pruning": {"images_per_class": 2},
    "evaluation": {"corruptions": [], "attacks": [], "cka_images": 8},
}


@pytest.fixture(scope="module")
def local_ray():
    import ray

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # fail fast when a tracking server is gone (MLflow retries for minutes by default)
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"
    started = not ray.is_initialized()
    if started:
        # address="local": never join a cluster another test (or `ray start`) left on this machine
        ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)  # GPU declared only
    yield ray
    if started:
        ray.shutdown()


def write_sweep(tmp_path: Path, data: Path, grid=None, base=None, **extra) -> Path:
    spec_base = {**TINY, "data": {"name": "folder", "root": str(data)},
                 "tracking": {"results_dir": str(tmp_path / "runs"), "experiment": "sweeps"}}
    for key, value in (base or {}).items():
        spec_base[key] = {**spec_base.get(key, {}), **value} if isinstance(value, dict) else value
    spec = {"base": spec_base, "resources": {"cpu": 1}, "max_concurrent": 2, **extra}
    if grid is not None:
        spec["grid"] = grid
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def history(uri: str, run_id: str, key: str = "train_loss") -> list[int]:
    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, key))


# --- sweep files: every bad input is one clear line, nothing starts --------------------------

@pytest.mark.parametrize("spec,message", [
    ({"grid": {"seed": [0]}, "nodes": 3}, r"unknown sweep key 'nodes' in sweep.yaml; allowed: name, base, grid, optuna, "
                                          r"resources, max_concurrent, retries, storage"),
    ({"grid": {}}, r"the sweep grid is empty"),
    ({"grid": []}, r"the sweep grid is empty"),
    ({"grid": {"pruning.p": []}}, r"field 'pruning.p' has no values"),
    ({}, r"give exactly one of 'grid' or 'optuna'"),
    ({"grid": {"seed": [0]}, "resources": {"tpu": 1}}, r"^unknown config key 'resources.tpu'; allowed in resources: cpu, gpu$"),
    ({"grid": {"seed": [0]}, "resources": {"gpu": 1.5}}, r"^resources.gpu must be a fraction in \[0, 1\] or a whole number, got 1.5$"),
    ({"grid": {"seed": [0]}, "retries": -1}, r"^retries must be an integer >= 0, got -1$"),
    ({"grid": {"seed": [0]}, "name": "a/b"}, r"sweep name 'a/b': use letters"),
    ({"optuna": {"space": {}}}, r"the optuna search space is empty"),
    ({"optuna": {"space": {"pruning.p": {"type": "int", "low": 1, "high": 9}}}},
     r"1 value\(s\) of the optuna space are invalid: \{pruning.p=9\}: pruning.p=9 exceeds the 3 blocks"),
    ({"optuna": {"space": {"pruning.p": {"type": "int", "low": 1, "high": 2}}, "modes": ["up"]}},
     r"^optuna.modes must be a list of one of: max, min, got \['up'\]$"),
    ({"optuna": {"space": {"pruning.p": {"type": "int", "low": 1, "high": 2}}, "modes": ["max", "min"]}},
     r"^optuna.modes must be one per metric \(1\), got \['max', 'min'\]$"),
    ({"optuna": {"space": {"pruning.p": {"type": "int", "low": 1, "high": 2}}, "num_samples": 0}},
     r"^optuna.num_samples must be an integer >= 1, got 0$"),
    ({"optuna": {"space": {"pruning.p": {"type": "int", "low": 1, "high": 2}}, "trials": 3}},
     r"^unknown config key 'optuna.trials'; allowed in optuna: space, metrics, modes, num_samples, seed$"),
])
def test_bad_sweep_files_are_refused_in_one_line(tmp_path, tiny_folder, spec, message):
    path = write_sweep(tmp_path, tiny_folder, **spec)
    with pytest.raises(LotteryError, match=message) as caught:
        load_sweep(path)
    assert "\n" not in str(caught.value)


def test_every_invalid_grid_point_is_listed_with_its_reason(tmp_path, tiny_folder):
    path = write_sweep(tmp_path, tiny_folder, grid={"pruning.p": [1, 7, 8], "pruning.criterion": ["snip", "nope"]})
    with pytest.raises(LotteryError) as caught:
        load_sweep(path)
    text = str(caught.value)
    assert text.startswith("5 of 6 grid points are invalid: ")
    for label in ("{pruning.criterion=snip, pruning.p=7}: pruning.p=7 exceeds the 3 blocks",
                  "{pruning.criterion=snip, pruning.p=8}: pruning.p=8 exceeds",
                  # one reason, once, after the points it refuses
                  "{pruning.criterion=nope, pruning.p=1}, {pruning.criterion=nope, pruning.p=7}, "
                  "{pruning.criterion=nope, pruning.p=8}: unknown criterion 'nope'"):
        assert label in text
    assert text.count("unknown criterion 'nope'") == 1
    assert "{pruning.criterion=snip, pruning.p=1}" not in text


def test_a_reason_shared_by_many_points_is_given_once_with_three_of_them_named(tmp_path, tiny_folder,
                                                                                cpu_without_bf16):
    path = write_sweep(tmp_path, tiny_folder, grid={"seed": [0, 1, 2, 3, 4]},
                       base={"training": {**TINY["training"], "require_precision": "bf16"}})
    with pytest.raises(LotteryError) as caught:
        load_sweep(path)
    text = str(caught.value)
    assert text.startswith("5 of 5 grid points are invalid: {seed=0}, {seed=1}, {seed=2} and 2 more: "
                           "training.require_precision=bf16, but this run would compute in fp32")
    assert text.count("training.require_precision=bf16") == 1 and "\n" not in text


def test_dense_baselines_are_added_once_per_dense_identity_and_come_first(tmp_path, tiny_folder):
    path = write_sweep(tmp_path, tiny_folder, grid=[
        {"pipeline": ["ticket_init", "filter_ticket"], "pruning.criterion": ["snip", "grasp"], "pruning.p": [1, 2],
         "seed": [0, 1]},
        {"pipeline": "dense", "seed": 0},  # given explicitly too: still once
    ])
    sweep = load_sweep(path)
    pipelines = [p.pipeline for p in sweep.points]
    assert pipelines[:2] == ["dense", "dense"] and pipelines.count("dense") == 2  # seeds 0 and 1
    assert len(sweep.points) == 2 + 16
    assert [len(phase) for phase in sweep.phases()] == [18]   # tickets at θ_0 train beside their dense runs


def test_only_tickets_that_start_from_a_trained_dense_network_wait_for_it(tmp_path, tiny_folder):
    path = write_sweep(tmp_path, tiny_folder, grid=[
        {"pipeline": ["ticket_init", "ticket_rewind", "filter_ticket"], "seed": [0, 1]},
        {"pipeline": "reinit", "pruning.reinit_of": ["ticket_init", "ticket_rewind"]},
        {"pipeline": "iterative", "pruning.iterative_mode": ["init", "rewind"]},
    ])
    first, later = load_sweep(path).phases()
    assert [p.pipeline for p in first] == ["dense", "dense", "ticket_init", "ticket_init", "filter_ticket",
                                              "filter_ticket", "reinit", "iterative"]
    assert [p.pipeline for p in later] == ["ticket_rewind", "ticket_rewind", "reinit", "iterative"]
    assert later[2].pruning.reinit_of == "ticket_rewind" and later[3].pruning.iterative_mode == "rewind"
    assert load_sweep(path).describe() == "12 trials (2 dense baselines first, 4 tickets after them)"


def test_paths_are_pinned_absolute_and_the_tracking_uri_explicit(tmp_path, tiny_folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOTTERY_DATA_DIR", str(tiny_folder))
    path = write_sweep(tmp_path, tiny_folder, grid={"pipeline": "dense"}, base={"data": {"name": "folder", "root": None},
                                                                         "tracking": {"results_dir": "rel-runs"}})
    (point,) = load_sweep(path).points
    assert point.data.root == str(tiny_folder)  # from LOTTERY_DATA_DIR: workers elsewhere lack it
    assert point.tracking.results_dir == str(tmp_path / "rel-runs")
    assert point.tracking.tracking_uri == f"sqlite:///{tmp_path / 'rel-runs' / 'mlflow.db'}"


def test_base_from_a_file_with_overrides(tmp_path, tiny_folder):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({**TINY, "data": {"name": "folder", "root": str(tiny_folder)}}))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": {"from": "base.yaml", "training": {"epochs": 3}},
                                    "grid": {"pruning.p": [1]}}))
    sweep = load_sweep(path, overrides=["seed=4"])
    dense, ticket = sweep.points
    assert ticket.training == build_config({"training": {**TINY["training"], "epochs": 3}}).training
    assert ticket.seed == 4
    assert dense == ticket.dense() and dense.pruning == PruningConfig()   # derived, not rebuilt


def test_an_address_where_no_ray_answers_is_refused_in_one_line():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LotteryError, match=rf"no Ray cluster answers at ray://127.0.0.1:{port}"):
        probe_address(f"ray://127.0.0.1:{port}")
    with pytest.raises(LotteryError, match=rf"no Ray cluster answers at 127.0.0.1:{port} \(Connection refused"):
        probe_address(f"127.0.0.1:{port}")
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never speaks Ray
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        other = silent.getsockname()[1]
        with pytest.raises(LotteryError, match=rf"no Ray cluster answers at 127.0.0.1:{other} \("):
            probe_address(f"127.0.0.1:{other}", timeout_s=1.0)
    with pytest.raises(LotteryError, match="is not host:port"):
        probe_address("nohost")


def test_a_cluster_needs_a_tracking_server():
    with pytest.raises(LotteryError, match=r"MLflow tracking server, not sqlite:////tmp/x.db: .*MLFLOW_TRACKING_URI"):
        st.check_cluster("auto", "sqlite:////tmp/x.db")
    st.check_cluster("auto", "https://mlflow.example.org")
    st.check_cluster(None, "sqlite:////tmp/x.db")  # local Ray: anything goes


@pytest.mark.slow   # a local Ray
def test_the_storage_check_reads_the_marker_back_on_every_node(local_ray, tmp_path):
    root = str(tmp_path / "shared")
    assert st.check_shared(root) == len([n for n in local_ray.nodes() if n["Alive"]])
    assert list((tmp_path / "shared" / st.MARKER_DIR).iterdir()) == []   # the marker is gone again
    assert st.read_marker(root, "no-such-marker").startswith("FileNotFoundError")
    nodes = [{"NodeID": "a" * 56, "NodeManagerAddress": "10.0.0.1"}, {"NodeID": "b" * 56, "NodeManagerAddress": "10.0.0.2"}]
    assert st.not_shared(root, nodes, ["t0k", "t0k"], "t0k") is None
    assert st.not_shared(root, nodes, ["t0k", "FileNotFoundError: x"], "t0k") == (
        f"storage {root} is not shared: node 10.0.0.2 (id bbbbbbbbbbbb) cannot read the marker the driver wrote "
        "there (FileNotFoundError: x); pass --storage s3://bucket/prefix (or gs://...), or a path every node mounts")


def test_resume_of_an_unknown_sweep_lists_the_known_ones(tmp_path):
    st.write_meta(str(tmp_path / "ray"), "old", {"x": 1})
    with pytest.raises(LotteryError, match=r"no sweep named 'new' in .*/ray; known sweeps: old"):
        resume("new", results_dir=tmp_path)


def test_error_line_finds_the_message_in_a_trial_traceback():
    text = ("ray::ImplicitFunc.train() (pid=1, ip=1.2.3.4)\n  File \"x.py\", line 3, in f\n"
            "    raise LotteryError('boom')\nlottery_core.errors.LotteryError: data.root /x does not exist\n")
    assert error_line(RuntimeError(text)) == "lottery_core.errors.LotteryError: data.root /x does not exist"


def test_commands_register_with_help_and_fail_in_one_line(tmp_path, capsys):
    from pipelines.cli import main
    from tune.commands import register_commands

    parser = argparse.ArgumentParser(prog="lottery")
    register_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["resume", "x", "--restart-errored"])
    assert args.restart_errored and callable(args.handler)
    with pytest.raises(SystemExit) as done:
        parser.parse_args(["sweep", "--help"])
    assert done.value.code == 0 and "resources: auto" in capsys.readouterr().out
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2  # through `lottery` and its entry point
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lottery sweep: error: sweep file not found: {tmp_path / 'missing.yaml'}"]


def test_dry_run_lists_the_trials_and_starts_nothing(tmp_path, tiny_folder, capsys):
    from pipelines.cli import main

    path = write_sweep(tmp_path, tiny_folder, grid={"pruning.p": [1, 2]})
    assert main(["sweep", str(path), "--dry-run", "--name", "dry"]) == 0
    out = capsys.readouterr().out
    assert "dry: 3 trials (1 dense baselines first)" in out
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["dense", "ticket_init", "ticket_init"]
    assert not (tmp_path / "runs").exists()


SHIPPED = Path(__file__).resolve().parents[1] / "tune"


@pytest.mark.parametrize("name,trials,dense", [("demo", 7, 1), ("paper_resnet32", 99, 3), ("optuna_pareto", 0, 1),
                                                ("optuna_pareto_quick", 0, 1), ("consensus_vit", 84, 6)])
def test_shipped_sweep_files_are_valid(name, trials, dense):
    sweep = load_sweep(SHIPPED / "sweeps" / f"{name}.yaml")
    assert len(sweep.points) == trials
    phases = sweep.phases()
    assert all(p.pipeline == "dense" for p in phases[0][:dense])   # the dense baselines start first
    assert not any(p.pipeline == "dense" for phase in phases for p in (phase[dense:] if phase is phases[0] else phase))
    if name == "demo":  # dense, GraSP/SNIP p=1 and 3, random blocks at p=3, a filter ticket at p=1
        tickets = sorted((p.pipeline, p.pruning.criterion, p.pruning.p) for p in sweep.points[1:])
        assert tickets == sorted([("ticket_init", c, p) for c in ("grasp", "snip") for p in (1, 3)]
                                 + [("ticket_init", "random", 3), ("filter_ticket", "snip", 1)])
        base = sweep.points[0]   # the quick recipe of benchmarks/recipe.md
        assert base.model.init == "torch" and base.training.schedule == "onecycle"
        assert base.training.nesterov is True and base.training.weight_decay == 5e-4


@pytest.mark.parametrize("path", sorted((SHIPPED / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_sweep_file_loads_with_its_dense_baselines_first(path, monkeypatch):
    import lottery_core.train.precision as precision_rule

    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: True)   # a study may require bf16
    sweep = load_sweep(path)
    first = sweep.phases()[0]
    dense = sum(p.pipeline == "dense" for p in first)
    assert all(p.pipeline == "dense" for p in first[:dense])
    if sweep.questions:   # declared questions are valid (load_sweep checked them) and name their family
        assert all(q["compare"] and q["id"] for q in sweep.questions["questions"])


# --- real sweeps on the shared local Ray ---------------------------------------------------

@pytest.mark.slow   # a local Ray
def test_grid_sweep_one_child_run_per_trial_compared_with_dense_and_reported(local_ray, tmp_path, tiny_folder):
    path = write_sweep(tmp_path, tiny_folder, grid={"pruning.criterion": ["snip", "magnitude", "random"]}, retries=1)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / DRILL_FILE).write_text("fail 0")  # one trial fails after epoch 0, once
    sweep = load_sweep(path, name="grid4")
    outcome = launch(sweep, results_dir=tmp_path / "runs", epoch_hooks=[FAULT_ONCE])
    assert outcome.ok and outcome.trials == 4 and outcome.errors == []
    from ray import tune

    from tune.trial import built_configs, plain_key

    kept = tune.Tuner.restore(f"{outcome.storage}/grid4/phase0", trainable="trial").get_results()
    table = built_configs(sweep.configs())   # every trial, the retried one too, found its validated config there
    assert len(kept) == 4 and all(plain_key(r.config["run"]) in table for r in kept)
    assert not (tmp_path / "runs" / DRILL_FILE).exists()
    runs = children(outcome.tracking_uri, outcome.parent_run_id)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.tags["criterion"] for r in runs) == ["magnitude", "none", "random", "snip"]
    assert {r.data.tags["sweep"] for r in runs} == {"grid4"}
    assert sorted(r.data.params["pruning.criterion"] for r in runs if r.data.tags["pipeline"] != "dense") == \
        ["magnitude", "random", "snip"]  # the config as params
    assert {r.data.params["threads"] for r in runs} == {"1"} and {r.data.params["device"] for r in runs} == {"cpu"}
    dense = next(r for r in runs if r.data.tags["pipeline"] == "dense")
    tickets = [r for r in runs if r is not dense]
    assert any(t.info.start_time < dense.info.end_time for t in tickets)  # tickets at θ_0 train beside it
    for t in tickets:   # compared in the trial (dense finished first) or filled in after both finished
        assert t.data.tags["comparison"].startswith(f"ok: dense run {dense.info.run_id}")
        assert t.data.metrics["delta_acc"] == pytest.approx(t.data.metrics["acc"] - dense.data.metrics["acc"])
        assert "cka_vs_dense" in t.data.metrics and "cka" not in t.data.tags   # from the saved features
    # the failed trial was retried from its checkpoint: epochs 0 and 1 trained once each
    retried = [r for r in runs if r.data.tags.get("resumed") == "true"]
    assert len(retried) == 1 and history(outcome.tracking_uri, retried[0].info.run_id) == [0, 1]
    assert retried[0].data.metrics["epochs_trained"] == 2 and retried[0].data.metrics["resumed_from_epoch"] == 1
    parent = MlflowClient(outcome.tracking_uri).get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep"] == "grid4"
    assert (outcome.report_dir / "report.md").is_file() and "snip" in outcome.main_table
    artifacts = [a.path for a in MlflowClient(outcome.tracking_uri).list_artifacts(outcome.parent_run_id, "report")]
    assert "report/report.md" in artifacts
    assert parent.data.params["trials"] == "4" and parent.data.params["retries"] == "1"
    assert any(a.path == "sweep.json" for a in MlflowClient(outcome.tracking_uri).list_artifacts(outcome.parent_run_id))
    with pytest.raises(LotteryError, match=r"a sweep named 'grid4' already exists in .*: choose another --name"):
        launch(load_sweep(path, name="grid4"), results_dir=tmp_path / "runs")
    # resuming a finished sweep trains nothing and adds no run
    again = resume("grid4", results_dir=tmp_path / "runs")
    assert again.ok and again.trials == 4
    assert len(children(outcome.tracking_uri, outcome.parent_run_id)) == 4
    assert all(history(outcome.tracking_uri, r.info.run_id) == [0, 1] for r in runs)


@pytest.mark.slow   # a local Ray
def test_trials_given_gpus_that_cuda_cannot_use_fail_in_one_line(local_ray, tmp_path, tiny_folder):
    """The module's Ray declares a GPU that this CPU machine's torch cannot use: every trial given a
    share of it fails in one line naming the torch build and the driver, its MLflow run FAILED with
    that line, and nothing is trained on the CPU instead."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine's CUDA works: the refusal needs a GPU that CUDA cannot use")
    path = write_sweep(tmp_path, tiny_folder, grid={"pipeline": "dense", "seed": [0, 1]},
                       base={"training": {"epochs": 1}, "evaluation": {"cka_images": 0}},
                       resources={"cpu": 1, "gpu": 0.5}, retries=0)
    outcome = launch(load_sweep(path, name="gpu"), results_dir=tmp_path / "runs")
    assert not outcome.ok and len(outcome.errors) == 2
    for line in outcome.errors:
        assert "this trial was given GPU(s) [0] by Ray, but CUDA is not available to this process (torch " in line
    runs = children(outcome.tracking_uri, outcome.parent_run_id)
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED"]
    for run in runs:
        assert run.data.tags["device_kind"] == "cuda" and "CUDA is not available" in run.data.tags["failure"]
        assert "train_loss" not in run.data.metrics   # never trained, on the CPU or anywhere


def test_device_cpu_holding_gpus_is_refused_before_any_trial(tmp_path, tiny_folder):
    path = write_sweep(tmp_path, tiny_folder, grid={"pipeline": "dense"}, base={"device": "cpu"},
                       resources={"cpu": 1, "gpu": 0.5})
    from tune.launch import plan_resources

    with pytest.raises(LotteryError, match=r"^device: cpu with resources \{gpu: 0.5\} would hold GPUs that its "
                                           r"trials never use"):
        plan_resources(load_sweep(path), [{"CPU": 2, "GPU": 1}], strict=True)
    auto = load_sweep(write_sweep(tmp_path, tiny_folder, grid={"pipeline": "dense"}, base={"device": "cpu"},
                                  resources="auto"))
    assert plan_resources(auto, [{"CPU": 2, "GPU": 1}], strict=True) == {"cpu": 2, "gpu": 0}  # GPUs left alone


@pytest.mark.slow   # a local Ray
def test_optuna_search_over_per_stage_counts_reports_its_pareto_front(local_ray, tmp_path, tiny_folder):
    """Two objectives (validation accuracy up, MACs down) over how many blocks each stage loses and
    the criterion; the report's Pareto table and plot read validation accuracy, never test."""
    stage = {"type": "int", "low": 0, "high": 1}   # resnet20, 2 blocks kept per stage: each stage may lose 1
    path = write_sweep(tmp_path, tiny_folder, optuna={
        "space": {"pruning.stage_counts.1": stage, "pruning.stage_counts.2": stage, "pruning.stage_counts.3": stage,
                  "pruning.criterion": {"type": "categorical", "choices": ["snip", "magnitude"]}},
        "metrics": ["val_acc", "macs"], "modes": ["max", "min"], "num_samples": 3, "seed": 1},
        base={"evaluation": {"cka_images": 0}, "data": {"val_size": 8}})
    sweep = load_sweep(path, name="optuna")
    assert [len(phase) for phase in sweep.phases()] == [1, 0]  # the shared dense baseline, then the search
    outcome = launch(sweep, results_dir=tmp_path / "runs")
    assert outcome.ok and outcome.trials == 1 + 3
    from ray import tune

    results = tune.Tuner.restore(f"{outcome.storage}/optuna/phase1", trainable="trial").get_results()
    assert len(results) == 3
    runs = {r.info.run_id: r for r in children(outcome.tracking_uri, outcome.parent_run_id)}
    for r in results:
        counts = [r.config[f"pruning.stage_counts.{n}"] for n in (1, 2, 3)]
        assert set(counts) <= {0, 1} and r.config["pruning.criterion"] in ("snip", "magnitude")
        assert 0 <= r.metrics["val_acc"] <= 100 and r.metrics["macs"] > 0
        tags = runs[r.metrics["mlflow_run_id"]].data.tags
        assert tags["stage_counts"] == "/".join(map(str, counts)) and tags["p"] == str(sum(counts))
    assert sum(r.data.tags["pipeline"] == "dense" for r in runs.values()) == 1
    report = (outcome.report_dir / "report.md").read_text()
    assert "## Pareto front: accuracy against MACs" in report and (outcome.report_dir / "pareto_front.png").is_file()
    front = pd.read_csv(outcome.report_dir / "pareto.csv")
    assert front.pipeline.tolist()[0] == "dense" and front.on_front.any()
    assert "Smallest winning ticket: not named" in report    # a search declares no question: exploratory
    confirm = load_sweep(outcome.confirmation)               # the front over 5 seeds, beside same-stage random
    assert [q["id"] for q in confirm.questions["questions"]] == ["Q1", "Q2"]   # declared before it runs
    candidates = int(front.on_front.sum())
    tickets = [p for p in confirm.points if p.pipeline != "dense"]
    assert len(tickets) == candidates * 2 * 5
    assert {p.pruning.control for p in tickets} == {"none", "same_stage_random"}


def test_an_epoch_hook_that_cannot_be_imported_is_refused_before_anything_starts(tmp_path, tiny_folder):
    path = write_sweep(tmp_path, tiny_folder, grid={"pipeline": "dense"})
    for hook, message in (("tests.nothing_here:Hook", "epoch hook 'tests.nothing_here:Hook': cannot import"),
                          ("tests.drills:Missing", "epoch hook 'tests.drills:Missing': give an import path"),
                          ("tests.drills", "epoch hook 'tests.drills': give an import path `package.module:name`")):
        with pytest.raises(LotteryError, match=message):
            launch(load_sweep(path, name="hooks"), results_dir=tmp_path / "runs", epoch_hooks=[hook])
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow   # a local Ray
def test_resume_restart_errored_starts_a_failed_trial_over(local_ray, tmp_path, tiny_folder):
    path = write_sweep(tmp_path, tiny_folder, grid={"pipeline": "dense"}, retries=0,
                       base={"evaluation": {"cka_images": 0}})
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / DRILL_FILE).write_text("fail 0")
    outcome = launch(load_sweep(path, name="restart"), results_dir=tmp_path / "runs", epoch_hooks=[FAULT_ONCE])
    assert len(outcome.errors) == 1 and "drill: failure injected after epoch 0" in outcome.errors[0]
    (run,) = children(outcome.tracking_uri, outcome.parent_run_id)
    assert run.info.status == "FAILED" and history(outcome.tracking_uri, run.info.run_id) == [0]
    assert MlflowClient(outcome.tracking_uri).get_run(outcome.parent_run_id).info.status == "FAILED"
    again = resume("restart", results_dir=tmp_path / "runs", restart_errored=True)
    assert again.ok
    (run,) = children(outcome.tracking_uri, outcome.parent_run_id)  # still one run for the trial
    assert run.info.status == "FINISHED" and run.data.metrics["epochs_trained"] == 2
    assert run.data.metrics["resumed_from_epoch"] == 0  # started over: epoch 0 trained again
    assert history(outcome.tracking_uri, run.info.run_id) == [0, 1]  # and logged once


@pytest.mark.drill
@pytest.mark.slow   # a local Ray
def test_trials_log_to_a_real_mlflow_server_that_goes_away_mid_sweep(local_ray, tmp_path, tiny_folder):
    import threading

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path / "server", port)
    killed = threading.Event()

    def kill_after_first_finished_run():  # the server dies between the sweep's two trials
        client = MlflowClient(uri)
        while not killed.is_set():
            try:
                experiment = client.get_experiment_by_name("served")
                if experiment and client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'"):
                    os.killpg(server.pid, signal.SIGKILL)
                    killed.set()
            except Exception:
                pass
            time.sleep(0.2)

    try:
        path = write_sweep(tmp_path, tiny_folder, grid={"pipeline": "dense", "seed": [0, 1]}, retries=0,
                           max_concurrent=1, base={"tracking": {"tracking_uri": uri, "experiment": "served"}})
        watcher = threading.Thread(target=kill_after_first_finished_run, daemon=True)
        watcher.start()
        outcome = launch(load_sweep(path, name="served"), results_dir=tmp_path / "runs")
        assert killed.is_set() and outcome.tracking_uri == uri
        assert not outcome.ok and any("MLflow" in e or "unreachable" in e or "Connection" in e for e in outcome.errors)
        server.wait(timeout=30)
        with pytest.raises(LotteryError, match=rf"MLflow tracking server {uri} is unreachable"):
            resume("served", results_dir=tmp_path / "runs")  # refused clearly before any trial starts
        server = start_mlflow_server(tmp_path / "server", port)  # the same store again
        again = resume("served", results_dir=tmp_path / "runs")
        assert again.ok, again.errors
        runs = children(uri, outcome.parent_run_id)
        assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
        assert all(history(uri, r.info.run_id) == [0, 1] for r in runs)
        parent = MlflowClient(uri).get_run(outcome.parent_run_id)
        assert parent.info.status == "FINISHED"
        assert "report/report.md" in [a.path for a in MlflowClient(uri).list_artifacts(outcome.parent_run_id, "report")]
    finally:
        killed.set()
        if server.poll() is None:
            stop(server)
