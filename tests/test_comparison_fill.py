"""A ticket that finished before its dense run gets its comparison once both have finished
(`pipelines.comparison_fill`), from the two runs' final metrics and saved CKA features."""
import torch
from mlflow.tracking import MlflowClient

from lottery_core.similarity import linear_cka
from pipelines import layout
from pipelines.comparison_fill import FILLED, fill_comparisons


def _run(client, experiment_id, tags, metrics, params=None, features=None, tmp=None, finished=True):
    run = client.create_run(experiment_id, tags=tags)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    for key, value in (params or {}).items():
        client.log_param(run.info.run_id, key, value)
    if features is not None:   # as the evaluation stage saves them
        folder, _, name = layout.CKA_FEATURES.rpartition("/")
        (tmp / run.info.run_id).mkdir()
        torch.save(features, tmp / run.info.run_id / name)
        client.log_artifact(run.info.run_id, str(tmp / run.info.run_id / name), folder)
    if finished:
        client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def test_a_ticket_that_finished_first_is_compared_once_its_dense_run_has_finished(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("fill", artifact_location=str(tmp_path / "artifacts"))
    generator = torch.Generator().manual_seed(0)
    dense_features, ticket_features = torch.randn(50, 8, generator=generator), torch.randn(50, 8, generator=generator)
    ticket = _run(client, experiment_id, {"sweep": "s", "identity": "t1", "dense_identity": "d1",
                                          "comparison": "missing: no finished dense run with identity d1"},
                  {"acc": 80.0, "macs": 25.0}, {"evaluation.cka_images": "50"}, ticket_features, tmp_path)
    assert fill_comparisons(uri, "fill", "s", xi=0.5) == []     # the dense run has not finished yet
    dense = _run(client, experiment_id, {"sweep": "s", "identity": "d1", "comparison": "self"},
                 {"acc": 80.4, "macs": 100.0}, {"evaluation.cka_images": "50"}, dense_features, tmp_path)
    assert fill_comparisons(uri, "fill", "s", xi=0.5) == [ticket]
    filled = client.get_run(ticket).data
    assert filled.tags["comparison"] == f"ok: dense run {dense} {FILLED}"
    assert abs(filled.metrics["delta_acc"] - (-0.4)) < 1e-9 and filled.metrics["winning"] == 1.0   # 80 + 0.5 >= 80.4
    assert filled.metrics["macs_reduction_pct"] == 75.0 and filled.metrics["ideal_speedup"] == 4.0
    assert abs(filled.metrics["cka_vs_dense"] - linear_cka(ticket_features, dense_features)) < 1e-9
    assert fill_comparisons(uri, "fill", "s", xi=0.5) == []     # once only


def test_a_dense_run_without_saved_features_leaves_cka_unmeasured_with_the_reason(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("fill", artifact_location=str(tmp_path / "artifacts"))
    ticket = _run(client, experiment_id, {"sweep": "s", "identity": "t1", "dense_identity": "d1",
                                          "comparison": "missing: ..."},
                  {"acc": 70.0}, {"evaluation.cka_images": "50"}, torch.randn(50, 8), tmp_path)
    _run(client, experiment_id, {"sweep": "s", "identity": "d1"}, {"acc": 71.0})
    assert fill_comparisons(uri, "fill", "s", xi=0.0) == [ticket]
    data = client.get_run(ticket).data
    assert "cka_vs_dense" not in data.metrics and data.metrics["delta_acc"] == -1.0
    assert data.tags["cka"] == f"not measured: a run lacks {layout.CKA_FEATURES}"
