"""Scoring entry points: per weight (`score_weights`) and per removable block (`score_blocks`)."""
from collections.abc import Iterable

import torch
import torch.nn as nn

from lottery_core.criteria import registry
from lottery_core.criteria.applicability import model_traits, refusal
from lottery_core.criteria.common import Batch, check_batches, scoring_copy
from lottery_core.criteria.degenerate import check_scores
from lottery_core.errors import LotteryError, choose
from lottery_core.surgery import DEFAULT_MIN_BLOCKS_PER_STAGE, block_parameters, removable_blocks

AGGREGATES = ("sum", "mean")


def score_weights(model: nn.Module, criterion: str, batches: Iterable[Batch] | None = None, *,
                  bn_mode: str | None = None, **options) -> dict[str, torch.Tensor]:
    """Per-weight scores (higher = keep) of the conv and linear weights, keyed like named_parameters().

    `batches`: (x, y) pairs, x normalized on the model's device (see `scoring_batches`); data-free
    criteria (random, magnitude, synflow) accept None. `bn_mode`: "train" (batch statistics) or
    "eval" (running statistics); None = the criterion's default (`describe`), except that a
    data-driven criterion whose default is "eval" scores in "train" mode while every BatchNorm
    still holds its placeholder statistics (mean 0, variance 1: a θ_0 that has seen no batch),
    where eval mode would not normalize at all (see `default_bn_mode`). Options a criterion
    does not read are ignored, unknown ones raise. The model, its .grad, buffers and mode are left
    as they were (scoring runs on a copy with cleared gradients). Scores are detached tensors on
    the model's device (float64 for synflow and random). A criterion that cannot score this kind
    of network (`applicability`: SynFlow on LayerNorm networks, activation criteria on transformer
    layers) raises a LotteryError that says why."""
    c = registry.get(criterion, "weight")
    check_applies(c.name, model)
    return _weights(c, model, batches, bn_mode, options)


def score_blocks(model: nn.Module, criterion: str, batches: Iterable[Batch] | None = None, *,
                 bn_mode: str | None = None, aggregate: str = "sum",
                 min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE, **options) -> dict[str, float]:
    """One score per removable block (higher = keep), in forward order.

    Weight-level criteria are aggregated over the block's weights (`aggregate` "sum" or "mean");
    block-level criteria (hrank, expectabs, kl, pls, cka, random) score the block directly.
    "sum" (the paper's reading) grows with the block's size: a stage-3 CIFAR ResNet block has 16x
    the weights of a stage-1 block (64² vs 16² per 3x3 conv), so sums are biased toward removing
    early blocks; "mean" is the per-weight mean (units of one weight's score), free of that bias.
    Activation criteria take `target` ("branch", default: the residual branch f(x); "output":
    the block's output relu(x + f(x)), the paper's literal reading), see `common.TARGETS`.
    Other arguments as `score_weights`.

    Degenerate scores are refused (LotteryError, one line, with the likely cause): all equal,
    all zero or some not finite over two or more blocks, where block order, the tie-break of
    `select_blocks`, would choose the ticket (`degenerate`; the `random` control is exempt)."""
    choose("aggregate", aggregate, AGGREGATES)
    c = registry.get(criterion, "block")
    check_applies(c.name, model)
    blocks = removable_blocks(model, min_blocks_per_stage)
    if not blocks:
        raise LotteryError(f"no block of {type(model).__name__} is removable with "
                           f"min_blocks_per_stage={min_blocks_per_stage}")
    if c.level == "weight":
        weights = _weights(c, model, batches, bn_mode, options)
        scores = {}
        for b in blocks:
            parts = [weights[k] for k in block_parameters(model, b) if k in weights]
            total = sum(float(s.double().sum()) for s in parts)
            scores[b] = total / sum(s.numel() for s in parts) if aggregate == "mean" else total
    else:
        mode, kwargs = _prepare(c, model, bn_mode, options)
        data = check_batches(c.name, batches, c.needs_data)
        scored = scoring_copy(model, mode)
        result = c.fn(scored, blocks, data, **kwargs)
        scores = {b: float(result[b]) for b in blocks}
    check_scores(c.name, model, scores, needs_data=c.needs_data)
    return scores


def check_applies(criterion: str, model: nn.Module) -> None:
    """LotteryError with the reason if `criterion` cannot score `model` (`applicability.refusal`)."""
    reason = refusal(criterion, model_traits(model))
    if reason is not None:
        raise LotteryError(reason)


def _weights(c: registry.Criterion, model: nn.Module, batches, bn_mode, options) -> dict[str, torch.Tensor]:
    mode, kwargs = _prepare(c, model, bn_mode, options)
    data = check_batches(c.name, batches, c.needs_data)
    scored = scoring_copy(model, mode)
    with torch.enable_grad():
        result = c.fn(scored, data, **kwargs)
    return {k: v.detach().contiguous() for k, v in result.items()}


def default_bn_mode(c: registry.Criterion, model: nn.Module) -> str:
    """The BatchNorm mode `c` scores `model` in when the caller passes none.

    The criterion's registered mode, except "train" for a data-driven "eval" criterion (the
    activation criteria, KL, CKA) while the running statistics are placeholders: at θ_0 they are
    mean 0 and variance 1, eval-mode BatchNorm then passes the stream through unnormalized and an
    activation grows with depth whatever the block does (expectABS on the branch: mean |Spearman ρ|
    with the block index 0.99 in eval mode, 0.38 in train mode, tests/test_criteria_properties.py).
    Trained running statistics approximate the batch statistics that train mode uses."""
    mode = c.bn_mode or "eval"
    if mode == "eval" and c.needs_data and placeholder_statistics(model):
        return "train"
    return mode


def placeholder_statistics(model: nn.Module) -> bool:
    """Whether `model` has BatchNorm layers and every one's running statistics are still the
    initial mean 0 and variance 1 (it has seen no batch in train mode)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and m.running_mean is not None]
    return bool(norms) and all(not m.running_mean.any() and bool((m.running_var == 1).all()) for m in norms)


def _prepare(c: registry.Criterion, model: nn.Module, bn_mode, options: dict) -> tuple[str, dict]:
    """The BatchNorm mode to score in and the options `c` reads; bad options raise."""
    kwargs = registry.check_options(c, {**options, "bn_mode": bn_mode})   # the declared options
    kwargs.pop("bn_mode", None)
    mode = bn_mode if bn_mode is not None else default_bn_mode(c, model)
    choose("bn_mode", mode, registry.BN_MODES)
    return mode, kwargs
