"""pipelines.logged_model: a ticket logged as an MLflow model comes back physically shallower and
predicts identically; a run logs it (and its ONNX file) when asked, without changing its identity."""
import os

import mlflow
import mlflow.pytorch
import onnx
import pytest
import torch
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from lottery_core import criteria, models, surgery
from pipelines.config import load_config
from pipelines.context import with_fingerprint
from pipelines.logged_model import log_network, tracking_store
from pipelines.runner import run
from pipelines.tracking import tracking_uri
from tests.helpers import randomize_bn_stats

pytestmark = pytest.mark.slow   # runs trained and logged as MLflow models


@pytest.fixture(scope="module")
def ran(tmp_path_factory, tiny_folder):
    """A tiny ticket_init run (one epoch) with tracking.log_model and tracking.export_onnx on; its
    SQLite store serves the other tests too (a new store costs seconds of migrations)."""
    tmp = tmp_path_factory.mktemp("logged")
    settings = {"pipeline": "ticket_init", "model": {"name": "resnet20"},
                "data": {"name": "folder", "root": str(tiny_folder)},
                "training": {"epochs": 1, "batch_size": 16, "keep_epochs": [0]},
                "pruning": {"criterion": "snip", "p": 2, "images_per_class": 2},
                "evaluation": {"corruptions": [], "attacks": [], "cka_images": 0},
                "tracking": {"results_dir": str(tmp / "runs"), "experiment": "test"}}
    cfg = with_fingerprint(load_config(settings, ["tracking.log_model=true", "tracking.export_onnx=true"]))
    plain = with_fingerprint(load_config(settings))
    outcome = run(cfg)
    client = MlflowClient(tracking_uri(cfg))
    return {"cfg": cfg, "plain": plain, "outcome": outcome, "client": client, "tmp": tmp,
            "experiment": client.get_experiment_by_name("test").experiment_id}


def test_a_logged_ticket_reloads_shallower_and_predicts_identically(ran):
    client, experiment = ran["client"], ran["experiment"]
    run_id = client.create_run(experiment).info.run_id
    torch.manual_seed(0)
    dense = models.build("resnet20", num_classes=10)
    randomize_bn_stats(dense)
    plan = criteria.Plan(criterion="uniform", p=2, removed=criteria.uniform_blocks(dense, 2), scores={})
    ticket = surgery.remove_blocks(dense, plan.removed)
    info = log_network(client, run_id, experiment, ticket, name="ticket_init", plan=plan.to_dict(),
                       mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), tags={"identity": "abc"})
    assert ticket.training                                   # logged from a copy
    with tracking_store(client.tracking_uri):
        loaded = mlflow.pytorch.load_model(info.model_uri)
    assert type(loaded) is type(ticket) and not loaded.training
    assert len(surgery.residual_blocks(loaded)) == 7 < len(surgery.residual_blocks(dense)) == 9
    assert loaded.removed_blocks == tuple(plan.removed)
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(images), ticket.eval()(images))
    record = info.metadata["block_ticket"]
    assert (record["removed_blocks"], record["blocks"], record["dense_blocks"]) == (plan.removed, 7, 9)
    assert record["plan"]["removed"] == plan.removed and record["input"]["mean"] == [0.5, 0.5, 0.5]
    logged = client.get_logged_model(info.model_id)
    assert (logged.experiment_id, logged.source_run_id, logged.status) == (experiment, run_id, LoggedModelStatus.READY)
    assert logged.params["removed_blocks"] == ",".join(plan.removed) and logged.tags["identity"] == "abc"
    assert [o.model_id for o in client.get_run(run_id).outputs.model_outputs] == [info.model_id]


def test_a_run_logs_its_ticket_and_onnx_file_when_asked_and_keeps_its_identity(ran):
    cfg, client, run_id = ran["cfg"], ran["client"], ran["outcome"].run_id
    assert cfg.identity() == ran["plain"].identity()        # output-only settings
    tags = client.get_run(run_id).data.tags
    removed = tuple(tags["removed_blocks"].split(","))
    with tracking_store(tracking_uri(cfg)):
        loaded = mlflow.pytorch.load_model(tags["logged_model"])
    assert loaded.removed_blocks == removed and len(surgery.residual_blocks(loaded)) == 9 - 2
    assert tags["onnx"] == "onnx/ticket_init.onnx"
    graph = onnx.load(client.download_artifacts(run_id, tags["onnx"], str(ran["tmp"])))
    assert {p.key: p.value for p in graph.metadata_props}["removed_blocks"] == ",".join(removed)
    assert len(client.get_metric_history(run_id, "epoch_test_acc")) == 1   # logging the model copies no metric


def test_tracking_store_restores_the_uri_and_the_variable(monkeypatch, tmp_path):
    for variable in (None, f"sqlite:///{tmp_path / 'elsewhere.db'}"):
        if variable is None:
            monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        else:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", variable)
        before = mlflow.get_tracking_uri()
        with tracking_store(f"sqlite:///{tmp_path / 'store.db'}"):
            assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'store.db'}"
        assert os.environ.get("MLFLOW_TRACKING_URI") == variable and mlflow.get_tracking_uri() == before


def test_a_network_that_cannot_be_exported_leaves_a_tag_and_the_run_goes_on(ran, capsys):
    from types import SimpleNamespace

    from pipelines.logged_model import log_trained

    tags = {}
    ctx = SimpleNamespace(cfg=SimpleNamespace(pipeline="dense", tracking=SimpleNamespace(log_model=False, export_onnx=True)),
                          data=SimpleNamespace(test_images=torch.zeros(1, 3, 32, 32)), client=ran["client"],
                          run_id="unused", set_tags=tags.update)
    log_trained(ctx, SimpleNamespace(model=torch.nn.Linear(5, 2), plan=None))
    assert tags["onnx"].startswith("failed: Linear does not take input (batch, 3, 32, 32): ")
    assert "warning: ONNX export skipped: Linear does not take input" in capsys.readouterr().err
