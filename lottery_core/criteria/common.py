"""What every criterion shares: the private scoring copy, checked batches, the scored weights,
the mean loss over all scoring images and one-pass collection of block activations."""
import copy
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from lottery_core.criteria.target import TARGETS
from lottery_core.errors import LotteryError, choose
from lottery_core.surgery import last_bn

Batch = tuple[torch.Tensor, torch.Tensor]



def check_batches(name: str, batches: Iterable[Batch] | None, needs_data: bool) -> list[Batch] | None:
    """The batches as a list of (x, y); None for data-free criteria without data; LotteryError otherwise."""
    if batches is None:
        if needs_data:
            raise LotteryError(f"criterion {name!r} needs data: pass scoring batches "
                               f"(see lottery_core.criteria.scoring_batches)")
        return None
    batches = list(batches)
    if not batches:
        raise LotteryError(f"criterion {name!r} needs at least one scoring batch; got an empty batch list")
    for i, batch in enumerate(batches):
        if not (isinstance(batch, tuple | list) and len(batch) == 2):
            raise LotteryError(f"scoring batch {i} must be a pair (x, y), got {type(batch).__name__}")
        x, y = batch
        if not (torch.is_tensor(x) and x.is_floating_point() and x.dim() >= 2):
            raise LotteryError(f"scoring batch {i}: x must be a float tensor (N, ...), normalized")
        if not (torch.is_tensor(y) and y.dtype == torch.int64 and y.shape == (x.shape[0],)):
            raise LotteryError(f"scoring batch {i}: y must be int64 labels of shape ({x.shape[0]},)")
        if x.shape[0] == 0:
            raise LotteryError(f"scoring batch {i} is empty")
    return [(x, y) for x, y in batches]


def scoring_copy(model: nn.Module, bn_mode: str | None) -> nn.Module:
    """A deep copy to score on: gradients cleared, every parameter trainable, eval mode except
    BatchNorm layers in train mode when `bn_mode == "train"` (dropout stays off: deterministic).
    The caller's model, its .grad, buffers and mode are never touched."""
    scored = copy.deepcopy(model)
    for p in scored.parameters():
        p.grad = None
        p.requires_grad_(True)
    scored.eval()
    if bn_mode == "train":
        for m in scored.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()
    return scored


def weight_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The scored weights, keyed like named_parameters(): `.weight` of every Conv2d and Linear
    layer, and the packed query/key/value projection of every MultiheadAttention
    (`in_proj_weight`, or `q/k/v_proj_weight` when its key and value dimensions differ), which is
    a Linear in all but name (its output projection `out_proj` is a Linear)."""
    found = {}
    for name, m in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(m, nn.Conv2d | nn.Linear):
            found[f"{prefix}weight"] = m.weight
        elif isinstance(m, nn.MultiheadAttention):
            for attr in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                if getattr(m, attr, None) is not None:
                    found[f"{prefix}{attr}"] = getattr(m, attr)
    return found


def mean_losses(model: nn.Module, batches: list[Batch], temperature: float = 1.0) -> Iterator[torch.Tensor]:
    """Per batch, its share of the mean cross-entropy over all scoring images (logits / temperature).

    The shares sum to the mean loss, so in eval mode a score does not depend on how the images
    are split into batches."""
    total = sum(len(y) for _, y in batches)
    for x, y in batches:
        yield F.cross_entropy(model(x) / temperature, y, reduction="sum") / total


def grad_of_mean_loss(model: nn.Module, weights: list[torch.Tensor], batches: list[Batch],
                      temperature: float = 1.0) -> list[torch.Tensor]:
    """∂L/∂w of the mean loss L over all scoring images (no graph kept)."""
    grads = [torch.zeros_like(w) for w in weights]
    for loss in mean_losses(model, batches, temperature):
        for acc, g in zip(grads, torch.autograd.grad(loss, weights), strict=True):
            acc += g
    return grads


def hooked_module(model: nn.Module, name: str, target: str) -> nn.Module:
    """The module whose forward output is `target` ("branch" or "output", see TARGETS) of block `name`
    (a conv block; transformer layers are refused before, `applicability`)."""
    choose("target", target, TARGETS)
    return last_bn(model, name) if target == "branch" else model.get_submodule(name)


@torch.no_grad()
def reduce_block_outputs(model: nn.Module, blocks: list[str], batches: list[Batch],
                         reduce: Callable[[str, torch.Tensor, torch.Tensor], None], target: str = "output") -> None:
    """One forward pass per batch; forward hooks call `reduce(block, activation, y)` for every block.

    `activation` is the block's `target` (see TARGETS): "output" the block's output, "branch" its
    residual branch f(x) before the addition. Reducing inside the hook keeps memory at one batch of
    one block's activation; `reduce` must not keep the tensor itself (torchvision blocks add the
    shortcut to the branch output in place after the hook)."""
    modules = {name: hooked_module(model, name, target) for name in blocks}
    labels: list[torch.Tensor] = []
    hooks = [module.register_forward_hook(lambda m, args, out, name=name: reduce(name, out, labels[-1]))
             for name, module in modules.items()]
    try:
        for x, y in batches:
            labels.append(y)
            model(x)
    finally:
        for h in hooks:
            h.remove()
