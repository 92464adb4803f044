"""The accuracy/MACs Pareto front of block tickets (a search's trials, or any sweep's tickets).

    front(points)            which (accuracy, MACs) points no other point beats on both
    table(runs)              one row per ticket configuration, its mean over seeds, on the front or not
    smallest_winner(pairs)   the configuration of least MACs whose verdict over seeds is *wins*

Accuracy is the validation accuracy (`val_acc`, a held-out split of train: data.val_size) when
every ticket reports it, so that choosing a ticket never reads the test set; else test accuracy,
and the table says which. A front chosen on one seed's validation accuracy is a shortlist, not a
verdict: rerun its candidates with several seeds (the report's intervals) before naming a winner.
"""
import pandas as pd

KEYS = ("pipeline", "criterion", "control", "planned_stage_counts", "p")   # a configuration, seeds apart


def front(points: pd.DataFrame, accuracy: str = "acc", cost: str = "macs") -> pd.Series:
    """A boolean per row: True when no other row has accuracy >= and cost <= with one strict
    (higher accuracy is better, lower cost is better). Equal points are all on the front."""
    acc, macs = points[accuracy].to_numpy(), points[cost].to_numpy()
    on = [not any((acc >= acc[i]) & (macs <= macs[i]) & ((acc > acc[i]) | (macs < macs[i])))
          for i in range(len(points))]
    return pd.Series(on, index=points.index, name="on_front")


def accuracy_column(tickets: pd.DataFrame) -> str:
    """`val_acc` when every ticket run reports it, else `acc` (test accuracy)."""
    if "val_acc" in tickets and len(tickets) and tickets["val_acc"].notna().all():
        return "val_acc"
    return "acc"


def table(runs: pd.DataFrame) -> pd.DataFrame | None:
    """Ticket configurations (mean over seeds) with their MACs, accuracy and `on_front`, sorted by
    MACs; the dense network's row first (never on the front: it is the reference). None without tickets."""
    tickets = runs[(runs.pipeline != "dense") & runs.get("macs", pd.Series(dtype=float)).notna()]
    if not len(tickets) or "macs" not in runs:
        return None
    metric = accuracy_column(tickets)
    keys = [k for k in KEYS if k in tickets]
    grouped = (tickets.fillna({k: "" for k in keys}).groupby(keys, dropna=False)
               .agg(macs=("macs", "mean"), accuracy=(metric, "mean"), seeds=("seed", "nunique")).reset_index())
    grouped["on_front"] = front(grouped, "accuracy")
    grouped = grouped.sort_values("macs").reset_index(drop=True)
    dense = runs[runs.pipeline == "dense"]
    if len(dense) and metric in dense and dense[metric].notna().any():
        row = {"pipeline": "dense", "macs": dense.macs.mean(), "accuracy": dense[metric].mean(),
               "seeds": dense.seed.nunique(), "on_front": False}
        grouped = pd.concat([pd.DataFrame([row]), grouped], ignore_index=True)
    grouped.attrs["accuracy"] = metric
    return grouped


NON_INFERIOR = ("better", "matches", "wins")   # the verdicts of a ticket that is not worse than dense by ξ


def smallest_winner(pairs: pd.DataFrame, xi: float = 0.0, labels: dict | None = None) -> str:
    """One line naming the ticket configuration (control none, criterion not random/uniform) of
    fewest MACs that a declared question finds non-inferior to dense after Holm's adjustment
    (adjusted verdict better, matches or wins: `labels`, from `questions.membership`), with its
    interval and its same-per-stage-count random control when measured; or why none is named.
    Configurations outside every declared question are not named: choosing the best-looking of
    many raw intervals is the selection the adjustment exists to prevent."""
    from pipelines.report import stats
    from pipelines.report.questions import CONFIG_KEYS, per_seed

    if not len(pairs) or "delta_acc" not in pairs:
        return "Smallest winning ticket: none measured (no ticket has a dense run)."
    labels = labels or {}
    have = pairs[(pairs.get("dense_missing", "") == "") & pairs.delta_acc.notna()]
    winners, declared = [], 0
    for key, g in have.groupby(CONFIG_KEYS):
        cfg = dict(zip(CONFIG_KEYS, key, strict=True))
        if cfg["control"] != "none" or cfg["criterion"] in ("random", "uniform") or cfg["pipeline"] == "reinit":
            continue
        label = labels.get(("vs_dense", tuple(str(v) for v in key)))
        if label is None:
            continue
        declared += 1
        if label[1] in NON_INFERIOR:
            winners.append((float(g.macs.mean()), cfg, stats.estimate(per_seed(g, "delta_acc"), "vs_dense", xi), label))
    if not declared:
        return ("Smallest winning ticket: not named — no declared question compares these tickets with the dense "
                "network (every verdict here is exploratory).")
    if not winners:
        return (f"Smallest winning ticket: none — none of the {declared} declared ticket configurations is shown "
                "non-inferior to the dense network after Holm's adjustment.")
    macs, cfg, s, (question, verdict) = min(winners, key=lambda w: w[0])
    where = f", stage counts {cfg['planned_stage_counts']}" if cfg["planned_stage_counts"] else ""
    line = (f"Smallest winning ticket ({question}, adjusted verdict {verdict}): {cfg['pipeline']} {cfg['model']} "
            f"{cfg['criterion']} p={cfg['p']}{where}, {macs / 1e6:.2f} M MACs, Δ {s.mean_text()} {s.interval()} "
            f"over {s.n} seeds")
    same = have[(have.control == "same_stage_random") & (have.criterion == cfg["criterion"]) & (have.p == cfg["p"])
                & (have.planned_stage_counts == cfg["planned_stage_counts"]) & (have.pipeline == cfg["pipeline"])]
    if len(same):
        r = stats.estimate(per_seed(same, "delta_acc"), "vs_dense", xi)
        line += f"; random blocks with the same per-stage counts: Δ {r.mean_text()} {r.interval()}, {r.verdict} (raw)"
    else:
        line += "; its same-per-stage-count random control was not run"
    return line + "."


def confirmation_grid(front_table: pd.DataFrame | None, seeds: int = 5) -> list[dict]:
    """Grid entries (for a sweep file) that rerun every front configuration with stage counts,
    each beside random blocks of the same per-stage counts (`control: same_stage_random`), over
    `seeds` seeds: what `smallest_winner` needs to name a ticket."""
    if front_table is None:
        return []
    on = front_table[(front_table.pipeline != "dense") & front_table.on_front.astype(bool)]
    grid = []
    for _, row in on.iterrows():
        counts = [int(c) for c in str(row.get("planned_stage_counts") or "").split("/") if c != ""]
        if not counts:
            continue
        grid.append({"pipeline": row.pipeline, "pruning.criterion": row.criterion,
                     "pruning.stage_counts": [counts], "pruning.p": sum(counts),
                     "pruning.control": ["none", "same_stage_random"], "seed": list(range(seeds))})
    return grid


def confirmation_questions(grid: list[dict]) -> dict | None:
    """The questions a confirmation sweep (`confirmation_grid`) declares before it runs: Q1, does
    each front configuration win against the dense network; Q2, does its criterion beat random
    blocks with the same per-stage counts. Its report names the smallest winner from Q1."""
    counts = sorted({"/".join(map(str, entry["pruning.stage_counts"][0])) for entry in grid})
    if not counts:
        return None
    select = {"control": "none", "planned_stage_counts": counts}
    return {"questions": [
        {"id": "Q1", "ask": "Does each front configuration win against the dense network?",
         "compare": "ticket_vs_dense", "select": select},
        {"id": "Q2", "ask": "Does its criterion beat random blocks with the same per-stage counts?",
         "compare": "criterion_vs_control", "select": {"planned_stage_counts": counts},
         "controls": ["same_stage_random"]}]}

