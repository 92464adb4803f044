"""Draw docs/block_ticket.png: a dense CIFAR ResNet and a block ticket with two blocks removed."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

STAGES = [("stage 1 (16 ch)", "tab:blue"), ("stage 2 (32 ch)", "tab:green"), ("stage 3 (64 ch)", "tab:purple")]
REMOVED = {(0, 1), (0, 3)}


def draw(ax, y, removed, title):
    x = 0.0
    ax.add_patch(FancyBboxPatch((x, y), 0.7, 0.6, boxstyle="round,pad=0.02", color="lightgray"))
    ax.text(x + 0.35, y + 0.3, "conv", ha="center", va="center", fontsize=8)
    x += 1.0
    for s, (name, colour) in enumerate(STAGES):
        start = x
        for b in range(5):
            gone = (s, b) in removed
            if gone:
                continue
            ax.add_patch(FancyBboxPatch((x, y), 0.7, 0.6, boxstyle="round,pad=0.02", color=colour,
                                        alpha=0.35 if b else 0.8))
            ax.text(x + 0.35, y + 0.3, f"{s + 1}.{b}", ha="center", va="center", fontsize=8)
            ax.add_patch(FancyArrowPatch((x + 0.05, y + 0.62), (x + 0.65, y + 0.62), connectionstyle="arc3,rad=-0.6",
                                         arrowstyle="-|>", mutation_scale=6, color="black", lw=0.6))
            x += 1.0
        ax.text((start + x - 0.3) / 2, y - 0.25, name, ha="center", fontsize=8, color=colour)
    ax.add_patch(FancyBboxPatch((x, y), 0.7, 0.6, boxstyle="round,pad=0.02", color="lightgray"))
    ax.text(x + 0.35, y + 0.3, "fc", ha="center", va="center", fontsize=8)
    ax.text(-0.2, y + 0.3, title, ha="right", va="center", fontsize=9)


fig, ax = plt.subplots(figsize=(11, 2.6))
draw(ax, 1.6, set(), "dense ResNet32")
draw(ax, 0.3, REMOVED, "block ticket, p = 2")
ax.text(8.5, 2.75, "each box is a residual block  y = relu(x + f(x)); arcs are the identity shortcuts; "
        "the first block of stages 2 and 3 changes shape and always stays", ha="center", fontsize=8)
ax.text(8.5, -0.2, "blocks 1.1 and 1.3 (lowest GraSP scores) are removed: the network is physically shallower, "
        "the kept blocks keep their θ₀ (or rewound θᵢ) weights", ha="center", fontsize=8)
ax.set_xlim(-2.6, 18.5)
ax.set_ylim(-0.4, 2.9)
ax.axis("off")
fig.tight_layout()
fig.savefig(Path(__file__).with_name("block_ticket.png"), dpi=110)
