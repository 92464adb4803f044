"""Finished runs of an experiment (or of one sweep) as a table, each ticket paired with its dense run."""
import pandas as pd
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from pipelines.comparison import compare
from pipelines.latency_settings import CONDITION_TAGS, NETWORK_TAGS
from pipelines.tracking import experiment_runs

TAGS = ("pipeline", "model", "dataset", "criterion", "control", "draw", "reinit_of", "p", "rewind_epoch", "seed", "identity",
        "dense_identity", "sweep", "stage_counts", "planned_stage_counts", "iterative_mode", "blocks_per_round",
        "blocks_removed", *CONDITION_TAGS, *NETWORK_TAGS)
# params a configuration is told apart by, as columns (param -> column, default for runs without it)
PARAMS = {"pruning.filter_match": ("filter_match", "")}
# what an iterative run logs per round (step = round): `round_<x>` (pipelines.experiments.iterative)
ROUND_METRICS = ("blocks_removed", "macs_fraction", "test_acc", "val_acc")


def load_runs(tracking_uri: str, experiment: str, sweep: str | None = None) -> pd.DataFrame:
    """One row per FINISHED run: tags as columns, final metrics as columns (NaN when not measured)."""
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise LotteryError(f"no MLflow experiment {experiment!r} at {tracking_uri}")
    runs = experiment_runs(client, exp.experiment_id, sweep)
    runs = [r for r in runs if "pipeline" in r.data.tags]  # sweep parents carry no pipeline tag
    finished = [r for r in runs if r.info.status == "FINISHED"]
    if not finished:
        states = pd.Series([r.info.status for r in runs]).value_counts().to_dict()
        where = f"sweep {sweep!r} of experiment {experiment!r}" if sweep else f"experiment {experiment!r}"
        raise LotteryError(f"{where} has no finished runs ({', '.join(f'{n} {s}' for s, n in states.items()) or 'no runs at all'})")
    rows = []
    for r in finished:
        row = {t: r.data.tags.get(t) for t in TAGS}
        row["run_id"] = r.info.run_id
        row.update({column: r.data.params.get(param, default) if r.data.tags.get("pipeline") == "filter_ticket"
                    else default for param, (column, default) in PARAMS.items()})
        row.update(r.data.metrics)
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in ("p", "rewind_epoch", "seed", "draw"):
        df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype(int)
    df["control"] = df["control"].fillna("none")
    df["reinit_of"] = df["reinit_of"].fillna("")
    df["planned_stage_counts"] = df["planned_stage_counts"].fillna("")   # runs from before the setting
    # iterative runs: how they went (mode, k), so that runs of another k are another configuration
    df["iterative"] = [f"{mode} k={k}" if pipeline == "iterative" else ""
                       for pipeline, mode, k in zip(df.pipeline, df.iterative_mode, df.blocks_per_round, strict=True)]
    return df


def load_rounds(tracking_uri: str, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per round of every iterative run in `runs`: its run's configuration columns and
    the round's `ROUND_METRICS` (accuracies in %, NaN for a round that was not trained)."""
    client = MlflowClient(tracking_uri)
    rows = []
    for _, run in runs[runs.pipeline == "iterative"].iterrows():
        history: dict[int, dict] = {}
        for key in ROUND_METRICS:
            for m in client.get_metric_history(run.run_id, f"round_{key}"):
                history.setdefault(m.step, {})[key] = m.value
        for step, values in sorted(history.items()):
            rows.append({"run_id": run.run_id, "model": run.model, "criterion": run.criterion,
                         "iterative": run.iterative, "rewind_epoch": run.rewind_epoch, "seed": run.seed,
                         "dense_identity": run.dense_identity, "round": step, **values})
    columns = ["run_id", "model", "criterion", "iterative", "rewind_epoch", "seed", "dense_identity", "round",
               *ROUND_METRICS]
    return pd.DataFrame(rows, columns=columns)


def paired(df: pd.DataFrame, xi: float = 0.0) -> pd.DataFrame:
    """Every ticket run with its dense run's accuracy (`dense_acc`) and `pipelines.comparison.compare`
    of the two (Δ accuracy, winning with the report's ξ, reductions, speed-ups, robustness Δs).

    `dense_missing` holds the reason when no finished dense run has the ticket's dense identity;
    its comparisons are then NaN, and the tables say "missing", never 0.
    """
    dense = df[df.pipeline == "dense"].drop_duplicates("identity").set_index("identity")
    tickets = df[df.pipeline != "dense"].copy()
    out = []
    for _, t in tickets.iterrows():
        row = t.to_dict()
        if t.dense_identity not in dense.index:
            row["dense_missing"] = f"no finished dense run with identity {t.dense_identity}"
        else:
            d = dense.loc[t.dense_identity]
            row.update(dense_missing="", dense_acc=d["acc"], **compare(row, d.to_dict(), xi))
        out.append(row)
    return pd.DataFrame(out)
