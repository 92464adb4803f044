"""From block scores to a pruning plan: the p lowest-scoring blocks within each stage's budget."""
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch.nn as nn

from lottery_core.errors import LotteryError
from lottery_core.models.cifar_resnet import CifarResNet
from lottery_core.surgery import (
    DEFAULT_MIN_BLOCKS_PER_STAGE,
    block_stage,
    is_silenced,
    removable_blocks,
    stage_budget,
)


@dataclass(frozen=True)
class Plan:
    """Which blocks go: plain data, JSON-ready through `to_dict` / `from_dict`.

    `removed` is in the order chosen (lowest score first); `scores` holds every scored block in
    forward order (higher = keep)."""

    criterion: str
    p: int
    removed: list[str]
    scores: dict[str, float]
    min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE
    kept: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"criterion": self.criterion, "p": self.p, "min_blocks_per_stage": self.min_blocks_per_stage,
                "removed": list(self.removed), "kept": list(self.kept), "scores": dict(self.scores)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Plan":
        missing = [k for k in ("criterion", "p", "removed", "scores") if k not in data]
        if missing:
            raise LotteryError(f"a plan needs the keys criterion, p, removed, scores; missing: {', '.join(missing)}")
        return cls(criterion=str(data["criterion"]), p=int(data["p"]), removed=[str(n) for n in data["removed"]],
                   scores={str(k): float(v) for k, v in data["scores"].items()},
                   min_blocks_per_stage=int(data.get("min_blocks_per_stage", DEFAULT_MIN_BLOCKS_PER_STAGE)),
                   kept=[str(n) for n in data.get("kept", [])])


def select_blocks(scores: Mapping[str, float], p: int, model: nn.Module | None = None, *,
                  min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE, criterion: str = "",
                  stages: Mapping[str, int] | None = None, budget: Mapping[int, int] | None = None,
                  stage_counts: Sequence[int] | None = None) -> Plan:
    """Remove the `p` lowest-scoring blocks, never more from a stage than its budget allows.

    The stage of each block and each stage's budget come from `model` (`surgery.stage_budget`
    with `min_blocks_per_stage`), or from `stages` (block -> stage) and `budget` (stage -> how many
    may go); with neither, any `p` of the scored blocks may go. `stage_counts` (with `model`):
    exactly that many blocks from each stage (stage 1 first), the lowest-scoring within each; `p`
    must be their sum and each count within its stage's budget.

    Ties: with `model`, a silenced block (its last BatchNorm has γ = β = 0, or a transformer
    layer's two branch-ending Linears are zero, see `silenced`: its branches output exactly 0,
    so removing it changes nothing) goes before a live block of equal
    score (e.g. KL is exactly 0 both for a silenced block and for a live one whose effect on the
    logits is below float32 resolution, as on an untrained MobileNetV2); otherwise ties go to
    the earlier block (forward order: the model's, else the order of `scores`)."""
    if not isinstance(p, int) or isinstance(p, bool) or p < 0:
        raise LotteryError(f"p must be a non-negative integer, got {p!r}")
    bad = [n for n, s in scores.items() if not math.isfinite(float(s))]
    if bad:
        raise LotteryError(f"block scores must be finite; {bad[0]!r} scored {scores[bad[0]]}")
    order = list(scores)
    label = "the network"
    if model is not None:
        allowed = removable_blocks(model, min_blocks_per_stage)
        for n in scores:
            if n not in allowed:
                raise LotteryError(f"block {n!r} is not removable; removable blocks: {', '.join(allowed)}")
        order = [n for n in allowed if n in scores]
        stages, budget = block_stage(model), stage_budget(model, min_blocks_per_stage)
        label = _label(model)
        if stage_counts is not None:
            budget = _counts_as_budget(list(stage_counts), budget, p, min_blocks_per_stage)
    elif stage_counts is not None:
        raise LotteryError("select_blocks with stage_counts needs the model (its stages and budgets)")
    elif stages is not None or budget is not None:
        if stages is None or budget is None:
            raise LotteryError("select_blocks needs both stages and budget (or a model)")
        unknown = [n for n in scores if n not in stages or stages[n] not in budget]
        if unknown:
            raise LotteryError(f"block {unknown[0]!r} has no stage or budget; blocks with a stage: "
                               f"{', '.join(n for n in stages if stages[n] in budget)}")
    constrained = stages is not None and budget is not None
    if not constrained:
        stages, budget = dict.fromkeys(order, 0), {0: len(order)}
    per_stage: dict[int, int] = {}
    for n in order:
        per_stage[stages[n]] = per_stage.get(stages[n], 0) + 1
    limit = sum(min(count, max(budget[s], 0)) for s, count in per_stage.items())
    if p > limit:
        rule = (f" (min_blocks_per_stage={min_blocks_per_stage})" if model is not None
                else " (stage budgets)" if constrained else "")
        raise LotteryError(f"p={p} exceeds the {limit} blocks {label} may lose{rule}")
    position = {n: i for i, n in enumerate(order)}
    live = {n: model is None or not silenced(model, n) for n in order}
    taken: dict[int, int] = {}
    removed: list[str] = []
    for n in sorted(order, key=lambda n: (float(scores[n]), live[n], position[n])):
        if len(removed) == p:
            break
        if taken.get(stages[n], 0) < budget[stages[n]]:
            removed.append(n)
            taken[stages[n]] = taken.get(stages[n], 0) + 1
    return Plan(criterion=criterion, p=p, removed=removed,
                scores={n: float(scores[n]) for n in order}, min_blocks_per_stage=min_blocks_per_stage,
                kept=[n for n in order if n not in removed])


def _counts_as_budget(counts: list[int], budget: dict[int, int], p: int, min_blocks_per_stage: int) -> dict[int, int]:
    """Per-stage counts as the budget of `select_blocks`: with p = their sum, every stage loses
    exactly its count. LotteryError when they do not fit the model."""
    limits = [budget[s] for s in sorted(budget)]
    if len(counts) != len(limits) or any(not isinstance(c, int) or c < 0 or c > b
                                         for c, b in zip(counts, limits, strict=False)):
        raise LotteryError(f"stage_counts={counts} must give each of the {len(limits)} stages a count from 0 to "
                           f"its budget {limits} (min_blocks_per_stage={min_blocks_per_stage})")
    if sum(counts) != p:
        raise LotteryError(f"p={p} must be the sum of stage_counts={counts}, {sum(counts)}")
    return dict(zip(sorted(budget), counts, strict=True))


def silenced(model: nn.Module, name: str) -> bool:
    """Whether block `name`'s residual branches are provably 0 (`surgery.is_silenced`: its last
    BatchNorm has γ = β = 0; a transformer layer's attention output projection and last MLP
    Linear are zero)."""
    return is_silenced(model, name)


def _label(model: nn.Module) -> str:
    """'resnet56' for a CIFAR ResNet of equal stages, else the class name."""
    if isinstance(model, CifarResNet):
        sizes = {len(model.layer1), len(model.layer2), len(model.layer3)}
        if len(sizes) == 1:
            return f"resnet{6 * sizes.pop() + 2}"
    return type(model).__name__
