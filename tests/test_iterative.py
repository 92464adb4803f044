"""The iterative pipeline (issue 12): rounds of k blocks at θ_0 and after training, on tiny data.

ResNet20 may lose one block per stage (three blocks a stage, two kept), so p = 2 with k = 1 is two
rounds. Each test asserts a known answer: the blocks a silenced θ_0 must lose, round 1 equal to the
one-shot ticket of p = k, the epochs each round trains, what a resumed run does not repeat.
"""
import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import silence
from mlflow.tracking import MlflowClient

from lottery_core import accounting, models, surgery
from pipelines import steps as pipeline_steps
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.context import with_fingerprint
from pipelines.report import write_report
from pipelines.runner import run
from pipelines.tracking import tracking_uri

pytestmark = pytest.mark.slow   # whole iterative pipelines trained and tracked

ROOT = Path(__file__).resolve().parents[1]


def tiny(results: Path, data: Path, *overrides):
    """ResNet20 on the tiny data set, 2 epochs, SNIP, nothing but accuracy and cost evaluated."""
    return with_fingerprint(load_config({
        "model": {"name": "resnet20"},
        "data": {"name": "folder", "root": str(data)},
        "training": {"epochs": 2, "batch_size": 16, "lr": 0.05, "keep_epochs": [0, 1]},
        "pruning": {"criterion": "snip", "p": 2, "images_per_class": 2},
        "evaluation": {"corruptions": [], "attacks": [], "cka_images": 0},
        "tracking": {"results_dir": str(results), "experiment": "iterative"},
    }, list(overrides)))


ITERATIVE = ("pipeline=iterative", "pruning.p=2", "pruning.blocks_per_round=1")


def client_for(cfg) -> MlflowClient:
    return MlflowClient(tracking_uri(cfg))


def children(cfg, run_id) -> list:
    """The round runs of an iterative run, by round."""
    client = client_for(cfg)
    found = client.search_runs([client.get_experiment_by_name("iterative").experiment_id],
                               filter_string=f"tags.iterative_parent = '{run_id}'")
    return sorted(found, key=lambda r: int(r.data.tags["round"]))


def artifact(cfg, run_id, path, tmp_path):
    return json.loads(Path(client_for(cfg).download_artifacts(run_id, path, str(tmp_path))).read_text())


def steps(cfg, run_id, key) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in sorted(client_for(cfg).get_metric_history(run_id, key), key=lambda m: m.step)]


def test_at_init_each_round_removes_the_silenced_block_and_only_the_last_ticket_trains(tmp_path, tiny_folder,
                                                                                       monkeypatch):
    theta_0 = pipeline_steps.initial_model

    def silenced(ctx):                      # θ_0 with two dead blocks, in different stages
        model = theta_0(ctx)
        for name in ("layer1.1", "layer3.2"):
            silence(model, name)
        return model

    monkeypatch.setattr(pipeline_steps, "initial_model", silenced)
    cfg = tiny(tmp_path / "runs", tiny_folder, *ITERATIVE)
    outcome = run(cfg)
    assert outcome.status == "finished"
    rounds = children(cfg, outcome.run_id)
    assert [r.data.tags["round"] for r in rounds] == ["1", "2"]
    # SNIP scores a silenced block exactly 0: round 1 removes the first, round 2 (re-scoring the
    # round-1 ticket at θ_0) the second; blocks named as in the dense network
    assert [r.data.tags["round_removed"] for r in rounds] == ["layer1.1", "layer3.2"]
    assert [r.data.tags["blocks_removed"] for r in rounds] == ["1", "2"]
    assert all(r.info.status == "FINISHED" and r.data.tags["mlflow.parentRunId"] == outcome.run_id for r in rounds)
    assert all(r.data.params["blocks_per_round"] == "1" for r in rounds)
    tags = client_for(cfg).get_run(outcome.run_id).data.tags
    assert (tags["pipeline"], tags["rounds"], tags["blocks_removed"], tags["removed_blocks"]) == \
        ("iterative", "2", "2", "layer1.1,layer3.2")
    assert tags["stop_reason"].startswith("target reached: 2 blocks")
    # only the last ticket trains, n epochs, as this run's epochs; round 1 was never trained
    assert [s for s, _ in steps(cfg, outcome.run_id, "epoch_test_acc")] == [0, 1]
    assert "acc" not in rounds[0].data.metrics and rounds[1].data.metrics["acc"] == pytest.approx(outcome.metrics["acc"])
    dense = models.build("resnet20", num_classes=4)
    ticket = surgery.remove_blocks(dense, ["layer1.1", "layer3.2"])
    assert outcome.metrics["params"] == accounting.count_params(ticket)
    macs = steps(cfg, outcome.run_id, "round_macs")
    assert [s for s, _ in macs] == [1, 2] and macs[1][1] == accounting.count_macs(ticket)
    assert steps(cfg, outcome.run_id, "round_blocks_removed") == [(1, 1.0), (2, 2.0)]
    table = artifact(cfg, outcome.run_id, "rounds.json", tmp_path)
    assert [len(r["removed_now"].split(",")) for r in table["rounds"]] == [1, 1] and table["kept_round"] == 2
    listed = {a.path for a in client_for(cfg).list_artifacts(outcome.run_id)}
    assert {"rounds.csv", "rounds.json", "plan.json", "plots"} <= listed


def test_round_one_is_the_one_shot_ticket_of_p_equal_k_and_is_found_beside_it(tmp_path, tiny_folder):
    results = tmp_path / "runs"
    oneshot_cfg = tiny(results, tiny_folder, "pipeline=ticket_init", "pruning.p=1")
    oneshot = run(oneshot_cfg)
    cfg = tiny(results, tiny_folder, *ITERATIVE)
    outcome = run(cfg)
    first = children(cfg, outcome.run_id)[0]
    expected = artifact(oneshot_cfg, oneshot.run_id, "plan.json", tmp_path / "a")["removed"]
    assert first.data.tags["round_removed"].split(",") == expected
    scored = artifact(cfg, first.info.run_id, "plan.json", tmp_path / "b")
    assert scored["scores"] == artifact(oneshot_cfg, oneshot.run_id, "plan.json", tmp_path / "c")["scores"]
    table = artifact(cfg, outcome.run_id, "rounds.json", tmp_path / "d")["rounds"]
    assert table[0]["oneshot_run_id"] == oneshot.run_id
    assert table[0]["oneshot_test_acc"] == pytest.approx(oneshot.metrics["acc"])
    assert table[1]["oneshot_run_id"] is None            # no one-shot p = 2 ticket in the experiment
    assert outcome.metrics["acc"] == pytest.approx(table[1]["test_acc"])
    # the report pairs each round with the one-shot ticket of the same p, where there is one
    write_report(tracking_uri(cfg), "iterative", tmp_path / "report")
    rows = pd.read_csv(tmp_path / "report" / "iterative.csv").set_index("blocks removed")
    assert rows.loc[1, "one-shot acc %"] == f"{oneshot.metrics['acc']:.2f} (n=1)"
    assert rows.loc[1, "iterative acc %"] == "—"       # a round at θ_0 before the last is not trained
    assert rows.loc[2, "iterative acc %"] == f"{outcome.metrics['acc']:.2f} (n=1)"
    assert rows.loc[2, "verdict"] == "no one-shot ticket"
    assert (tmp_path / "report" / "iterative_rounds.png").is_file()
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert summary[summary.pipeline == "iterative"].iloc[0]["rounds"] == "init k=1"


def test_after_training_each_round_rewinds_trains_n_minus_i_epochs_and_resumes_without_repeating(tmp_path,
                                                                                                 tiny_folder):
    results = tmp_path / "runs"
    run(tiny(results, tiny_folder, "pipeline=dense"))
    oneshot_cfg = tiny(results, tiny_folder, "pipeline=ticket_rewind", "pruning.p=1", "pruning.rewind_epoch=1",
                       "pruning.criterion=magnitude")
    oneshot = run(oneshot_cfg)
    cfg = tiny(results, tiny_folder, *ITERATIVE, "pruning.iterative_mode=rewind", "pruning.rewind_epoch=1",
               "pruning.criterion=magnitude")

    class InterruptRoundTwo:
        calls = 0

        def on_epoch_end(self, epoch, metrics, state):
            InterruptRoundTwo.calls += 1
            if InterruptRoundTwo.calls == 2:          # round 2's only epoch, after its checkpoint
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(cfg, hooks=[InterruptRoundTwo()])
    killed = children(cfg, client_for(cfg).search_runs(
        [client_for(cfg).get_experiment_by_name("iterative").experiment_id],
        "tags.pipeline = 'iterative'")[0].info.run_id)
    assert [r.info.status for r in killed] == ["FINISHED", "KILLED"]
    outcome = run(cfg)
    assert outcome.status == "finished"
    rounds = children(cfg, outcome.run_id)
    assert [r.info.run_id for r in rounds] == [r.info.run_id for r in killed]   # found again, not doubled
    assert [r.info.status for r in rounds] == ["FINISHED", "FINISHED"]
    for r in rounds:   # n − i = 1 epoch each, from epoch i = 1, trained once (the resume trained nothing)
        assert [s for s, _ in steps(cfg, r.info.run_id, "epoch_test_acc")] == [1]
    # round 1 scores the trained dense network: the one-shot Algorithm 1 ticket of p = 1
    expected = artifact(oneshot_cfg, oneshot.run_id, "plan.json", tmp_path)["removed"]
    assert rounds[0].data.tags["round_removed"].split(",") == expected
    removed = rounds[1].data.tags["removed_blocks"].split(",")
    assert len(removed) == 2 and removed[0] == expected[0] and len(set(removed)) == 2
    tags = client_for(cfg).get_run(outcome.run_id).data.tags
    assert tags["removed_blocks"] == ",".join(removed) and tags["comparison"].startswith("ok: dense run")
    assert outcome.metrics["acc"] == pytest.approx(rounds[1].data.metrics["acc"])
    assert [s for s, _ in steps(cfg, outcome.run_id, "round_test_acc")] == [1, 2]
    assert run(cfg).status == "existing"


def test_a_round_that_loses_on_validation_stops_the_rounds(tmp_path, tiny_folder):
    results = tmp_path / "runs"
    run(tiny(results, tiny_folder, "pipeline=dense", "data.val_size=8"))
    # stop_xi = -1000: a round "loses" unless it beats dense by 1000 points, so round 1 loses
    cfg = tiny(results, tiny_folder, *ITERATIVE, "data.val_size=8", "pruning.stop_xi=-1000")
    outcome = run(cfg)
    rounds = children(cfg, outcome.run_id)
    assert len(rounds) == 1 and rounds[0].data.metrics["loses"] == 1.0
    assert [s for s, _ in steps(cfg, rounds[0].info.run_id, "epoch_test_acc")] == [0, 1]   # judged after n epochs
    tags = client_for(cfg).get_run(outcome.run_id).data.tags
    assert tags["stop_reason"].startswith("round 1 loses") and tags["blocks_removed"] == "1"


def test_a_macs_budget_stops_after_the_first_round_within_it(tmp_path, tiny_folder):
    cfg = tiny(tmp_path / "runs", tiny_folder, "pipeline=iterative", "pruning.p=3", "pruning.blocks_per_round=1",
               "pruning.macs_budget=0.99")
    outcome = run(cfg)
    rounds = children(cfg, outcome.run_id)
    assert len(rounds) == 1 and rounds[0].data.metrics["macs_fraction"] <= 0.99
    tags = client_for(cfg).get_run(outcome.run_id).data.tags
    assert tags["stop_reason"].startswith("MACs budget reached") and tags["blocks_removed"] == "1"


@pytest.mark.parametrize(("settings", "message"), [
    (["pruning.stop_xi=0.5"], "pruning.stop_xi=0.5 judges each round on the validation split, but data.val_size=0"),
    (["pruning.p=2", "pruning.blocks_per_round=3"], "pruning.blocks_per_round=3 exceeds pruning.p=2"),
    (["pruning.p=0"], "pipeline=iterative needs pruning.p >= 1"),
    (["pruning.macs_budget=0"], "pruning.macs_budget must be a number in (0, 1]"),
    (["pruning.iterative_mode=rewind", "pruning.rewind_epoch=3"], "pruning.rewind_epoch=3 is not one of"),
    (["pruning.control=inverted"], "not pipeline=iterative"),
])
def test_bad_iterative_settings_are_one_line_exit_2(settings, message, capsys, tmp_path):
    argv = ["run", "--results-dir", str(tmp_path / "runs"), "--set", "pipeline=iterative"]
    for item in settings:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()      # refused before anything was written


def test_iterative_settings_are_identity_only_where_read():
    def identity(*overrides):
        return load_config(None, ["device=cpu", *overrides]).identity()

    base = identity("pipeline=iterative", "pruning.p=4")
    for extra in ("pruning.blocks_per_round=2", "pruning.iterative_mode=rewind", "pruning.macs_budget=0.5",
                  "pruning.stop_xi=0.5", "pruning.stop_xi=0"):
        others = ["data.val_size=10"] if "stop_xi" in extra else []
        assert identity("pipeline=iterative", "pruning.p=4", extra, *others) != identity(
            "pipeline=iterative", "pruning.p=4", *others), extra
    assert identity("pipeline=iterative", "pruning.p=4", "pruning.rewind_epoch=25") == base   # init: no rewind
    assert identity("pipeline=iterative", "pruning.p=4", "pruning.iterative_mode=rewind",
                    "pruning.rewind_epoch=25") != identity("pipeline=iterative", "pruning.p=4",
                                                           "pruning.iterative_mode=rewind")
    assert identity("pruning.blocks_per_round=3", "pruning.macs_budget=0.5") == identity()   # ticket_init ignores them


def test_ticket_block_names_follow_the_index_shift_of_the_weights():
    net = models.build("resnet20", num_classes=4)
    names = surgery.ticket_block_names(net, ["layer1.0", "layer3.1"])
    assert names["layer1.1"] == "layer1.0" and names["layer1.2"] == "layer1.1" and names["layer3.2"] == "layer3.1"
    assert "layer1.0" not in names and names["layer2.0"] == "layer2.0"
    key_map = surgery.ticket_key_map(net, ["layer1.0", "layer3.1"])
    for dense, ticket in names.items():
        assert key_map[f"{dense}.conv1.weight"] == f"{ticket}.conv1.weight"


def test_the_shipped_iterative_config_and_sweep_are_valid(monkeypatch):
    cfg = load_config(ROOT / "configs/quick/resnet56_iterative.yaml")
    p = cfg.pruning
    assert cfg.pipeline == "iterative" and cfg.model.name == "resnet56"
    assert p.p >= 12 and p.blocks_per_round <= 3 and -(-p.p // p.blocks_per_round) >= 4
    monkeypatch.delenv("LOTTERY_DATA_DIR", raising=False)   # no data is read to validate it
    from tune.sweep_file import load_sweep

    sweep = load_sweep(ROOT / "tune/sweeps/iterative.yaml")
    pipelines = {point.pipeline for point in sweep.points}
    assert {"dense", "iterative", "ticket_init"} <= pipelines
    assert any(point.pruning.iterative_mode == "rewind" for point in sweep.points)
