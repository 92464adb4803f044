"""Controls: what a criterion's block choice must beat (Frankle et al. 2021, Su et al. 2020).

    inverted(scores)                          negated scores: select_blocks removes the highest
    stage_counts(plan_or_removed, model)      {stage: blocks it loses}, stages 1-based as block_stage
    same_stage_random(removed, model, seed)   random removable blocks, the same count per stage
    uniform_blocks(model, p)                  the plain shallower network: the last blocks, spread evenly
    draw_seed(seed, draw)                     the seed of random draw `draw` of run seed `seed`
    shuffled_labels(batches, seed)            same images, labels permuted across all of them
    random_inputs(batches, seed)              same labels and shapes, images replaced by N(0, 1) noise

Pure functions of their arguments (no global RNG, no tracking); every random one takes its own
seed and draws from a `torch.Generator` seeded with it: same seed, same result.
"""
from collections.abc import Iterable, Mapping

import torch
import torch.nn as nn

from lottery_core.criteria.common import Batch, check_batches
from lottery_core.criteria.select import Plan, _label
from lottery_core.errors import LotteryError
from lottery_core.surgery import (
    DEFAULT_MIN_BLOCKS_PER_STAGE,
    block_stage,
    removable_by_stage,
    stage_budget,
)

DRAW_STRIDE = 1_000_003     # draws per run seed (a prime): draw < DRAW_STRIDE
DRAW_OFFSET = 2 ** 32       # every draw seed lies above every run seed (θ_0 is seeded with the run seed)
MAX_RUN_SEED = 2 ** 31      # run seeds 0 <= seed < MAX_RUN_SEED; draw seeds stay below 2**63


def inverted(scores: Mapping[str, float]) -> dict[str, float]:
    """The negated scores, same order: `select_blocks(inverted(s), p, model=m)` removes the p
    highest-scoring blocks within the stage budgets (the inverted-criterion control)."""
    return {n: -float(s) for n, s in scores.items()}


def stage_counts(plan_or_removed: Plan | Iterable[str], model: nn.Module) -> dict[int, int]:
    """How many blocks each stage of `model` loses: {stage: count} for every stage (1-based, as
    `surgery.block_stage`), 0 for untouched stages. Takes a `Plan` or the removed block names."""
    removed = _names(plan_or_removed)
    stage_of = block_stage(model)
    unknown = [n for n in removed if n not in stage_of]
    if unknown:
        raise LotteryError(f"{unknown[0]!r} is not a residual block of {_label(model)}; blocks: "
                           f"{', '.join(stage_of)}")
    counts = dict.fromkeys(sorted(set(stage_of.values())), 0)
    for n in removed:
        counts[stage_of[n]] += 1
    return counts


def same_stage_random(removed: list[str], model: nn.Module, seed: int,
                      min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE) -> list[str]:
    """Random removable blocks with exactly the per-stage counts of `removed`, in forward order.

    Each stage's removable blocks are permuted (stages in order, every stage drawn, so one
    stage's choice does not depend on the others' counts) with a generator seeded by `seed`
    (see `draw_seed`), and the first count of each stage are taken."""
    counts = stage_counts(removed, model)
    by_stage = removable_by_stage(model, min_blocks_per_stage)
    allowed = [n for names in by_stage.values() for n in names]
    bad = [n for n in _names(removed) if n not in allowed]
    if bad:
        raise LotteryError(f"block {bad[0]!r} is not removable; removable blocks: {', '.join(allowed)}")
    gen = _generator(seed)
    chosen: set[str] = set()
    for stage, names in by_stage.items():
        order = torch.randperm(len(names), generator=gen).tolist()
        chosen |= {names[i] for i in order[:counts[stage]]}
    return [n for n in allowed if n in chosen]


def uniform_blocks(model: nn.Module, p: int, min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE) -> list[str]:
    """The plain shallower network: `p` blocks spread over the stages as evenly as their budgets
    allow (the remainder to the earliest stages; where a stage's budget binds, the rest goes to
    the others the same way), always the LAST removable blocks of each stage, in forward order.

    ResNet56 with p=12 loses layerX.5..layerX.8 of every stage: it becomes a ResNet32."""
    by_stage = removable_by_stage(model, min_blocks_per_stage)
    cap = {s: n for s, n in stage_budget(model, min_blocks_per_stage).items() if s in by_stage}
    limit = sum(cap.values())
    if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p <= limit:
        raise LotteryError(f"p must be an integer in 0..{limit} (the blocks {_label(model)} may lose with "
                           f"min_blocks_per_stage={min_blocks_per_stage}), got {p!r}")
    take = dict.fromkeys(cap, 0)
    left = p
    while left:
        open_stages = [s for s in cap if take[s] < cap[s]]
        share, extra = divmod(left, len(open_stages))
        for i, s in enumerate(open_stages):
            give = min(cap[s] - take[s], share + (i < extra))
            take[s] += give
            left -= give
    return [n for s, names in by_stage.items() for n in names[len(names) - take[s]:]]


def draw_seed(seed: int, draw: int) -> int:
    """The seed of random draw number `draw` (0 <= draw < DRAW_STRIDE) of run seed `seed`
    (0 <= seed < MAX_RUN_SEED): DRAW_OFFSET + seed * DRAW_STRIDE + draw.

    One-to-one on that range, and always >= 2**32, so no draw shares its stream with θ_0 or
    the scoring data of any run (both seeded with the run seed itself); < 2**63, valid for
    torch, numpy and random."""
    for label, value, high in (("seed", seed, MAX_RUN_SEED), ("draw", draw, DRAW_STRIDE)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < high:
            raise LotteryError(f"{label} must be an integer in 0..{high - 1}, got {value!r}")
    return DRAW_OFFSET + seed * DRAW_STRIDE + draw


def shuffled_labels(batches: Iterable[Batch], seed: int) -> list[Batch]:
    """The same batches (same image tensors, same sizes) with the labels permuted across all
    scoring images by a generator seeded with `seed`: the class signal is gone, the images stay."""
    data = _checked(batches, "shuffled_labels")
    labels = torch.cat([y.cpu() for _, y in data])
    labels = labels[torch.randperm(len(labels), generator=_generator(seed))]
    out, start = [], 0
    for x, y in data:
        out.append((x, labels[start:start + len(y)].to(y.device)))
        start += len(y)
    return out


def random_inputs(batches: Iterable[Batch], seed: int) -> list[Batch]:
    """The same labels and shapes with every image replaced by standard normal noise (noise in the
    normalized input space: mean 0, std 1 per channel like normalized data), seeded with `seed`."""
    gen = _generator(seed)
    return [(torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device), y)
            for x, y in _checked(batches, "random_inputs")]


def _names(plan_or_removed) -> list[str]:
    if isinstance(plan_or_removed, Plan):
        return list(plan_or_removed.removed)
    if isinstance(plan_or_removed, str) or not isinstance(plan_or_removed, Iterable):
        raise LotteryError(f"expected a Plan or a list of block names, got {plan_or_removed!r}")
    names = [str(n) for n in plan_or_removed]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise LotteryError(f"block {twice[0]!r} is listed twice")
    return names


def _generator(seed: int) -> torch.Generator:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2 ** 63:
        raise LotteryError(f"seed must be an integer in 0..2**63-1, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _checked(batches, name: str) -> list[Batch]:
    batches = list(batches) if batches is not None else []
    if not batches:
        raise LotteryError(f"{name} needs at least one scoring batch (see lottery_core.criteria.scoring_batches)")
    return check_batches(name, batches, needs_data=True)
