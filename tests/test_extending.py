"""Extending the project through its registries alone (README, "Extending"): a toy criterion, a toy
control and a toy pipeline, each one function plus one registration, run end to end by `lottery
run`'s runner on tiny data, with no other file touched. The answer is known: the criterion scores
blocks by their forward position (the earliest go), the control keeps its per-stage counts but takes
each stage's last removable blocks instead."""
import json

import pytest
from mlflow.tracking import MlflowClient

from lottery_core import models, surgery
from lottery_core.criteria import control_registry, controls, registry
from lottery_core.errors import LotteryError
from pipelines.config import load_config
from pipelines.config import pipeline_registry as pipelines_registry
from pipelines.context import with_fingerprint
from pipelines.tracking import tracking_uri

pytestmark = pytest.mark.slow   # a pipeline trained and tracked

MIN_BLOCKS = 1   # resnet20's stage 1 may then lose two of its three blocks


def by_position(model, blocks, batches):
    """Toy block-level criterion: a block's score is its forward position (the earliest score lowest)."""
    return {name: float(i) for i, name in enumerate(blocks)}


def last_of_each_stage(removed, model, seed, min_blocks_per_stage):
    """Toy "choice" control: the same count per stage as `removed`, each stage's LAST removable blocks."""
    counts = controls.stage_counts(removed, model)
    by_stage = surgery.removable_by_stage(model, min_blocks_per_stage)
    chosen = {n for stage, names in by_stage.items() for n in names[len(names) - counts[stage]:]}
    return [n for names in by_stage.values() for n in names if n in chosen]


def plan_and_train(ctx):
    """Toy pipeline: plan at θ_0 with the configured criterion and control, remove, train."""
    from pipelines import steps
    from pipelines.experiments.base import Trained

    theta_0 = steps.initial_model(ctx)
    plan = steps.plan_blocks(ctx, theta_0)
    ticket = steps.remove(ctx, theta_0, plan)
    return Trained(ticket, steps.train_model(ctx, ticket), plan=plan)


@pytest.fixture
def toys(monkeypatch):
    """The three registrations, undone after the test."""
    monkeypatch.setattr(registry, "_CRITERIA", dict(registry._CRITERIA))
    monkeypatch.setattr(control_registry, "_CONTROLS", dict(control_registry._CONTROLS))
    monkeypatch.setattr(pipelines_registry, "_PIPELINES", dict(pipelines_registry._PIPELINES))
    registry.register("by_position", by_position, level="block", needs_data=False, bn_mode=None,
                      summary="toy: forward position")
    control_registry.register_control("last_of_each_stage", last_of_each_stage, acts_on="choice", stage_counts=True,
                                      summary="toy: each stage's last removable blocks")
    pipelines_registry.register_pipeline(pipelines_registry.Pipeline(
        "plan_and_train", plan_and_train, "toy: plan at θ_0, train", controls=True,
        label=lambda p: ["toy"], tags=lambda p: {"toy": "yes"}))


def config(tmp_path, tiny_folder, *overrides):
    return with_fingerprint(load_config({
        "pipeline": "plan_and_train", "model": {"name": "resnet20"},
        "data": {"name": "folder", "root": str(tiny_folder)},
        "training": {"epochs": 1, "batch_size": 16, "lr": 0.05},
        "pruning": {"criterion": "by_position", "p": 2, "min_blocks_per_stage": MIN_BLOCKS, "images_per_class": 2},
        "evaluation": {"corruptions": [], "attacks": [], "cka_images": 0},
        "tracking": {"results_dir": str(tmp_path / "runs"), "experiment": "extending"},
    }, list(overrides)))


def test_a_toy_criterion_control_and_pipeline_run_through_the_registries_alone(toys, tmp_path, tiny_folder):
    from pipelines.runner import run

    model = models.build("resnet20", num_classes=4, seed=0)
    by_stage = surgery.removable_by_stage(model, MIN_BLOCKS)
    earliest = [n for names in by_stage.values() for n in names][:2]          # the criterion's p = 2 lowest
    assert len({surgery.block_stage(model)[n] for n in earliest}) == 1       # both in stage 1 (budget 2)
    latest = by_stage[1][-2:]
    assert latest != earliest                                                # the control changes the answer

    plain = config(tmp_path, tiny_folder)
    controlled = config(tmp_path, tiny_folder, "pruning.control=last_of_each_stage", "pruning.draw=3")
    assert controlled.describe() == "plan_and_train resnet20 by_position p=2 last_of_each_stage toy seed=0"
    assert controlled.read_settings().pruning.draw == 0                      # it draws nothing: draw is unread
    assert len({plain.identity(), controlled.identity()}) == 2

    client = MlflowClient(tracking_uri(plain))
    for cfg, want in ((plain, earliest), (controlled, latest)):
        outcome = run(cfg)
        mlrun = client.get_run(outcome.run_id)
        assert mlrun.info.status == "FINISHED"
        tags = mlrun.data.tags
        assert (tags["pipeline"], tags["criterion"], tags["toy"]) == ("plan_and_train", "by_position", "yes")
        assert tags["control"] == cfg.pruning.control and tags["removed_blocks"] == ",".join(want)
        plan = json.loads(open(client.download_artifacts(outcome.run_id, "plan.json", str(tmp_path))).read())
        assert plan["removed"] == want and plan["control"] == cfg.pruning.control
        assert outcome.metrics["acc"] >= 0 and outcome.metrics["macs"] < models_macs(model)


def test_the_toys_are_validated_like_the_shipped_ones(toys, tmp_path, tiny_folder):
    with pytest.raises(LotteryError, match=r"^pruning.control=last_of_each_stage applies to ticket_init and "
                                           r"ticket_rewind and plan_and_train, not pipeline=reinit"):
        config(tmp_path, tiny_folder, "pipeline=reinit", "pruning.control=last_of_each_stage")
    with pytest.raises(LotteryError, match=r"^unknown pipeline 'plan_and_trian'; choose one of: dense, .*plan_and_train"):
        config(tmp_path, tiny_folder, "pipeline=plan_and_trian")


def test_without_the_registrations_the_names_are_refused(tmp_path, tiny_folder):
    with pytest.raises(LotteryError, match=r"^unknown pipeline 'plan_and_train'"):
        config(tmp_path, tiny_folder)


def models_macs(model) -> int:
    from lottery_core import accounting

    return accounting.count_macs(model, (3, 32, 32))
