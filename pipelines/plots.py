"""Per-run plots logged to MLflow: block scores, learning curves ticket vs dense."""
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
    """Test accuracy and training loss per epoch, ticket (solid) against its dense run (dashed)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, key, ylabel in ((axes[0], "test_acc", "test accuracy (%)"), (axes[1], "train_loss", "training loss")):
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
