"""Filter tickets: physically remove convolution filters through Torch-Pruning's dependency graph.

Only filters *inside* residual blocks are candidates (every conv of a block's residual branch but
the last one, no depthwise convs): the residual channels stay intact, which option-A (zero-pad)
ResNets require and which keeps filter tickets comparable across shortcut variants.
"""
import copy
import math
from collections.abc import Mapping

import torch
import torch.nn as nn

from lottery_core.accounting import count_filters, count_macs
from lottery_core.errors import LotteryError
from lottery_core.surgery.blocks import residual_blocks


def prunable_convs(model: nn.Module) -> list[str]:
    """Qualified names of the convolutions whose filters may be pruned (inner convs of blocks)."""
    names = []
    for block in residual_blocks(model):
        module = model.get_submodule(block.name)
        convs = [(n, m) for n, m in module.named_modules()
                 if isinstance(m, nn.Conv2d) and not n.startswith("downsample")]
        for n, conv in convs[:-1]:  # the last conv writes the residual channels: never pruned
            if conv.groups > 1:
                continue
            names.append(f"{block.name}.{n}")
    return names


def filter_scores(model: nn.Module, weight_scores: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-filter scores (higher = keep): the weight scores of each filter summed, per prunable conv."""
    scores = {}
    for name in prunable_convs(model):
        key = f"{name}.weight"
        if key not in weight_scores:
            raise LotteryError(f"weight scores lack {key!r}; score the model before pruning filters")
        scores[name] = weight_scores[key].detach().flatten(1).sum(1).double().cpu()
    return scores


def prune_filters(model: nn.Module, scores: Mapping[str, torch.Tensor], n: int,
                  input_size: tuple[int, int, int] = (3, 32, 32)) -> nn.Module:
    """A new model with the `n` lowest-scoring filters removed (ranked globally; each conv keeps one).

    `scores` maps prunable conv names to per-filter scores (see `filter_scores`). The returned
    model carries `pruning_history` (Torch-Pruning's), to replay the same cut on other weights.
    """
    allowed = set(prunable_convs(model))
    unknown = set(scores) - allowed
    if unknown:
        raise LotteryError(f"not prunable convolutions: {sorted(unknown)[:3]}; prunable: {sorted(allowed)[:6]}...")
    capacity = sum(len(s) - 1 for s in scores.values())
    if not 0 <= n <= capacity:
        raise LotteryError(f"cannot prune {n} filters; between 0 and {capacity} may go")
    ranked = sorted((float(v), name, i) for name, s in scores.items() for i, v in enumerate(s.tolist()))
    chosen: dict[str, list[int]] = {}
    for _, name, i in ranked:
        if sum(map(len, chosen.values())) == n:
            break
        if len(chosen.get(name, [])) < len(scores[name]) - 1:
            chosen.setdefault(name, []).append(i)
    pruned = copy.deepcopy(model)
    graph = _graph(pruned, input_size)
    for name, idxs in chosen.items():
        conv = pruned.get_submodule(name)
        graph.get_pruning_group(conv, _torch_pruning().prune_conv_out_channels, sorted(idxs)).prune()
    pruned.pruning_history = list(graph.pruning_history())
    return pruned


def replay_pruning(model: nn.Module, history, input_size: tuple[int, int, int] = (3, 32, 32)) -> nn.Module:
    """Apply a recorded filter pruning to a copy of `model` (same architecture, other weights: θ_i)."""
    pruned = copy.deepcopy(model)
    _graph(pruned, input_size).load_pruning_history(history)
    pruned.pruning_history = list(history)
    return pruned


def prune_filters_to_count(model: nn.Module, scores: Mapping[str, torch.Tensor], target_filters: int,
                           input_size: tuple[int, int, int] = (3, 32, 32)) -> nn.Module:
    """Prune the lowest-scoring filters until the model has `target_filters` filters (nearest count).

    In CIFAR and torchvision ResNets every candidate is one filter, so the count is met exactly;
    where a cut also removes coupled filters (MobileNetV2's depthwise convs) one correction step
    brings the count to the nearest reachable value.
    """
    capacity = sum(len(s) - 1 for s in scores.values())
    dense = count_filters(model)
    n = max(0, min(dense - target_filters, capacity))
    pruned = prune_filters(model, scores, n, input_size)
    removed = dense - count_filters(pruned)
    if removed and removed != dense - target_filters:
        n = max(0, min(round(n * (dense - target_filters) / removed), capacity))
        pruned = prune_filters(model, scores, n, input_size)
    return pruned


def prune_filters_to_macs(model: nn.Module, scores: Mapping[str, torch.Tensor], target_macs: int,
                          input_size: tuple[int, int, int] = (3, 32, 32)) -> nn.Module:
    """Prune the fewest lowest-scoring filters that bring the model's MACs to `target_macs` or below.

    Same global ranking as `prune_filters`; the result has the smallest n with
    MACs(prune_filters(model, scores, n)) <= target_macs, so it never costs more than the target
    and is less than one filter's worth of MACs below it (n - 1 filters would exceed it). A target
    at or above the dense MACs prunes nothing; one below what pruning every candidate reaches is
    refused. MACs(n) does not increase with n: prune_filters cuts greedily in rank order, so the
    cut of n + 1 filters contains the cut of n. The search brackets n between 0 and the capacity
    and narrows by interpolation on the MACs, falling back to bisection when one side stalls
    (about 4-8 prunings for a CIFAR ResNet). The model carries `pruning_history`.
    """
    target_macs = int(target_macs)
    dense_macs = count_macs(model, input_size)
    if target_macs >= dense_macs:
        return prune_filters(model, scores, 0, input_size)
    capacity = sum(len(s) - 1 for s in scores.values())
    hi, hi_model = capacity, prune_filters(model, scores, capacity, input_size)
    hi_macs = count_macs(hi_model, input_size)
    if hi_macs > target_macs:
        raise LotteryError(f"cannot bring MACs to {target_macs:,}: pruning all {capacity} prunable "
                           f"filters leaves {hi_macs:,} (dense {dense_macs:,})")
    lo, lo_macs = 0, dense_macs  # invariant: MACs(lo) > target >= MACs(hi)
    last_side, bisect = None, False
    while hi - lo > 1:
        if bisect:
            n = (lo + hi) // 2
        else:  # where the straight line between the bracket ends crosses the target
            n = lo + math.ceil((hi - lo) * (lo_macs - target_macs) / (lo_macs - hi_macs))
        n = min(max(n, lo + 1), hi - 1)
        pruned = prune_filters(model, scores, n, input_size)
        macs = count_macs(pruned, input_size)
        side = "hi" if macs <= target_macs else "lo"
        if side == "hi":
            hi, hi_model, hi_macs = n, pruned, macs
        else:
            lo, lo_macs = n, macs
        bisect, last_side = side == last_side, side  # two probes on one side: halve next
    return hi_model


def _torch_pruning():
    """Torch-Pruning, imported where filters are pruned (block tickets and the GPU check need none)."""
    try:
        import torch_pruning
    except ImportError:
        raise LotteryError("filter pruning needs Torch-Pruning: pip install torch-pruning==1.6.1") from None
    return torch_pruning


def _graph(model: nn.Module, input_size):
    """Torch-Pruning's DependencyGraph of `model`, traced in eval mode on one zero image."""
    tp = _torch_pruning()
    p = next(model.parameters())
    example = torch.zeros(1, *input_size, device=p.device, dtype=p.dtype)
    was_training = model.training
    model.eval()
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    model.train(was_training)
    return graph
