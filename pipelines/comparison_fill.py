"""The comparison of a ticket that finished before its dense run, made once both have finished.

A ticket planned at θ_0 (ticket_init, filter_ticket) needs nothing from a trained dense network, so
a sweep trains it beside its dense baseline (`tune.sweep_file.Sweep.phases`). When it finishes
first, its evaluation finds no dense run and tags `comparison: missing: ...`. After each phase the
sweep's driver calls `fill_comparisons`: every such run whose dense run has since finished gets the
keys of `pipelines.comparison.compare` (Δ accuracy, reductions, speed-ups, robustness deltas) from
both runs' final metrics, and the tag `comparison: ok: dense run <id> (filled in after both
finished)`. The CKA with the dense network needs both models and the data: it is tagged
`cka: not measured: ...` instead (`lottery run` of the ticket after its dense run measures it).
"""
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

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
        now = int(dense.info.end_time or 0)
        client.log_batch(run.info.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])
        client.set_tag(run.info.run_id, "comparison", f"ok: dense run {dense.info.run_id} {FILLED}")
        if "cka" not in tags and float(run.data.params.get("evaluation.cka_images", "0") or 0) > 0:
            client.set_tag(run.info.run_id, "cka", "not measured: the ticket finished before its dense run")
        filled.append(run.info.run_id)
    return filled
