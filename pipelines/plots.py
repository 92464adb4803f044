"""Per-run plots logged to MLflow: block scores, learning curves ticket vs dense, iterative rounds."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def block_scores(plan: dict, path: Path) -> Path:
    """Bar chart of every block's score, removed blocks in red."""
    names = list(plan["scores"])
    values = [plan["scores"][n] for n in names]
    removed = set(plan["removed"])
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names)), 3.5))
    ax.bar(range(len(names)), values, color=["tab:red" if n in removed else "tab:blue" for n in names])
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel(f"{plan['criterion']} score (higher = keep)")
    ax.set_title(f"Block scores, {plan['criterion']}: the {len(removed)} red blocks are removed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def learning_curves(ticket: dict[str, list[tuple[int, float]]], dense: dict[str, list[tuple[int, float]]] | None,
                    label: str, path: Path) -> Path:
    """Test accuracy and training loss per epoch (`epoch_test_acc`, `train_loss`: {key: [(epoch, value)]}),
    ticket (solid) against its dense run (dashed)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, key, ylabel in ((axes[0], "epoch_test_acc", "test accuracy after each epoch (%)"),
                            (axes[1], "train_loss", "training loss")):
        if ticket.get(key):
            ax.plot(*zip(*ticket[key], strict=True), label=label, color="tab:red")
        if dense and dense.get(key):
            ax.plot(*zip(*dense[key], strict=True), "--", label="dense", color="tab:gray")
        ax.set_xlabel("epoch (0-based)")
        ax.set_ylabel(ylabel)
        ax.legend()
    fig.suptitle(f"{label} versus dense")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def iterative_rounds(rows: list[dict], label: str, path: Path) -> Path:
    """An iterative run's rounds against blocks removed: accuracy (%) of each trained round's ticket
    (test solid, validation dotted) beside the one-shot ticket of the same p where one has finished
    (squares), and the ticket's MACs as a fraction of the dense network's."""
    fig, (acc, macs) = plt.subplots(1, 2, figsize=(10, 3.5))
    removed = [r["blocks_removed"] for r in rows]
    for key, style, name in (("test_acc", "o-", "iterative, test"), ("val_acc", "o:", "iterative, validation"),
                             ("oneshot_test_acc", "s--", "one-shot, test"),
                             ("oneshot_val_acc", "s:", "one-shot, validation")):
        points = [(n, r[key]) for n, r in zip(removed, rows, strict=True) if r.get(key) is not None]
        if points:
            acc.plot(*zip(*points, strict=True), style, label=name)
    acc.set_xlabel("blocks removed")
    acc.set_ylabel("accuracy (%)")
    if acc.lines:
        acc.legend()
    else:
        acc.text(0.5, 0.5, "no round was trained yet", ha="center", transform=acc.transAxes)
    macs.plot(removed, [r["macs_fraction"] for r in rows], "o-", color="tab:red")
    for n, r in zip(removed, rows, strict=True):
        macs.annotate(f"r{r['round']}", (n, r["macs_fraction"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    macs.set_xlabel("blocks removed")
    macs.set_ylabel("MACs / dense MACs")
    fig.suptitle(f"{label}: rounds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
