"""The paper's tables (Tables 1-5) and a summary, as DataFrames of "mean ± std (n)" cells.

Δ is ticket minus dense accuracy in points, paired by seed. Across seeds: mean ± sample std
(ddof=1), n = seeds. The verdict rule: a configuration WINS when mean Δ + ξ ≥ 0; `wins` counts
the seeds where Acc(ticket) + ξ ≥ Acc(dense).
"""
import math

import numpy as np
import pandas as pd

VERDICT_RULE = ("a configuration wins when its mean Δ over seeds + ξ ≥ 0 (ξ = {xi:g} points); "
                "'seeds won' counts the seeds where Acc(ticket) + ξ ≥ Acc(dense)")


def cell(values, digits: int = 2, sign: bool = True) -> str:
    """'mean ± std (n)' over the finite values; '—' when there are none."""
    v = np.array([x for x in values if isinstance(x, int | float) and math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return "—"
    fmt = f"{{:+.{digits}f}}" if sign else f"{{:.{digits}f}}"
    mean = fmt.format(v.mean())
    if len(v) == 1:
        return f"{mean} (n=1)"
    return f"{mean} ± {v.std(ddof=1):.{digits}f} (n={len(v)})"


def _grid(df: pd.DataFrame, rows: str, cols: str, value: str, **fmt) -> pd.DataFrame:
    table = df.groupby([rows, cols])[value].apply(lambda s: cell(s, **fmt)).unstack(cols)
    return table.fillna("—")


def table1_rewind(pairs: pd.DataFrame) -> pd.DataFrame | None:
    """Δ accuracy by criterion × rewind point θ_i (block tickets after training, Algorithm 1)."""
    df = pairs[(pairs.pipeline == "ticket_rewind") & pairs.delta_acc.notna()] if len(pairs) else pairs
    if not len(df):
        return None
    df = df.assign(rewind=df.rewind_epoch.map(lambda i: f"θ{i}"))
    return _grid(df, "criterion", "rewind", "delta_acc")


def table2_init(pairs: pd.DataFrame) -> pd.DataFrame | None:
    """Δ accuracy by p × criterion (block tickets at initialization, Algorithm 2)."""
    df = _have(pairs, "ticket_init")
    return None if df is None else _grid(df, "p", "criterion", "delta_acc")


def table3_filter_vs_block(pairs: pd.DataFrame) -> pd.DataFrame | None:
    """Filter tickets versus block tickets of the same size, at initialization."""
    filters = _have(pairs, "filter_ticket")
    blocks = _have(pairs, "ticket_init")
    if filters is None or blocks is None:
        return None
    rows = []
    for (criterion, p), f in filters.groupby(["criterion", "p"]):
        b = blocks[(blocks.criterion == criterion) & (blocks.p == p)]
        rows.append({"criterion": criterion, "p": p, "filter ticket Δ": cell(f.delta_acc),
                     "block ticket Δ": cell(b.delta_acc), "filter seeds won": _won(f), "block seeds won": _won(b)})
    return pd.DataFrame(rows).set_index(["criterion", "p"])


def table4_cost(pairs: pd.DataFrame) -> pd.DataFrame | None:
    """Reductions versus dense (%) and measured training speed-up (×) against the MACs ratio."""
    df = _have(pairs, "ticket_init")
    if df is None:
        return None
    rows = []
    for (model, criterion, p), g in df.groupby(["model", "criterion", "p"]):
        rows.append({"model": model, "criterion": criterion, "p": p,
                     "MACs −%": cell(g.get("macs_reduction_pct", []), sign=False),
                     "memory −%": cell(g.get("memory_reduction_pct", []), sign=False),
                     "CO₂ −%": cell(g.get("emissions_reduction_pct", []), sign=False),
                     "energy −%": cell(g.get("energy_reduction_pct", []), sign=False),
                     "speed-up ×": cell(g.get("speedup", []), sign=False),
                     "MACs ratio ×": cell(g.get("ideal_speedup", []), sign=False)})
    return pd.DataFrame(rows).set_index(["model", "criterion", "p"])


def table5_robustness(pairs: pd.DataFrame) -> pd.DataFrame | None:
    """Δ accuracy (points) on corrupted, shifted and adversarial inputs, ticket minus dense."""
    df = _have(pairs, "ticket_init")
    if df is None:
        return None
    columns = [c for c in df.columns if c.startswith("delta_") and c.count(".") <= 2 and c != "delta_acc"
               and not c.startswith("delta_corruption_acc.")]
    if not columns:
        return None
    rows = []
    for (criterion, p), g in df.groupby(["criterion", "p"]):
        row = {"criterion": criterion, "p": p, "clean Δ": cell(g.delta_acc)}
        row.update({_label(c): cell(g[c]) for c in sorted(columns)})
        rows.append(row)
    return pd.DataFrame(rows).set_index(["criterion", "p"])


def summary(runs: pd.DataFrame, pairs: pd.DataFrame, xi: float = 0.0) -> pd.DataFrame:
    """Every configuration: accuracy, Δ, seeds won, verdict, MACs reduction, speed-up."""
    rows = []
    for model, g in runs[runs.pipeline == "dense"].groupby("model"):
        rows.append({"pipeline": "dense", "model": model, "criterion": "—", "p": 0, "rewind": "—",
                     "acc %": cell(g.acc, sign=False), "Δ": "", "seeds won": "", "verdict": "reference",
                     "MACs −%": "", "speed-up ×": ""})
    keys = ["pipeline", "model", "criterion", "p", "rewind_epoch"]
    for key, g in pairs.groupby(keys) if len(pairs) else []:
        have = g[g.dense_missing == ""] if "dense_missing" in g else g.iloc[0:0]
        mean = have.delta_acc.mean() if len(have) else math.nan
        verdict = ("missing dense run" if not len(have) else "wins" if mean + xi >= 0 else "loses")
        rows.append({"pipeline": key[0], "model": key[1], "criterion": key[2], "p": key[3],
                     "rewind": f"θ{key[4]}" if key[0] == "ticket_rewind" else "—",
                     "acc %": cell(g.acc, sign=False), "Δ": cell(have.get("delta_acc", [])),
                     "seeds won": _won(have), "verdict": verdict,
                     "MACs −%": cell(have.get("macs_reduction_pct", []), sign=False),
                     "speed-up ×": cell(have.get("speedup", []), sign=False)})
    return pd.DataFrame(rows)


def missing(pairs: pd.DataFrame) -> pd.DataFrame:
    """Ticket runs whose dense run is missing, with the reason."""
    if not len(pairs) or "dense_missing" not in pairs:
        return pd.DataFrame()
    m = pairs[pairs.dense_missing != ""]
    return m[["pipeline", "model", "criterion", "p", "seed", "run_id", "dense_missing"]]


def _have(pairs: pd.DataFrame, pipeline: str) -> pd.DataFrame | None:
    if not len(pairs) or "delta_acc" not in pairs:
        return None
    df = pairs[(pairs.pipeline == pipeline) & pairs.delta_acc.notna()]
    return df if len(df) else None


def _won(g: pd.DataFrame) -> str:
    if not len(g) or "wins" not in g:
        return "—"
    return f"{int(g.wins.sum())}/{len(g)}"


def _label(column: str) -> str:
    name = column.removeprefix("delta_")
    return {"corruption_acc": "corrupted Δ (mean of 15)"}.get(name, name.replace("_acc", "").replace(".", " ") + " Δ")
