"""Degenerate block scores, refused with their likely cause: block order never chooses a ticket.

`select_blocks` removes the p lowest scores and breaks ties by block order (a silenced block
first, then the earlier block). When a criterion's scores cannot rank the blocks at all, that
tie-break would choose the ticket silently. `score_blocks` therefore refuses, in one line that
names the criterion, the model, what was degenerate and the likely cause, a score table that is

- **not finite**: some block scores nan or ±inf ("2 of 9 block scores are nan"),
- **all zero**: "all 9 block scores are exactly 0",
- **all equal**: "all 9 block scores are equal (0.5)" (exactly equal: max == min).

Partial ties are not degenerate (the other blocks are still ranked): a silenced block tied with
a live block that KL sees below float32 resolution, several silenced blocks at 0.

Which scores are checked:
- Every block criterion but `random`: a control whose whole point is to let chance choose (its
  uniform draws are distinct with probability 1). The controls never score anything new
  (`inverted` negates a checked table; `same_stage_random` and `uniform` read no scores); the
  `shuffled_labels` and `random_inputs` controls score with the criterion itself, and a
  degenerate table there is refused like any other.
- The consensus: each member's table (`score_blocks` scores it) and the fused table, which is
  all equal when the members' rankings cancel (two members in exactly opposite order).
- A single removable block is not ranked and need not be: p ≤ 1 removes it or nothing, whatever
  its score, so no tie-break chooses; only a non-finite score is refused there.

The likely cause is the first entry of `CAUSES` whose test holds (`cause`); the last is the
generic one. A cause known from the architecture alone belongs up front as well, as a refusal
in `applicability` (SynFlow on bounded activations, on LayerNorm), where the run config sees it
before anything trains.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn as nn

from lottery_core.errors import LotteryError

EXEMPT = ("random",)   # criteria whose scores are not checked (see the module docstring)

GENERIC = ("unknown (none of the known causes holds): the criterion cannot rank these blocks on this model; "
           "choose another criterion")


def check_scores(criterion: str, model: nn.Module, scores: Mapping[str, float], *, needs_data: bool) -> None:
    """LotteryError (one line) if `scores`, `criterion`'s block scores on `model`, are degenerate."""
    if criterion in EXEMPT:
        return
    what = degeneracy(scores)
    if what is None:
        return
    raise LotteryError(f"{criterion} cannot rank the blocks of {type(model).__name__}: {what}, so block order "
                       f"(the tie-break) would choose the ticket; likely cause: "
                       f"{cause(criterion, model, scores, needs_data=needs_data)}")


def degeneracy(scores: Mapping[str, float]) -> str | None:
    """What is degenerate about a table of block scores (see the module docstring), or None."""
    values = [float(s) for s in scores.values()]
    n = len(values)
    nan = sum(math.isnan(v) for v in values)
    inf = sum(math.isinf(v) for v in values)
    if nan or inf:
        kinds = " or ".join(k for k, count in (("nan", nan), ("inf", inf)) if count)
        return f"{nan + inf} of {n} block scores are {kinds}"
    if n < 2 or max(values) != min(values):
        return None
    if values[0] == 0:
        return f"all {n} block scores are exactly 0"
    return f"all {n} block scores are equal ({values[0]:.6g})"


def _nonfinite_weights(criterion, model, scores, needs_data) -> str | None:
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        total = sum(1 for _ in model.parameters())
        return (f"the model's weights are not finite ({len(bad)} of {total} parameter tensors hold nan or "
                f"inf, first {bad[0]}): training diverged or the checkpoint is broken")
    return None


def _nonfinite_scores(criterion, model, scores, needs_data) -> str | None:
    if any(not math.isfinite(float(s)) for s in scores.values()):
        return (f"{criterion}'s arithmetic overflowed or divided by zero on finite weights (non-finite "
                f"scoring images, or a network deep enough to overflow; SynFlow runs in float64 for this)")
    return None


def _synflow_silent(criterion, model, scores, needs_data) -> str | None:
    if criterion == "synflow" and all(float(s) == 0 for s in scores.values()):
        return ("SynFlow's positive all-ones pass carries no gradient to the blocks: a bounded activation "
                "(ReLU6, Hardtanh) saturates, where its slope is exactly 0 (refused up front where the "
                "activation is a module; F.relu6 called as a function is not seen), or a zero layer lies "
                "on the path; use snip, grasp, kl or cka")
    return None


def _all_silenced(criterion, model, scores, needs_data) -> str | None:
    from lottery_core.surgery import is_silenced

    if all(is_silenced(model, b) for b in scores):
        return ("every removable block is silenced (its residual branch outputs exactly 0): each already "
                "is the identity, so none is more important than another")
    return None


def _zero_head(criterion, model, scores, needs_data) -> str | None:
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if (needs_data or criterion == "synflow") and heads and not heads[-1].weight.any():
        return ("the classifier head is zero (the last Linear's weight is all 0, torchvision's fine-tuning "
                "init of a ViT head): the output and every gradient ignore the blocks")
    return None


def _full_rank(criterion, model, scores, needs_data) -> str | None:
    if criterion == "hrank" and min(float(s) for s in scores.values()) > 0:
        return ("every map of every block has the same rank, full rank as in an untrained network (random "
                "convolutions give full-rank maps: on resnet20 at θ_0 every branch scores 1.0 on 8 of 10 "
                "seeds); HRank tells blocks apart after training (ticket_rewind), not at θ_0")
    return None


def _data_free(criterion, model, scores, needs_data) -> str | None:
    if not needs_data and criterion != "consensus":
        return (f"{criterion} is data-free and reads only the weights, which score every block alike "
                f"(a constant or copied initialization)")
    return None


def _consensus(criterion, model, scores, needs_data) -> str | None:
    if criterion == "consensus":
        return ("the members' rankings cancel out (every block's fused rank is the same: the members "
                "order the blocks in exactly opposite ways); choose other members or one criterion")
    return None


Cause = Callable[[str, nn.Module, Mapping[str, float], bool], str | None]

# (name, test): the first test that returns a text is the likely cause; GENERIC when none does.
CAUSES: tuple[tuple[str, Cause], ...] = (
    ("non-finite weights", _nonfinite_weights),
    ("non-finite arithmetic", _nonfinite_scores),
    ("SynFlow's saturated all-ones pass (bounded activations)", _synflow_silent),
    ("every block silenced", _all_silenced),
    ("a zero classifier head", _zero_head),
    ("HRank on full-rank (untrained) maps", _full_rank),
    ("a data-free criterion on identical block weights", _data_free),
    ("a consensus whose members cancel", _consensus),
)


def cause(criterion: str, model: nn.Module, scores: Mapping[str, float], *, needs_data: bool) -> str:
    """The likely cause of `criterion`'s degenerate `scores` on `model` (`CAUSES`, else `GENERIC`)."""
    for _, test in CAUSES:
        text = test(criterion, model, scores, needs_data)
        if text is not None:
            return text
    return GENERIC
