"""One meaning per metric key (`pipelines.run_schema`): a key is a history (per epoch or per round) or a
final value, never both. A real dense run and ticket are checked key by key as MLflow holds them; the
ticket's training-time reduction and speed-up, as the MLflow UI shows them, agree; records of runs
logged before the rule are imported under today's keys."""
import json

import pytest
from mlflow.tracking import MlflowClient

from pipelines import run_schema
from pipelines.evaluation import metric_problem
from pipelines.records import current_metrics, import_records

# `speedup` and `train_time_reduction_pct` come from the same SGD times (mean per epoch and total):
# with equal epochs 100 (1 - 1/speedup) equals the reduction up to float64 rounding of the stored values
AGREEMENT_POINTS = 1e-6


def check_one_meaning(client: MlflowClient, run_id: str) -> dict[str, list]:
    """Every metric key of the run, checked: declared in `run_schema`, and logged as its entry says, a
    history (steps of epochs or rounds, each once) or one final value at step 0. Returns
    {key: [(step, value)] sorted by step}."""
    found = {}
    for key in client.get_run(run_id).data.metrics:
        kind = run_schema.metric_step(key)
        assert kind is not None, f"{key} is not declared in pipelines.run_schema"
        points = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        steps = [step for step, _ in points]
        if kind == "0":
            assert steps == [0], f"final value {key} logged at steps {steps}: a history under a final value's name"
        else:
            assert len(set(steps)) == len(steps), f"{key}: a step logged twice ({steps}), a final value beside its history"
        found[key] = points
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_folder):
    """A dense run and a SNIP ticket at initialization (2 epochs, a validation split, every evaluation
    on a few images): {"client", "dense", "ticket"} (run ids)."""
    from pipelines.config import load_config
    from pipelines.context import with_fingerprint
    from pipelines.runner import run
    from pipelines.tracking import tracking_uri

    tmp = tmp_path_factory.mktemp("metric_keys")
    source = {"model": {"name": "resnet20"}, "device": "cpu", "threads": 1,
              "data": {"name": "folder", "root": str(tiny_folder), "val_size": 8},
              "training": {"epochs": 2, "batch_size": 8, "lr": 0.05, "keep_epochs": [0], "amp": False},
              "pruning": {"criterion": "snip", "p": 1, "images_per_class": 2},
              "evaluation": {"corruptions": ["gaussian_noise"], "severities": [1], "corruption_images": 8,
                             "attacks": ["fgsm"], "epsilons": [0.03], "attack_images": 8, "cka_images": 8},
              "tracking": {"results_dir": str(tmp / "runs"), "experiment": "metric_keys"}}
    out = {}
    for pipeline in ("dense", "ticket_init"):
        cfg = with_fingerprint(load_config(source, [f"pipeline={pipeline}"]))
        outcome = run(cfg)
        assert outcome.status == "finished"
        out["client"], out[pipeline.removesuffix("_init")] = MlflowClient(tracking_uri(cfg)), outcome.run_id
    return out


def test_the_schema_declares_every_metric_name_as_one_kind():
    epoch = {e.name for e in run_schema.EPOCH_METRICS}
    finals = {e.name for e in (*run_schema.FINAL_METRICS, *run_schema.ITERATIVE_METRICS) if e.step == "0"}
    assert not epoch & finals
    for entry in run_schema.entries("metric"):
        if "<" not in entry.name:
            assert run_schema.metric_step(entry.name) == entry.step, entry.name
    # the loop's history keys are logged under declared per-epoch names, `epoch_<x>` but for the curves
    for key, logged in run_schema.EPOCH_KEYS.items():
        assert run_schema.metric_step(logged) == "epoch", key
        assert logged.startswith("epoch_") or logged in ("lr", "train_loss", "train_acc"), logged
    assert not any(name.startswith("epoch_") for name in finals)
    assert run_schema.epoch_metrics({"epoch": 3, "test_acc": 40.0, "train_loss": 1.5, "steps": 4, "done": True,
                                     "note": "x", "new_thing": 2}) == {
        "epoch_test_acc": 40.0, "train_loss": 1.5, "epoch_steps": 4.0, "epoch_new_thing": 2.0}


@pytest.mark.slow
def test_no_key_a_real_run_logs_is_both_a_history_and_a_final_value(runs):
    client = runs["client"]
    dense, ticket = (check_one_meaning(client, runs[name]) for name in ("dense", "ticket"))
    # every per-epoch key of the schema was logged, for both epochs (4 classes: no top-5)
    expected = {e.name for e in run_schema.EPOCH_METRICS} - {"epoch_test_top5", "epoch_val_top5"}
    for logged in (dense, ticket):
        assert expected <= set(logged)
        assert all([step for step, _ in logged[key]] == [0, 1] for key in expected)
        # the final values beside them: the primary accuracy and the times, each once
        assert {"acc", "val_acc", "train_time_s", "mean_epoch_train_time_s", "wall_time_s"} <= set(logged)
        assert {run_schema.metric_step(key) for key in logged} == {"epoch", "attempt", "0"}
        # trained in one go: one attempt, from epoch 0, nothing trained twice
        assert logged["attempt_first_epoch"] == [(0, 0.0)] and logged["attempt_epochs_retrained"] == [(0, 0.0)]
    assert {"delta_acc", "speedup", "train_time_reduction_pct", "cka_vs_dense"} <= set(ticket)
    for legacy in run_schema.LEGACY_METRICS:   # no legacy key but the two that are final values now
        assert legacy not in dense or legacy in ("val_acc", "train_time_s")


@pytest.mark.slow
def test_the_uis_train_time_reduction_and_speedup_of_a_ticket_agree(runs):
    """What MLflow shows for a run (`get_run().data.metrics`, each key's value at its highest step):
    `train_time_s` is the total of the epochs' SGD times, and the ticket's reduction and speed-up say
    the same (as many epochs as its dense run: 100 (1 - 1/speedup) = reduction)."""
    client = runs["client"]
    ui = {name: client.get_run(runs[name]).data.metrics for name in ("dense", "ticket")}
    for name, shown in ui.items():
        epochs = [m.value for m in client.get_metric_history(runs[name], "epoch_train_time_s")]
        assert len(epochs) == shown["epochs_trained"] == 2
        assert shown["train_time_s"] == pytest.approx(sum(epochs), rel=1e-12)
        assert shown["mean_epoch_train_time_s"] == pytest.approx(sum(epochs) / 2, rel=1e-12)
    reduction, speedup = ui["ticket"]["train_time_reduction_pct"], ui["ticket"]["speedup"]
    assert reduction == pytest.approx(100 * (1 - ui["ticket"]["train_time_s"] / ui["dense"]["train_time_s"]))
    assert (speedup > 1) == (reduction > 0)
    assert 100 * (1 - 1 / speedup) == pytest.approx(reduction, abs=AGREEMENT_POINTS)


def legacy_record(key: str, metrics: dict, pipeline: str = "dense") -> dict:
    """A record as `lottery records export` wrote it before the rule (format 1)."""
    return {"format_version": 1, "key": key, "parent": None, "experiment": "legacy", "run_name": f"{pipeline} {key}",
            "status": "FINISHED", "start_time": 900, "end_time": 1200, "params": {"seed": "0"},
            "tags": {"identity": key, "pipeline": pipeline, "seed": "0"}, "metrics": metrics, "artifacts": {}}


# a dense run of 2 epochs, and a ticket rewound to θ_1 (it trained epoch 1 only), as they were logged:
# val_acc, train_time_s and epoch_time_s per epoch and once more as final values at step 0, after training
LEGACY_DENSE = {"train_loss": [[0, 1000, 2.0], [1, 1010, 1.5]], "lr": [[0, 1000, 0.05], [1, 1010, 0.05]],
                "test_acc": [[0, 1001, 30.0], [1, 1011, 40.0]], "test_loss": [[0, 1001, 1.9], [1, 1011, 1.4]],
                "val_acc": [[0, 1001, 28.0], [0, 1100, 39.0], [1, 1011, 38.0]],
                "train_time_s": [[0, 1000, 3.0], [0, 1100, 5.0], [1, 1010, 2.0]],
                "epoch_time_s": [[0, 1002, 3.5], [0, 1100, 2.5], [1, 1012, 2.5]],
                "eval_time_s": [[0, 1002, 0.4], [1, 1012, 0.4]], "checkpoint_time_s": [[0, 1002, 0.1], [1, 1012, 0.1]],
                "images_per_s": [[0, 1000, 10.0], [1, 1010, 15.0]], "steps": [[0, 1000, 4.0], [1, 1010, 4.0]],
                "acc": [[0, 1100, 41.0]], "epochs_trained": [[0, 1100, 2.0]], "wall_time_s": [[0, 1100, 6.0]]}
LEGACY_REWOUND = {"train_loss": [[1, 1010, 1.2]], "test_acc": [[1, 1011, 42.0]],
                  "val_acc": [[0, 1100, 40.5], [1, 1011, 40.0]], "train_time_s": [[0, 1100, 1.5], [1, 1010, 1.5]],
                  "epoch_time_s": [[0, 1100, 1.5], [1, 1012, 2.0]], "steps": [[1, 1010, 4.0]],
                  "acc": [[0, 1100, 43.0]], "speedup": [[0, 1100, 0.9]]}


def test_records_import_maps_legacy_keys_to_a_history_and_a_final_value(tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    for key, metrics, pipeline in (("dense0000000", LEGACY_DENSE, "dense"),
                                   ("rewound00000", LEGACY_REWOUND, "ticket_rewind")):
        (folder / f"{key}.json").write_text(json.dumps(legacy_record(key, metrics, pipeline)))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert import_records(folder, uri).imported == 2
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("legacy").experiment_id
    imported = {r.data.tags["identity"]: r for r in client.search_runs([experiment])}
    dense = check_one_meaning(client, imported["dense0000000"].info.run_id)
    assert dense == {
        "train_loss": [(0, 2.0), (1, 1.5)], "lr": [(0, 0.05), (1, 0.05)],
        "epoch_test_acc": [(0, 30.0), (1, 40.0)], "epoch_test_loss": [(0, 1.9), (1, 1.4)],
        "epoch_val_acc": [(0, 28.0), (1, 38.0)], "val_acc": [(0, 39.0)],
        "epoch_train_time_s": [(0, 3.0), (1, 2.0)], "train_time_s": [(0, 5.0)],
        "epoch_wall_time_s": [(0, 3.5), (1, 2.5)], "mean_epoch_train_time_s": [(0, 2.5)],
        "epoch_eval_time_s": [(0, 0.4), (1, 0.4)], "epoch_checkpoint_time_s": [(0, 0.1), (1, 0.1)],
        "epoch_images_per_s": [(0, 10.0), (1, 15.0)], "epoch_steps": [(0, 4.0), (1, 4.0)],
        "acc": [(0, 41.0)], "epochs_trained": [(0, 2.0)], "wall_time_s": [(0, 6.0)]}
    rewound = check_one_meaning(client, imported["rewound00000"].info.run_id)
    assert (rewound["epoch_train_time_s"], rewound["train_time_s"]) == ([(1, 1.5)], [(0, 1.5)])
    assert (rewound["epoch_val_acc"], rewound["val_acc"]) == ([(1, 40.0)], [(0, 40.5)])
    assert (rewound["epoch_wall_time_s"], rewound["mean_epoch_train_time_s"]) == ([(1, 2.0)], [(0, 1.5)])
    # MLflow's value of each key (the UI's) is now the final one
    shown = imported["dense0000000"].data.metrics
    assert (shown["train_time_s"], shown["val_acc"], shown["mean_epoch_train_time_s"]) == (5.0, 39.0, 2.5)


def test_records_of_todays_runs_import_unchanged():
    """No legacy-only key: nothing renamed, even a final value logged twice at step 0 (a round run
    whose accuracies came after its cost)."""
    today = {"val_acc": [[0, 5, 1.0], [0, 9, 1.0]], "train_time_s": [[0, 9, 4.0]], "epoch_test_acc": [[0, 1, 2.0]],
             "epoch_train_time_s": [[0, 1, 2.0], [1, 2, 2.0]], "acc": [[0, 9, 3.0]]}
    assert current_metrics(today) is today


def test_an_optuna_metric_under_a_legacy_name_says_its_new_names():
    assert metric_problem("epoch_time_s", "ticket_init", 0) == (
        "'epoch_time_s' is no final metric: the per-epoch one is now 'epoch_wall_time_s' and the final one "
        "'mean_epoch_train_time_s'")
    assert metric_problem("test_acc", "ticket_init", 0) == "'test_acc' is no final metric: the per-epoch one is now 'epoch_test_acc'"
    assert metric_problem("mean_epoch_train_time_s", "dense", 0) is None


def test_the_optuna_search_hears_final_results_only():
    """An epoch's result to Ray has `epoch_val_acc`, never the search's `val_acc`: Ray's OptunaSearch
    fails on it (single objective), the sweep's search waits for the trial's final result."""
    from ray.tune.search.optuna import OptunaSearch

    from tune.search import FinalResultOptunaSearch

    epoch_result = {"epoch_val_acc": 50.0, "epoch": 0.0, "training_iteration": 1}
    with pytest.raises(KeyError):
        OptunaSearch(metric="val_acc", mode="max").on_trial_result("t1", epoch_result)
    assert FinalResultOptunaSearch(metric="val_acc", mode="max").on_trial_result("t1", epoch_result) is None
