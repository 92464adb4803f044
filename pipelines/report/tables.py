"""The paper's tables (Tables 1-5), a summary and the controls, as DataFrames of text cells.

Δ is ticket minus dense accuracy in points, paired by seed; its cells read "mean [90 % interval]
(n) verdict" with the raw verdict of `pipelines.report.stats`. Other quantities read "mean ± sample
std (n)". Rows of random draws (criterion random, random controls) are first averaged per seed over
their draws, so n always counts seeds. The verdicts that answer a study's declared questions, with
Holm's adjustment, are in `pipelines.report.questions`; the summary and controls tables say which
question a row belongs to, or "exploratory".
"""
import math

import numpy as np
import pandas as pd

from pipelines.report import stats
from pipelines.report.questions import CONFIG_KEYS, CONTROLS, per_seed, same_criterion

VERDICT_RULE = stats.VERDICT_RULE
EXPLORATORY = "exploratory"


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


def delta_cell(g: pd.DataFrame, column: str = "delta_acc", xi: float = 0.0) -> str:
    """'mean [low, high] (n) verdict' of ticket − dense over seeds (draws averaged per seed): the
    90 % interval and the raw verdict at margin `xi` (`stats.estimate`, kind vs_dense)."""
    s = stats.estimate(per_seed(g, column), "vs_dense", xi)
    if s.n == 0:
        return "—"
    if s.n == 1:
        return f"{s.mean_text()} (1 seed)"
    return f"{s.mean_text()} {s.interval()} (n={s.n}) {s.verdict}"




def _grid(df: pd.DataFrame, rows: str, cols: str, value: str, xi: float = 0.0) -> pd.DataFrame:
    table = df.groupby([rows, cols]).apply(lambda g: delta_cell(g, value, xi), include_groups=False).unstack(cols)
    return table.fillna("—")


def _plain(pairs: pd.DataFrame, pipeline: str) -> pd.DataFrame | None:
    """The criterion rows of a pipeline (no control), with a dense run to compare against."""
    df = _have(pairs, pipeline)
    return None if df is None else (df[df.control == "none"] if "control" in df else df)


def table1_rewind(pairs: pd.DataFrame, xi: float = 0.0) -> pd.DataFrame | None:
    """Δ accuracy by criterion × rewind point θ_i (Algorithm 1), beside the reinit control:
    the same ticket architecture, fresh weights, trained from scratch for n epochs."""
    df = _plain(pairs, "ticket_rewind")
    if df is None or not len(df):
        return None
    df = df.assign(rewind=df.rewind_epoch.map(lambda i: f"θ{i}"))
    table = _grid(df, "criterion", "rewind", "delta_acc", xi)
    reinit = _have(pairs, "reinit")
    if reinit is not None:
        reinit = reinit[reinit.reinit_of == "ticket_rewind"]
        table["reinit (fresh weights, n epochs)"] = [
            delta_cell(reinit[(reinit.criterion == c) & reinit.p.isin(df[df.criterion == c].p.unique())], xi=xi)
            for c in table.index]
    return table


def table2_init(pairs: pd.DataFrame, xi: float = 0.0) -> pd.DataFrame | None:
    """Δ accuracy by p × criterion (block tickets at initialization, Algorithm 2; random = the control)."""
    df = _plain(pairs, "ticket_init")
    return None if df is None or not len(df) else _grid(df, "p", "criterion", "delta_acc", xi)


def table3_filter_vs_block(runs: pd.DataFrame, pairs: pd.DataFrame, xi: float = 0.0,
                           labels: dict | None = None) -> pd.DataFrame | None:
    """Filter tickets against block tickets of the same size, at initialization: each side's Δ
    against dense, and filter − block paired by seed (90 % interval, raw verdict at margin `xi`,
    its question or "exploratory"). One row per criterion, p and match: the block ticket's filter
    count (`pruning.filter_match` filters) and, where those runs exist, its MACs (macs)."""
    from pipelines.report.questions import COMPARISONS, Question

    filters = _have(pairs, "filter_ticket")
    blocks = _plain(pairs, "ticket_init")
    if filters is None or blocks is None:
        return None
    everything = Question("", "", ("filter_vs_block",), margin=xi)
    rows = []
    for c in COMPARISONS["filter_vs_block"][0](runs, pairs, everything):
        cfg = dict(zip(CONFIG_KEYS, c.key[1], strict=True))
        match = c.key[2] or "filters"
        f = filters[(filters.criterion == cfg["criterion"]) & (filters.p.astype(str) == cfg["p"])
                    & (filters.get("filter_match", pd.Series("filters", index=filters.index)).fillna("filters")
                       .replace("", "filters") == match)]
        b = blocks[(blocks.criterion == cfg["criterion"]) & (blocks.p.astype(str) == cfg["p"])]
        s = stats.estimate(c.diffs.tolist(), "difference", xi)
        question, adjusted = (labels or {}).get(c.key, (EXPLORATORY, ""))
        rows.append({"criterion": cfg["criterion"], "p": int(cfg["p"]), "matched": match,
                     "filter MACs −%": cell(f.get("macs_reduction_pct", []), sign=False),
                     "block MACs −%": cell(b.get("macs_reduction_pct", []), sign=False),
                     "filter ticket Δ": delta_cell(f, xi=xi), "block ticket Δ": delta_cell(b, xi=xi),
                     "filter − block": s.mean_text(), "90% interval": s.interval(), "n": s.n, "verdict": s.verdict,
                     "question": question, "adjusted verdict": adjusted})
    return pd.DataFrame(rows).set_index(["criterion", "p", "matched"]) if rows else None


def table4_cost(pairs: pd.DataFrame) -> pd.DataFrame | None:
    """Reductions versus dense (%) and the training speed-up the runs measured while they trained (×),
    against the MACs ratio. Latency and isolated training-step speed-ups come from the one
    interleaved timing pass (`pipelines.report.timing`), not from here."""
    df = _plain(pairs, "ticket_init")
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


FLOOR_PCT = 0.5   # accuracy (%) at or under which an attack has left nothing to compare: 1 image of 200


def table5_robustness(pairs: pd.DataFrame, xi: float = 0.0) -> pd.DataFrame | None:
    """Δ accuracy (points) on corrupted, shifted and adversarial inputs, ticket minus dense.

    The first row, "dense (acc %)", gives the dense networks' own accuracy on each set (mean ± sd over
    their seeds), so that a Δ is read against the level it sits on. A cell where the ticket and its dense
    run are both at or under `FLOOR_PCT` on every seed says "at floor" instead of a verdict: Δ = 0 with no
    spread there says the attack broke both networks, not that the ticket is as robust."""
    df = _plain(pairs, "ticket_init")
    if df is None:
        return None
    columns = [c for c in df.columns if c.startswith("delta_") and c.count(".") <= 2 and c != "delta_acc"
               and not c.startswith("delta_corruption_acc.")]
    if not columns:
        return None
    columns = sorted(columns)
    dense = df.drop_duplicates("dense_identity")
    rows = [{"criterion": "dense (acc %)", "p": 0, "clean Δ": cell(dense.dense_acc, sign=False),
             **{_label(c): cell(dense[c.removeprefix("delta_")] - dense[c], sign=False) for c in columns}}]
    for (criterion, p), g in df.groupby(["criterion", "p"]):
        row = {"criterion": criterion, "p": p, "clean Δ": delta_cell(g, xi=xi)}
        row.update({_label(c): _robustness_cell(g, c, xi) for c in columns})
        rows.append(row)
    return pd.DataFrame(rows).set_index(["criterion", "p"])


def _robustness_cell(g: pd.DataFrame, column: str, xi: float) -> str:
    """`delta_cell`, or "at floor" when ticket and dense are both ≤ FLOOR_PCT on every seed."""
    ticket = g[column.removeprefix("delta_")]
    dense = ticket - g[column]
    if len(g) and (ticket <= FLOOR_PCT).all() and (dense <= FLOOR_PCT).all():
        return f"at floor (both ≤ {FLOOR_PCT:g} % on every seed; n={g.seed.nunique()})"
    return delta_cell(g, column, xi)


def summary(runs: pd.DataFrame, pairs: pd.DataFrame, xi: float = 0.0, labels: dict | None = None) -> pd.DataFrame:
    """Every configuration: accuracy, Δ with its 90 % interval and raw verdict at margin `xi`, the
    declared question it answers (else "exploratory") with its Holm-adjusted verdict, cost, stage counts."""
    rows = []
    for model, g in runs[runs.pipeline == "dense"].groupby("model"):
        rows.append({"pipeline": "dense", "model": model, "criterion": "—", "control": "—", "p": 0, "rewind": "—",
                     "acc %": cell(g.acc, sign=False), "Δ": "", "90% interval": "", "n": g.seed.nunique(),
                     "verdict": "reference", "question": "", "adjusted verdict": "", "seeds won": "",
                     "MACs −%": "", "speed-up ×": "", "stage counts": "", "rounds": "—"})
    for key, g in pairs.groupby(CONFIG_KEYS) if len(pairs) else []:
        cfg = dict(zip(CONFIG_KEYS, key, strict=True))
        have = g[g.dense_missing == ""] if "dense_missing" in g else g.iloc[0:0]
        s = stats.estimate(per_seed(have, "delta_acc"), "vs_dense", xi)
        verdict = "missing dense run" if not len(have) else s.verdict
        question, adjusted = (labels or {}).get(("vs_dense", tuple(str(v) for v in key)), (EXPLORATORY, ""))
        control = cfg["control"] if cfg["pipeline"] != "reinit" else f"reinit of {cfg['reinit_of'] or 'ticket_init'}"
        rows.append({"pipeline": cfg["pipeline"], "model": cfg["model"], "criterion": cfg["criterion"],
                     "control": control, "p": cfg["p"] if not cfg["planned_stage_counts"] else
                     f"{cfg['p']} ({cfg['planned_stage_counts']})",
                     "rewind": f"θ{cfg['rewind_epoch']}" if cfg["pipeline"] == "ticket_rewind" or
                     cfg["iterative"].startswith("rewind") else "—", "rounds": cfg["iterative"] or "—",
                     "acc %": cell(g.acc, sign=False), "Δ": s.mean_text(), "90% interval": s.interval(), "n": s.n,
                     "verdict": verdict, "question": question, "adjusted verdict": adjusted,
                     "seeds won": _won(have),
                     "MACs −%": cell(have.get("macs_reduction_pct", []), sign=False),
                     "speed-up ×": cell(have.get("speedup", []), sign=False),
                     "stage counts": ", ".join(sorted(set(g.get("stage_counts", pd.Series(dtype=str)).dropna())))})
    return pd.DataFrame(rows)


def oneshot_acc(rounds: pd.DataFrame, runs: pd.DataFrame) -> pd.Series:
    """For each round, the test accuracy (%) of the one-shot ticket that removes as many blocks with
    the same criterion, seed, model, data and training (the same dense identity): ticket_init for
    iterative runs at θ_0, ticket_rewind at the same θ_i for rewinding ones; NaN when there is none."""
    tickets = runs[runs.pipeline.isin(["ticket_init", "ticket_rewind"]) & (runs.control == "none") & (runs.draw == 0)]
    index = {(r.pipeline, r.criterion, r.dense_identity, int(r.p), int(r.rewind_epoch) if r.pipeline ==
              "ticket_rewind" else 0): r.acc for r in tickets.itertuples()}
    out = []
    for r in rounds.itertuples():
        rewind = r.iterative.startswith("rewind")
        key = ("ticket_rewind" if rewind else "ticket_init", r.criterion, r.dense_identity, int(r.blocks_removed),
               int(r.rewind_epoch) if rewind else 0)
        out.append(index.get(key, math.nan))
    return pd.Series(out, index=rounds.index, dtype=float)


def iterative(rounds: pd.DataFrame, runs: pd.DataFrame, xi: float = 0.0) -> pd.DataFrame | None:
    """Iterative runs round by round against one-shot tickets of the same p: MACs left (% of dense),
    test accuracy of the round's ticket (rounds at θ_0 are trained only when they are the last or
    when pruning.stop_xi judges every round) and of the one-shot ticket, and iterative − one-shot
    per seed with its 90 % interval and raw verdict at margin `xi` (points; better / worse /
    equivalent / inconclusive, as `stats.KINDS["difference"]`). The declared comparison of iterative
    and one-shot tickets, with Holm's adjustment, is `questions.iterative_vs_oneshot`."""
    if not len(rounds):
        return None
    df = rounds.assign(oneshot=oneshot_acc(rounds, runs), diff=lambda d: d.test_acc - d.oneshot)
    rows = []
    for (model, criterion, how, rewind, removed), g in df.groupby(["model", "criterion", "iterative", "rewind_epoch",
                                                                    "blocks_removed"]):
        s = stats.estimate(per_seed(g, "diff").tolist(), "difference", xi)
        rows.append({"model": model, "criterion": criterion, "rounds": how,
                     "rewind": f"θ{rewind}" if how.startswith("rewind") else "—", "blocks removed": int(removed),
                     "MACs left %": cell(100 * g.macs_fraction, sign=False), "iterative acc %": cell(g.test_acc, sign=False),
                     "one-shot acc %": cell(g.oneshot, sign=False), "iterative − one-shot": s.mean_text(),
                     "90% interval": s.interval(), "n": s.n, "verdict": s.verdict if s.n else "no one-shot ticket"})
    return pd.DataFrame(rows).set_index(["model", "criterion", "rounds", "rewind", "blocks removed"])


def controls(runs: pd.DataFrame, xi: float = 0.0, labels: dict | None = None) -> pd.DataFrame | None:
    """Each criterion against each of its controls at the same p (and pipeline, model, rewind point):
    d = acc(criterion) − acc(control), paired by seed, 90 % interval and raw verdict at margin `xi`
    (`questions.criterion_vs_control` builds the rows), with the declared question the row answers
    and its adjusted verdict, else "exploratory".

    Controls (`questions.CONTROLS`): random (criterion random), every registered control
    (pruning.control), and reinit (the reinit pipeline of the same ticket)."""
    from pipelines.report.questions import COMPARISONS, Question

    if not len(runs):
        return None
    everything = Question("", "", ("criterion_vs_control",), controls=CONTROLS, margin=xi)
    rows = []
    for c in COMPARISONS["criterion_vs_control"][0](runs, runs, everything):
        cfg = dict(zip(CONFIG_KEYS, c.key[1], strict=True))
        control = c.key[2]
        s = stats.estimate(c.diffs.tolist(), "difference", xi)
        question, adjusted = (labels or {}).get(c.key, (EXPLORATORY, ""))
        rows.append({"pipeline": cfg["pipeline"], "model": cfg["model"], "criterion": cfg["criterion"], "p": cfg["p"],
                     "rewind": f"θ{cfg['rewind_epoch']}" if cfg["pipeline"] == "ticket_rewind" else "—",
                     "control": control, "criterion − control": s.mean_text(), "90% interval": s.interval(),
                     "n": s.n, "verdict": s.verdict, "question": question, "adjusted verdict": adjusted,
                     "control stage counts": _stage_counts(runs, cfg, control), **c.extra})
    return pd.DataFrame(rows).set_index(["pipeline", "model", "criterion", "p", "rewind", "control"]) if rows else None


def _stage_counts(runs: pd.DataFrame, cfg: dict, control: str) -> str:
    """The per-stage counts the control's runs removed at the configuration's p."""
    at = (runs.model == cfg["model"]) & (runs.p.astype(str) == cfg["p"]) & (runs.pipeline == cfg["pipeline"])
    if control == "random":
        other = runs[at & (runs.criterion == "random") & (runs.control == "none")]
    elif control == "reinit":
        other = runs[(runs.model == cfg["model"]) & (runs.p.astype(str) == cfg["p"]) & (runs.pipeline == "reinit")
                     & (runs.criterion == cfg["criterion"])]
    else:
        other = runs[at & (runs.control == control) & same_criterion(runs, cfg, control)]
    return ", ".join(sorted(set(other.get("stage_counts", pd.Series(dtype=str)).dropna())))


def test_set(runs: pd.DataFrame) -> str:
    """One line: the test images every run was measured on and the binomial SE of one accuracy."""
    if "test_images" not in runs or not runs.test_images.notna().any():
        return "Test set size not recorded by these runs."
    sizes = sorted({int(n) for n in runs.test_images.dropna()})
    dense = runs[runs.pipeline == "dense"].acc
    acc = float(dense.mean()) if len(dense) else float(runs.acc.mean())
    se = stats.binomial_se(acc, sizes[0])
    same = "the same images for every seed" if len(sizes) == 1 else "sizes differ between runs"
    return (f"Test set: {', '.join(map(str, sizes))} images ({same}); binomial standard error of one "
            f"accuracy near {acc:.1f} %: ±{se:.2f} points.")


def compute(runs: pd.DataFrame) -> str:
    """One line: the hours the runs trained (`wall_time_s`: each run's epochs' wall times summed,
    the epochs before a resume included) and the median minutes a run of each kind took."""
    if "wall_time_s" not in runs or not runs.wall_time_s.notna().any():
        return "Training time not recorded by these runs."
    timed = runs[runs.wall_time_s.notna()]
    kinds = [(name, timed[rows].wall_time_s) for name, rows in (("dense", timed.pipeline == "dense"),
                                                                ("tickets", timed.pipeline != "dense"))]
    medians = " and ".join(f"{float(t.median()) / 60:.0f} min ({name}, {len(t)} runs)" for name, t in kinds if len(t))
    return (f"Training time: {float(timed.wall_time_s.sum()) / 3600:.1f} h over {len(timed)} runs, each run's epochs "
            f"summed, resumes included; a run's median {medians}. Runs that shared the cores took longer each, so "
            "this is neither the study's wall-clock time nor a speed measurement.")


def _number(x: float, digits: int = 0) -> str:
    if not isinstance(x, int | float) or math.isnan(x):
        return ""
    if math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}"


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
    if not len(g) or "winning" not in g:
        return "—"
    return f"{int(g.winning.sum())}/{len(g)}"


def _label(column: str) -> str:
    name = column.removeprefix("delta_")
    return {"corruption_acc": "corrupted Δ (mean of 15)"}.get(name, name.replace("_acc", "").replace(".", " ") + " Δ")
