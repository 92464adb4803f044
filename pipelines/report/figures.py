"""The report's plots (PNG): the declared questions' intervals, Δ accuracy vs p, accuracy vs MACs,
the Pareto front, speed-up vs p, latency speed-up vs MACs ratio, accuracy per corruption,
iterative rounds against one-shot tickets."""
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# an adjusted verdict's colour in the questions' figure: decided for the ticket or criterion (green),
# against it (red), equivalent (blue), open (grey)
VERDICT_COLOURS = {"better": "tab:green", "wins": "tab:green", "matches": "tab:blue", "equivalent": "tab:blue",
                   "worse": "tab:red"}


def question_intervals(intervals: pd.DataFrame, path: Path) -> Path | None:
    """Each declared comparison's mean and 90 % interval (points; rows of `Answer.intervals`, one
    line each, grouped by question), the band −ξ..+ξ of its question's margin shaded, the line at
    0, and its verdict after Holm's adjustment on the right axis, giving its colour."""
    if not len(intervals):
        return None
    rows = intervals.iloc[::-1].reset_index(drop=True)        # the first comparison at the top
    colours = [VERDICT_COLOURS.get(v, "tab:gray") for v in rows["adjusted verdict"]]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * len(rows)))
    for y, r in rows.iterrows():
        ax.fill_betweenx([y - 0.4, y + 0.4], -r.margin, r.margin, color="0.92", lw=0)
        ax.errorbar(r["mean"], y, xerr=[[r["mean"] - r.low], [r.high - r["mean"]]], fmt="o", color=colours[y],
                    capsize=3, ms=4)
    ax.axvline(0, color="black", lw=1)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_yticks(range(len(rows)), [f"{q}: {c} (n={n})" for q, c, n in zip(rows.question, rows.comparison, rows.n,
                                                                                strict=True)], fontsize=7)
    verdicts = ax.twinx()
    verdicts.set_ylim(ax.get_ylim())
    verdicts.set_yticks(range(len(rows)), list(rows["adjusted verdict"]), fontsize=7)
    for label, colour in zip(verdicts.get_yticklabels(), colours, strict=True):
        label.set_color(colour)
    ax.set_xlabel("difference (points): mean and 90 % interval; shaded: ±ξ")
    ax.set_title("Declared questions: each comparison's interval,\nits verdict after Holm's adjustment on the right",
                 fontsize=9)
    return _save(fig, path)


def delta_vs_p(pairs: pd.DataFrame, path: Path) -> Path | None:
    df = _criteria(pairs)
    if "delta_acc" not in df:            # no ticket has a dense run to compare with
        return None
    df = df[df.delta_acc.notna()]
    if not len(df):
        return None
    return _plot_vs_p(df, "delta_acc", "{}", path, ylabel="Δ test accuracy vs dense (points)",
                      title="Block tickets at initialization: above the line = winning\n(mean ± std over seeds)",
                      reference=lambda ax: ax.axhline(0, color="black", lw=1, ls="--", label="dense (Δ = 0)"))


def acc_vs_macs(runs: pd.DataFrame, path: Path) -> Path | None:
    if not len(runs) or "macs" not in runs:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for (pipeline, criterion), g in runs.groupby(["pipeline", "criterion"]):
        label = "dense" if pipeline == "dense" else f"{pipeline} {criterion}"
        stats = g.groupby("macs").acc.agg(["mean", "std"])
        ax.errorbar(stats.index / 1e6, stats["mean"], yerr=stats["std"].fillna(0), marker="s" if pipeline == "dense" else "o",
                    ls="none", capsize=3, label=label, ms=8 if pipeline == "dense" else 5)
    ax.set_xlabel("MACs per 32×32 image (millions)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against cost (mean ± std over seeds)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def pareto_front(front: pd.DataFrame | None, path: Path) -> Path | None:
    """Accuracy against MACs of every ticket configuration (`pareto.table`), its front as a line,
    the dense network as a square."""
    if front is None or not len(front):
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    tickets = front[front.pipeline != "dense"]
    on = tickets[tickets.on_front].sort_values("macs")
    ax.scatter(tickets.macs / 1e6, tickets.accuracy, s=18, color="tab:blue", alpha=0.6, label="ticket")
    ax.plot(on.macs / 1e6, on.accuracy, "o-", color="tab:red", ms=6, label="Pareto front", drawstyle="steps-post")
    dense = front[front.pipeline == "dense"]
    if len(dense):
        ax.plot(dense.macs / 1e6, dense.accuracy, "ks", ms=9, label="dense")
    metric = front.attrs.get("accuracy", "acc")
    ax.set_xlabel("MACs per 32×32 image (millions)")
    ax.set_ylabel("validation accuracy (%)" if metric == "val_acc" else "test accuracy (%)")
    ax.set_title("Smallest tickets: the accuracy/MACs front (mean over seeds)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def speedup_vs_p(pairs: pd.DataFrame, path: Path) -> Path | None:
    if not len(pairs) or "speedup" not in pairs:
        return None
    df = _criteria(pairs)
    df = df[df.speedup.notna()]
    if not len(df):
        return None
    ideal = df.groupby("p").ideal_speedup.mean()

    def reference(ax):
        ax.plot(ideal.index, ideal.values, "k--", label="MACs ratio (ideal)")
        ax.axhline(1, color="gray", lw=0.8)

    return _plot_vs_p(df, "speedup", "{} (measured)", path, ylabel="training speed-up vs dense (×, per epoch)",
                      title="Training speed-up of block tickets", reference=reference)


def latency_vs_macs(pairs: pd.DataFrame, path: Path) -> Path | None:
    """Inference latency speed-up (dense / ticket, each batch size measured) against the MACs ratio,
    one point per ticket run, with the line y = x (latency following MACs exactly)."""
    columns = sorted((c for c in pairs.columns if c.startswith("latency_speedup_b")),
                     key=lambda c: int(c.removeprefix("latency_speedup_b"))) if len(pairs) else []
    if not columns or "ideal_speedup" not in pairs:
        return None
    fig, ax = plt.subplots(figsize=(5, 4.5))
    shown = []
    for column in columns:
        df = pairs[pairs[column].notna() & pairs.ideal_speedup.notna()]
        if len(df):
            ax.scatter(df.ideal_speedup, df[column], s=18, alpha=0.7,
                       label=f"batch {column.removeprefix('latency_speedup_b')}")
            shown += [*df.ideal_speedup, *df[column]]
    if not shown:
        plt.close(fig)
        return None
    low, high = min(1.0, *shown) * 0.95, max(shown) * 1.05
    ax.plot([low, high], [low, high], "k--", lw=1, label="y = x (time follows MACs)")
    ax.set_xlabel("MACs ratio, dense / ticket (×)")
    ax.set_ylabel("inference latency speed-up, dense / ticket (×)")
    ax.set_title("Does latency follow MACs? (one point per ticket run)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def accuracy_per_corruption(runs: pd.DataFrame, path: Path) -> Path | None:
    columns = sorted(c for c in runs.columns if c.startswith("corruption_acc.")) if len(runs) else []
    if not columns:
        return None
    groups = {"dense": runs[runs.pipeline == "dense"]}
    for criterion, g in runs[runs.pipeline == "ticket_init"].groupby("criterion"):
        groups[f"{criterion} tickets (all p)"] = g
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(groups)
    x = np.arange(len(columns))
    for k, (label, g) in enumerate(groups.items()):
        ax.bar(x + k * width, [g[c].mean() for c in columns], width, label=label)
    ax.set_xticks(x + 0.4 - width / 2, [c.removeprefix("corruption_acc.").replace("_", " ") for c in columns],
                  rotation=45, ha="right")
    ax.set_ylabel("accuracy (%), mean over severities 1–5")
    ax.set_title("Accuracy per CIFAR-10-C corruption (generated from the test images)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def iterative_rounds(rounds: pd.DataFrame, path: Path) -> Path | None:
    """Iterative runs by blocks removed (mean over seeds): test accuracy of each trained round's
    ticket (solid) beside the one-shot ticket of the same p (dashed, squares; column `oneshot`),
    and the MACs left as a fraction of the dense network's."""
    if not len(rounds):
        return None
    fig, (acc, macs) = plt.subplots(1, 2, figsize=(11, 4))
    for (model, criterion, how), g in rounds.groupby(["model", "criterion", "iterative"]):
        label = f"{model} {criterion} iterative {how}"
        mean = g.groupby("blocks_removed")[["test_acc", "oneshot", "macs_fraction"]].mean()
        line = acc.plot(mean.index, mean.test_acc, "o-", label=label)[0]
        if mean.oneshot.notna().any():
            acc.plot(mean.index, mean.oneshot, "s--", color=line.get_color(), label=f"{model} {criterion} one-shot")
        macs.plot(mean.index, mean.macs_fraction, "o-", color=line.get_color(), label=label)
    acc.set_xlabel("blocks removed")
    acc.set_ylabel("test accuracy (%)")
    acc.set_title("Iterative rounds against one-shot tickets of the same p")
    acc.legend(fontsize=7)
    macs.set_xlabel("blocks removed")
    macs.set_ylabel("MACs / dense MACs")
    macs.set_title("MACs left per round")
    return _save(fig, path)


def _criteria(pairs: pd.DataFrame) -> pd.DataFrame:
    """Block tickets at initialization chosen by their criterion (no control)."""
    if not len(pairs):
        return pairs
    return pairs[(pairs.pipeline == "ticket_init") & (pairs.get("control", "none") == "none")]


def _plot_vs_p(df: pd.DataFrame, column: str, label: str, path: Path, *, ylabel: str, title: str,
               reference: Callable) -> Path:
    """`column` against p (`_mean_std_vs_p`), the reference lines `reference(ax)` draws, and the p axis."""
    fig, ax = plt.subplots(figsize=(6, 4))
    _mean_std_vs_p(ax, df, column, label)
    reference(ax)
    ax.set_xlabel("blocks removed p")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xticks(sorted(df.p.unique()))
    ax.legend()
    return _save(fig, path)


def _mean_std_vs_p(ax, df: pd.DataFrame, column: str, label: str) -> None:
    """One line per criterion: mean ± std over seeds of `column` at each p; `label` formats the criterion."""
    for criterion, g in df.groupby("criterion"):
        stats = g.groupby("p")[column].agg(["mean", "std"])
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                    label=label.format(criterion))


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
