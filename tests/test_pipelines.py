"""Each pipeline on a tiny network and tiny data, into a temporary SQLite MLflow store."""
import json
from dataclasses import replace

import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lottery_core import surgery
from lottery_core.errors import LotteryError
from pipelines.config import load_config
from pipelines.context import with_fingerprint
from pipelines.runner import run
from pipelines.tracking import tracking_uri

pytestmark = pytest.mark.slow   # whole pipelines trained and tracked


def tiny(tmp_path, tiny_folder, *overrides):
    """A tiny config with its data fingerprint filled in (as `lottery run` and a trial do)."""
    return with_fingerprint(load_config({
        "model": {"name": "resnet20"},
        "data": {"name": "folder", "root": str(tiny_folder)},
        "training": {"epochs": 2, "batch_size": 16, "lr": 0.05, "keep_epochs": [0, 1]},
        "pruning": {"criterion": "snip", "p": 2, "images_per_class": 2},
        "evaluation": {"corruptions": ["gaussian_noise"], "severities": [1], "corruption_images": 8,
                       "attacks": ["fgsm"], "epsilons": [0.03], "attack_images": 8, "cka_images": 8},
        "tracking": {"results_dir": str(tmp_path / "runs"), "experiment": "test"},
    }, list(overrides)))


def client_for(cfg):
    return MlflowClient(tracking_uri(cfg))


def weights(cfg, run_id, name, tmp_path):
    path = client_for(cfg).download_artifacts(run_id, f"weights/{name}.pt", str(tmp_path))
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_folder):
    """A dense run and a SNIP ticket at initialization, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("store")
    dense_cfg = tiny(tmp, tiny_folder, "pipeline=dense")
    ticket_cfg = tiny(tmp, tiny_folder, "pipeline=ticket_init")
    return {"tmp": tmp, "dense_cfg": dense_cfg, "dense": run(dense_cfg),
            "ticket_cfg": ticket_cfg, "ticket": run(ticket_cfg)}


def test_dense_run_records_params_epochs_tags_and_weights(store, tmp_path):
    cfg, outcome = store["dense_cfg"], store["dense"]
    mlrun = client_for(cfg).get_run(outcome.run_id)
    assert mlrun.info.status == "FINISHED"
    assert mlrun.data.params["training.epochs"] == "2" and mlrun.data.params["model.name"] == "resnet20"
    tags = mlrun.data.tags
    assert (tags["pipeline"], tags["criterion"], tags["p"], tags["identity"]) == ("dense", "none", "0", cfg.identity())
    history = client_for(cfg).get_metric_history(outcome.run_id, "epoch_test_acc")
    assert [m.step for m in history] == [0, 1]
    assert {"acc", "macs", "params", "memory_bytes", "train_time_s", "corruption_acc",
            "corruption_acc.gaussian_noise", "adv_acc.fgsm.eps8", "energy_kwh", "emissions_overhead_s"} <= set(outcome.metrics)
    artifacts = {a.path for a in client_for(cfg).list_artifacts(outcome.run_id, "weights")}
    assert {"weights/theta_0.pt", "weights/theta_1.pt", "weights/final.pt"} <= artifacts
    assert tracking_uri(cfg).startswith("sqlite:////")  # absolute


def test_ticket_starts_from_the_dense_theta_0_exactly(store, tmp_path):
    cfg, outcome = store["ticket_cfg"], store["ticket"]
    plan = json.loads(open(client_for(cfg).download_artifacts(outcome.run_id, "plan.json", str(tmp_path))).read())
    assert len(plan["removed"]) == 2 and set(plan["removed"]) <= set(plan["scores"])
    dense_theta_0 = weights(cfg, store["dense"].run_id, "theta_0", tmp_path)
    ticket_theta_0 = weights(cfg, outcome.run_id, "theta_0", tmp_path)
    from lottery_core import models

    key_map = surgery.ticket_key_map(models.build("resnet20", num_classes=4), plan["removed"])
    assert set(key_map.values()) == set(ticket_theta_0)
    for dense_key, ticket_key in key_map.items():
        assert torch.equal(ticket_theta_0[ticket_key], dense_theta_0[dense_key]), dense_key


def test_ticket_is_compared_with_its_dense_run(store):
    t, d = store["ticket"].metrics, store["dense"].metrics
    assert t["delta_acc"] == pytest.approx(t["acc"] - d["acc"])
    assert t["winning"] == float(t["acc"] >= d["acc"])
    assert t["macs_reduction_pct"] == pytest.approx(100 * (1 - t["macs"] / d["macs"]))
    assert t["macs_reduction_pct"] > 0 and 0 <= t["cka_vs_dense"] <= 1
    tags = client_for(store["ticket_cfg"]).get_run(store["ticket"].run_id).data.tags
    assert tags["comparison"].startswith("ok: dense run") and tags["dense_identity"] == store["dense_cfg"].identity()


def test_same_config_is_not_run_twice(store):
    again = run(store["ticket_cfg"])
    assert again.status == "existing" and again.run_id == store["ticket"].run_id


def test_missing_dense_is_recorded_as_missing_not_zero(tmp_path, tiny_folder):
    outcome = run(tiny(tmp_path, tiny_folder, "pipeline=ticket_init", "evaluation.attacks=[]",
                       "evaluation.corruptions=[]"))
    assert "delta_acc" not in outcome.metrics and "winning" not in outcome.metrics
    cfg = tiny(tmp_path, tiny_folder, "pipeline=ticket_init")
    tags = client_for(cfg).get_run(outcome.run_id).data.tags
    assert tags["comparison"].startswith("missing: no finished dense run with identity")


def test_rewind_reuses_the_dense_run_and_loads_theta_i_exactly(store, tmp_path):
    cfg = tiny(store["tmp"], store["dense_cfg"].data.root, "pipeline=ticket_rewind",
               "pruning.rewind_epoch=1", "pruning.criterion=magnitude")
    outcome = run(cfg)
    client = client_for(cfg)
    dense_runs = client.search_runs([client.get_experiment_by_name("test").experiment_id],
                                    "tags.pipeline = 'dense'")
    assert len(dense_runs) == 1  # reused, not trained again
    assert client.get_metric_history(outcome.run_id, "epoch_test_acc")[0].step == 1  # n − i epochs: epoch 1 only
    plan = json.loads(open(client.download_artifacts(outcome.run_id, "plan.json", str(tmp_path))).read())
    rewound = weights(cfg, outcome.run_id, "theta_1", tmp_path)
    dense_theta_1 = weights(cfg, store["dense"].run_id, "theta_1", tmp_path)
    from lottery_core import models

    for dense_key, ticket_key in surgery.ticket_key_map(models.build("resnet20", num_classes=4), plan["removed"]).items():
        assert torch.equal(rewound[ticket_key], dense_theta_1[dense_key]), dense_key


def test_filter_ticket_matches_the_block_tickets_filter_count(store):
    outcome = run(tiny(store["tmp"], store["dense_cfg"].data.root, "pipeline=filter_ticket"))
    assert outcome.metrics["filters"] == store["ticket"].metrics["filters"]
    assert outcome.metrics["macs"] != store["ticket"].metrics["macs"]


def test_reinit_has_the_tickets_architecture_and_new_weights(store, tmp_path):
    cfg = tiny(store["tmp"], store["dense_cfg"].data.root, "pipeline=reinit")
    outcome = run(cfg)
    assert outcome.metrics["params"] == store["ticket"].metrics["params"]
    fresh = weights(cfg, outcome.run_id, "theta_0", tmp_path)
    kept = weights(cfg, store["ticket"].run_id, "theta_0", tmp_path)
    assert fresh.keys() == kept.keys()
    assert not torch.equal(fresh["conv1.weight"], kept["conv1.weight"])


def test_rewind_without_dense_run_is_refused(tmp_path, tiny_folder):
    with pytest.raises(LotteryError, match="ticket_rewind needs a finished dense run"):
        run(tiny(tmp_path, tiny_folder, "pipeline=ticket_rewind", "pruning.rewind_epoch=1"))


def test_unreachable_tracking_server_is_reported_before_training(tmp_path, tiny_folder):
    cfg = tiny(tmp_path, tiny_folder, "tracking.tracking_uri=http://127.0.0.1:9")
    with pytest.raises(LotteryError, match=r"MLflow tracking server http://127.0.0.1:9 is unreachable"):
        run(cfg)
    assert not (tmp_path / "runs" / "checkpoints").exists()


def test_ctrl_c_marks_the_run_killed_and_the_same_command_continues_it(tmp_path, tiny_folder):
    cfg = tiny(tmp_path, tiny_folder, "pipeline=dense", "evaluation.attacks=[]", "evaluation.corruptions=[]")

    class Interrupt:
        def on_epoch_end(self, epoch, metrics, state):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(cfg, hooks=[Interrupt()])
    client = client_for(cfg)
    (killed,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert killed.info.status == "KILLED"
    assert any((tmp_path / "runs" / "checkpoints" / cfg.identity()).iterdir())
    outcome = run(cfg)
    assert outcome.run_id == killed.info.run_id and outcome.status == "finished"
    assert [m.step for m in client.get_metric_history(outcome.run_id, "epoch_test_acc")] == [0, 1]
    assert client.get_run(outcome.run_id).data.tags["resumed"] == "true"


def test_an_epoch_whose_logging_failed_is_logged_from_the_checkpoint_on_resume(tmp_path, tiny_folder, monkeypatch):
    cfg = tiny(tmp_path, tiny_folder, "pipeline=dense", "evaluation.attacks=[]", "evaluation.corruptions=[]")
    log_batch = MlflowClient.log_batch

    def server_gone_at_epoch_0(self, run_id, metrics=(), **kwargs):  # epoch 0 is checkpointed, never logged
        if any(m.step == 0 for m in metrics):
            raise MlflowException("Connection refused")
        return log_batch(self, run_id, metrics=metrics, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(MlflowClient, "log_batch", server_gone_at_epoch_0)
        with pytest.raises(MlflowException):
            run(cfg)
    outcome = run(cfg)  # continues at epoch 1, and first logs epoch 0 from the checkpoint's history
    assert outcome.metrics["resumed_from_epoch"] == 1
    client = client_for(cfg)
    assert [m.step for m in client.get_metric_history(outcome.run_id, "train_loss")] == [0, 1]
    assert [m.step for m in client.get_metric_history(outcome.run_id, "epoch_test_acc")] == [0, 1]


def test_an_epoch_trained_again_after_a_lost_checkpoint_is_not_logged_twice(tmp_path, tiny_folder):
    cfg = tiny(tmp_path, tiny_folder, "pipeline=dense", "evaluation.attacks=[]", "evaluation.corruptions=[]")

    class InterruptAfterLastEpoch:
        def on_epoch_end(self, epoch, metrics, state):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(cfg, hooks=[InterruptAfterLastEpoch()])  # epoch 1 logged and checkpointed
    folder = tmp_path / "runs" / "checkpoints" / cfg.identity()
    for file in folder.glob("epoch-0002.pt*"):  # the node holding the newest checkpoint is lost
        file.unlink()
    outcome = run(cfg)  # trains epoch 1 again
    client = client_for(cfg)
    assert [m.step for m in client.get_metric_history(outcome.run_id, "train_loss")] == [0, 1]


def test_missing_data_directory_is_one_clear_error(tmp_path):
    cfg = load_config({"data": {"name": "folder", "root": str(tmp_path / "nowhere")},
                       "tracking": {"results_dir": str(tmp_path / "runs")}})
    with pytest.raises(LotteryError, match="nowhere"):
        run(cfg)


def test_parallel_processes_create_one_store_without_racing(tmp_path):
    """FACTS.md: concurrent first-time migrations of one SQLite file race; prepare_store serializes them."""
    import subprocess
    import sys

    code = ("import sys; from pipelines.config import load_config; from pipelines.tracking import prepare_store; "
            "print(prepare_store(load_config(None, ['tracking.results_dir=' + sys.argv[1]]))[1])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-300:] for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1  # one experiment id


# --- controls, reinit of Algorithm 1, data fingerprint, sweep membership (issue 9) -------------

QUICK = ("evaluation.attacks=[]", "evaluation.corruptions=[]", "evaluation.cka_images=0")


def plan_of(cfg, run_id, tmp_path):
    path = client_for(cfg).download_artifacts(run_id, "plan.json", str(tmp_path))
    return json.loads(open(path).read())


def test_uniform_control_is_the_plain_shallower_network(store, tmp_path):
    cfg = tiny(store["tmp"], store["dense_cfg"].data.root, "pruning.control=uniform", *QUICK)
    outcome = run(cfg)
    plan = plan_of(cfg, outcome.run_id, tmp_path)
    # resnet20: 3 blocks a stage, 1 may go from each; p = 2 -> the last block of stages 1 and 2
    assert plan["removed"] == ["layer1.2", "layer2.2"] and plan["control"] == "uniform"
    assert plan["stage_counts"] == {"1": 1, "2": 1, "3": 0}
    tags = client_for(cfg).get_run(outcome.run_id).data.tags
    assert (tags["criterion"], tags["control"], tags["stage_counts"]) == ("uniform", "uniform", "1/1/0")


def test_inverted_and_same_stage_controls_follow_the_criterions_scores(store, tmp_path):
    from lottery_core import criteria, models
    from lottery_core.criteria import controls

    criterion_plan = plan_of(store["ticket_cfg"], store["ticket"].run_id, tmp_path)
    net = models.build("resnet20", num_classes=4)
    inverted_cfg = tiny(store["tmp"], store["dense_cfg"].data.root, "pruning.control=inverted", *QUICK)
    inverted = plan_of(inverted_cfg, run(inverted_cfg).run_id, tmp_path)
    assert inverted["scores"] == criterion_plan["scores"]          # the same scores, the other end
    expected = criteria.select_blocks(controls.inverted(criterion_plan["scores"]), 2, model=net).removed
    assert inverted["removed"] == expected
    highest = sorted(criterion_plan["scores"], key=criterion_plan["scores"].get)[-1]
    assert highest in inverted["removed"] and highest not in criterion_plan["removed"]
    same_cfg = tiny(store["tmp"], store["dense_cfg"].data.root, "pruning.control=same_stage_random", *QUICK)
    same = plan_of(same_cfg, run(same_cfg).run_id, tmp_path)
    counts = controls.stage_counts(criterion_plan["removed"], net)
    assert same["stage_counts"] == {str(stage): n for stage, n in counts.items()}   # JSON keys are strings
    assert same["scores"] == criterion_plan["scores"]


def test_reinit_of_a_rewind_ticket_has_its_architecture_and_trains_all_n_epochs(store, tmp_path):
    rewind_cfg = tiny(store["tmp"], store["dense_cfg"].data.root, "pipeline=ticket_rewind",
                      "pruning.rewind_epoch=1", "pruning.criterion=magnitude")
    rewind = run(rewind_cfg)                                       # reused when the test above ran it
    reinit_cfg = tiny(store["tmp"], store["dense_cfg"].data.root, "pipeline=reinit",
                      "pruning.reinit_of=ticket_rewind", "pruning.criterion=magnitude")
    reinit = run(reinit_cfg)
    # planned on the trained dense θ_n, like the rewind ticket (not at θ_0)
    assert plan_of(reinit_cfg, reinit.run_id, tmp_path)["removed"] == \
        plan_of(rewind_cfg, rewind.run_id, tmp_path)["removed"]
    history = client_for(reinit_cfg).get_metric_history(reinit.run_id, "epoch_test_acc")
    assert [m.step for m in history] == [0, 1]                     # n epochs from epoch 0, not n − i
    tags = client_for(reinit_cfg).get_run(reinit.run_id).data.tags
    assert tags["reinit_of"] == "ticket_rewind" and tags["comparison"].startswith("ok: dense run")


def test_the_data_fingerprint_is_recorded_and_other_data_is_refused(store):
    from lottery_core.data import load_data

    tags = client_for(store["dense_cfg"]).get_run(store["dense"].run_id).data.tags
    assert tags["data_fingerprint"] == load_data("folder", store["dense_cfg"].data.root).fingerprint
    from lottery_core.train.precision import precision

    assert tags["device_kind"] == "cpu" and tags["precision"] == precision("cpu")   # bf16 where the CPU has it
    wrong = replace(store["dense_cfg"], data=replace(store["dense_cfg"].data, fingerprint="blake2b-0000000000000000"))
    with pytest.raises(LotteryError, match=r"has fingerprint blake2b-[0-9a-f]{16}, but this run's config records "
                                           r"data.fingerprint=blake2b-0000000000000000"):
        run(wrong)


def test_a_reused_run_joins_the_sweep_that_reused_it(store):
    again = run(store["ticket_cfg"], tags={"sweep": "later", "in_sweep.later": "true"})
    assert again.status == "existing"
    tags = client_for(store["ticket_cfg"]).get_run(again.run_id).data.tags
    assert tags["in_sweep.later"] == "true" and tags.get("sweep") != "later"  # the creating sweep stays
