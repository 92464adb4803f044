"""The comparison of a ticket that finished before its dense run, made once both have finished.

A ticket planned at θ_0 (ticket_init, filter_ticket) needs nothing from a trained dense network, so
a sweep trains it beside its dense baseline (`tune.sweep_file.Sweep.phases`). When it finishes
first, its evaluation finds no dense run and tags `comparison: missing: ...`. After each phase the
sweep's driver calls `fill_comparisons`: every such run whose dense run has since finished gets the
keys of `pipelines.comparison.compare` (Δ accuracy, reductions, speed-ups, robustness deltas) from
both runs' final metrics, `cka_vs_dense` from the penultimate features both runs saved on the
same CKA images (`layout.CKA_FEATURES`; no model and no data needed), and the tag
`comparison: ok: dense run <id> (filled in after both finished)`. A run without those features
(a dense run made by an older version) gets the tag `cka: not measured: ...` instead.
"""
import tempfile
from pathlib import Path

import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from lottery_core.similarity import linear_cka
from pipelines import layout
from pipelines.comparison import compare
from pipelines.tracking import experiment_runs, finished_run

FILLED = "(filled in after both finished)"


def fill_comparisons(uri: str, experiment: str, sweep: str, xi: float) -> list[str]:
    """Compare every FINISHED ticket of `sweep` tagged `comparison: missing` with its dense run, when
    that has finished now. `xi`: the winning margin, accuracy points. Returns the run ids filled."""
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    filled = []
    for run in experiment_runs(client, found.experiment_id, sweep):
        tags = run.data.tags
        if run.info.status != "FINISHED" or not tags.get("comparison", "").startswith("missing"):
            continue
        dense = finished_run(client, found.experiment_id, tags.get("dense_identity", ""))
        if dense is None:
            continue
        values = compare(run.data.metrics, dense.data.metrics, xi)
        if float(run.data.params.get("evaluation.cka_images", "0") or 0) > 0 and "cka" not in tags:
            cka = saved_cka(client, run.info.run_id, dense.info.run_id)
            if cka is None:
                client.set_tag(run.info.run_id, "cka", f"not measured: a run lacks {layout.CKA_FEATURES}")
            else:
                values["cka_vs_dense"] = cka
        now = int(dense.info.end_time or 0)
        client.log_batch(run.info.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])
        client.set_tag(run.info.run_id, "comparison", f"ok: dense run {dense.info.run_id} {FILLED}")
        filled.append(run.info.run_id)
    return filled


def saved_cka(client: MlflowClient, run_id: str, dense_run_id: str) -> float | None:
    """Linear CKA of the penultimate features two runs saved on the same CKA images, or None when
    either run has none (or they differ in size)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            loaded = []
            for i, run in enumerate((run_id, dense_run_id)):
                folder = Path(tmp) / str(i)
                folder.mkdir()
                file = client.download_artifacts(run, layout.CKA_FEATURES, str(folder))
                loaded.append(torch.load(file, map_location="cpu", weights_only=True))
            mine, theirs = loaded
        except Exception:  # no such artifact (MLflow raises its own errors), or an unreadable file
            return None
    return linear_cka(mine, theirs) if mine.shape[0] == theirs.shape[0] else None
