"""The paper's own figures (Jordao et al., "When Layers Play the Lottery, all Tickets Win at
Initialization"), one home, and each set beside what the report measured for the same cell.

    TABLE2_RESNET32      its Table 2: Δ accuracy of block tickets at initialization, by criterion and p
    table2(pairs, xi)    one row per Table 2 cell the runs measured: the paper's Δ, the runs' Δ with its
                         90 % interval, and where the paper's value falls against that interval

The paper reports one number per cell (no seeds, no intervals) for its ResNet32 on CIFAR-10, with
1×1-convolution shortcuts and its full training budget. So "inside" says only that the runs here
cannot tell their mean from the paper's number; "above" or "below" that the paper's number lies
outside the runs' 90 % interval — a disagreement of these runs, in their regime, with that number,
not a verdict on the paper's claim.
"""
import pandas as pd

from pipelines.report import stats
from pipelines.report.questions import per_seed

PAPER_DATASET, PAPER_MODEL = "cifar10", "resnet32"

# Table 2: Δ = ticket − dense accuracy (points), ResNet32, CIFAR-10, blocks removed at θ₀ by the
# criterion; p = blocks removed (docs/PAPER.md of the project's brief)
TABLE2_RESNET32 = {
    ("snip", 1): +0.08, ("snip", 2): +0.00, ("snip", 3): -0.50, ("snip", 4): -0.53, ("snip", 5): -1.00,
    ("grasp", 1): +0.40, ("grasp", 2): +0.72, ("grasp", 3): +0.34, ("grasp", 4): +0.41, ("grasp", 5): +0.12,
}

COLUMNS = ["criterion", "p", "paper Δ", "Δ here", "90% interval", "n", "paper's value"]


def table2(pairs: pd.DataFrame, xi: float = 0.0) -> pd.DataFrame | None:
    """The Table 2 cells the runs measured (ticket_init, no control, no chosen per-stage counts,
    ResNet32 on CIFAR-10), criterion by p: the paper's Δ, the runs' Δ over seeds (points) with its
    90 % interval and n, and the paper's value "inside", "above" or "below" that interval ("no
    interval" from one seed), indexed by (criterion, p). None when no run matches a cell."""
    needed = {"pipeline", "model", "dataset", "criterion", "control", "p", "delta_acc"}
    if not len(pairs) or not needed <= set(pairs.columns):
        return None
    runs = pairs[(pairs.pipeline == "ticket_init") & (pairs.control == "none") & (pairs.model == PAPER_MODEL)
                 & (pairs.dataset == PAPER_DATASET) & (pairs.get("planned_stage_counts", "") == "")
                 & pairs.delta_acc.notna()]
    rows = []
    for (criterion, p), paper_delta in TABLE2_RESNET32.items():
        s = stats.estimate(per_seed(runs[(runs.criterion == criterion) & (runs.p == p)], "delta_acc"), "vs_dense", xi)
        if s.n == 0:
            continue
        rows.append({"criterion": criterion, "p": p, "paper Δ": f"{paper_delta:+.2f}", "Δ here": s.mean_text(),
                     "90% interval": s.interval(), "n": s.n, "paper's value": _where(paper_delta, s)})
    return pd.DataFrame(rows, columns=COLUMNS).set_index(["criterion", "p"]) if rows else None


def _where(value: float, s: stats.Estimate) -> str:
    """Where `value` (points) falls against the 90 % interval of `s`."""
    if s.n < 2:
        return "no interval"
    return "below" if value < s.low else "above" if value > s.high else "inside"
