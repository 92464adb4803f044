"""The block view of a network: which residual blocks exist, which stage they belong to, which may go.

A *block kind* says, for one residual block class, whether an instance has an identity shortcut,
which modules silence it (zeroing their weight and bias makes every residual branch output 0,
so the block becomes the identity) and which BatchNorm ends its residual branch (the conv blocks;
a transformer encoder layer has two branches ending in a Linear each, and no such BatchNorm).
Registering a new class is one `BLOCK_KINDS` line.
"""
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from lottery_core.errors import LotteryError

DEFAULT_MIN_BLOCKS_PER_STAGE = 2  # the authors' code keeps at least two blocks in every stage


@dataclass(frozen=True)
class BlockKind:
    """How to read one residual block class.

    `has_identity_shortcut`: the block adds its input unchanged (it may be removed).
    `silencers`: the modules whose weight and bias, all zero, make every residual branch output
    exactly 0 (the block is then the identity on its input, or relu of it).
    `last_bn`: the BatchNorm that ends the single residual branch of a conv block (activation
    criteria hook its output); None for blocks without one (transformer encoder layers)."""

    has_identity_shortcut: Callable[[nn.Module], bool]
    silencers: Callable[[nn.Module], tuple[nn.Module, ...]]
    last_bn: Callable[[nn.Module], nn.BatchNorm2d] | None


def _resnet_identity(block: nn.Module) -> bool:
    conv = block.conv1
    return block.downsample is None and conv.stride == (1, 1)


def _conv_kind(has_identity_shortcut: Callable[[nn.Module], bool],
               bn: Callable[[nn.Module], nn.BatchNorm2d]) -> BlockKind:
    """A conv block with one residual branch ending in BatchNorm `bn`: zeroing its γ and β silences it."""
    return BlockKind(has_identity_shortcut, lambda b: (bn(b),), bn)


# torchvision's EncoderBlock: x = x + attn(ln_1(x)); y = x + mlp(ln_2(x)). Its residual branches
# end in the attention's output projection and the MLP's last Linear (mlp[3]): both zero, the
# layer is the identity. Every encoder layer keeps the token shape: all have identity shortcuts.
# Keyed by the class's import path, so that reading a model never imports torchvision (the run
# config checks a CIFAR ResNet before it loads): a module holds a torchvision block only once
# torchvision has been imported. Exact classes, not subclasses.
BLOCK_KINDS: dict[str, BlockKind] = {
    "lottery_core.models.cifar_resnet.BasicBlock": _conv_kind(_resnet_identity, lambda b: b.bn2),
    "torchvision.models.resnet.BasicBlock": _conv_kind(_resnet_identity, lambda b: b.bn2),
    "torchvision.models.resnet.Bottleneck": _conv_kind(_resnet_identity, lambda b: b.bn3),
    "torchvision.models.mobilenetv2.InvertedResidual": _conv_kind(lambda b: bool(b.use_res_connect),
                                                                  lambda b: b.conv[-1]),
    "torchvision.models.vision_transformer.EncoderBlock": BlockKind(
        lambda b: True, lambda b: (b.self_attention.out_proj, b.mlp[3]), None),
}


@dataclass(frozen=True)
class Block:
    """One residual block: qualified name (`layer2.3`), its container (`layer2`) and stage number."""

    name: str
    container: str
    index: int
    stage: int
    identity: bool


def _kind(module: nn.Module) -> BlockKind | None:
    cls = type(module)
    return BLOCK_KINDS.get(f"{cls.__module__}.{cls.__qualname__}")


def residual_blocks(model: nn.Module) -> list[Block]:
    """Every residual block in forward order (children of `nn.Sequential` containers).

    A stage is a run of consecutive blocks in one container; a block without an identity
    shortcut (it changes stride or width) opens a new stage.
    """
    blocks: list[Block] = []
    stage = 0
    for container_name, container in model.named_modules():
        if not isinstance(container, nn.Sequential):
            continue
        previous_was_block = False
        for index, (child_name, child) in enumerate(container.named_children()):
            kind = _kind(child)
            if kind is None:
                previous_was_block = False
                continue
            if child_name != str(index):
                raise LotteryError(f"block {container_name}.{child_name} is named, not numbered: surgery maps weights "
                                   f"by index; hold the blocks in nn.Sequential(*blocks) (as models.build does)")
            identity = kind.has_identity_shortcut(child)
            if not (previous_was_block and identity):
                stage += 1
            name = f"{container_name}.{index}" if container_name else str(index)
            blocks.append(Block(name, container_name, index, stage, identity))
            previous_was_block = True
    return blocks


def _shape_preserving(model: nn.Module, names: list[str], input_size: tuple[int, ...]) -> set[str]:
    """Names among `names` whose input and output shapes match on one example input."""
    shapes: dict[str, bool] = {}
    modules = dict(model.named_modules())
    hooks = [
        modules[n].register_forward_hook(
            lambda m, args, out, n=n: shapes.__setitem__(n, args[0].shape == out.shape))
        for n in names
    ]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return {n for n, same in shapes.items() if same}


def removable_blocks(model: nn.Module, min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE,
                     input_size: tuple[int, int, int] | None = None) -> list[str]:
    """Qualified names of the blocks that may be removed, in forward order.

    A block is removable when it has an identity shortcut (no downsampling path: for every
    registered block kind this implies equal input and output shapes; pass `input_size`, e.g.
    (3, 32, 32), to also verify the shapes with one forward pass) and its stage has more than
    `min_blocks_per_stage` blocks. How many may go from one stage is bounded by
    `stage_budget`; `select_blocks` honours it.
    """
    if min_blocks_per_stage < 1:
        raise LotteryError(f"min_blocks_per_stage must be >= 1, got {min_blocks_per_stage}")
    blocks = residual_blocks(model)
    if not blocks:
        kinds = ", ".join(sorted(path.rsplit(".", 1)[1] for path in BLOCK_KINDS))
        raise LotteryError(f"{type(model).__name__} has no removable residual blocks "
                           f"(known block types: {kinds})")
    sizes = stage_sizes(blocks)
    candidates = [b.name for b in blocks if b.identity and sizes[b.stage] > min_blocks_per_stage]
    if input_size is None:  # the block kinds' identity rule already implies equal shapes
        return candidates
    preserving = _shape_preserving(model, candidates, input_size) if candidates else set()
    return [n for n in candidates if n in preserving]


def stage_sizes(blocks: list[Block]) -> dict[int, int]:
    """Number of blocks in each stage."""
    sizes: dict[int, int] = {}
    for b in blocks:
        sizes[b.stage] = sizes.get(b.stage, 0) + 1
    return sizes


def removable_by_stage(model: nn.Module, min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE
                       ) -> dict[int, list[str]]:
    """{stage: its removable blocks in forward order}, only stages that have some, in forward order."""
    stage_of = block_stage(model)
    by_stage: dict[int, list[str]] = {}
    for name in removable_blocks(model, min_blocks_per_stage):
        by_stage.setdefault(stage_of[name], []).append(name)
    return by_stage


def stage_budget(model: nn.Module, min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE) -> dict[int, int]:
    """The stage budget for p, the one rule for how many blocks each stage may lose.

    Returns {stage: blocks it may lose} for every stage (1-based, forward order, as `block_stage`):
    min(its removable blocks, its size - `min_blocks_per_stage`), 0 where none may go. The largest
    p is the sum (`max_removable`); `select_blocks`, `uniform_blocks`, `remove_blocks`, the config
    check of `pruning.p` and `lottery info` all ask this function.
    ResNet56 (9 blocks per stage), min_blocks_per_stage=2: {1: 7, 2: 7, 3: 7}, so p <= 21.
    """
    sizes = stage_sizes(residual_blocks(model))
    by_stage = removable_by_stage(model, min_blocks_per_stage)
    return {stage: min(len(by_stage.get(stage, [])), max(size - min_blocks_per_stage, 0))
            for stage, size in sizes.items()}


def max_removable(model: nn.Module, min_blocks_per_stage: int = DEFAULT_MIN_BLOCKS_PER_STAGE) -> int:
    """The largest p: the sum of the stage budgets (`stage_budget`)."""
    return sum(stage_budget(model, min_blocks_per_stage).values())


def block_stage(model: nn.Module) -> dict[str, int]:
    """Stage number (1-based, forward order) of every residual block."""
    return {b.name: b.stage for b in residual_blocks(model)}


def _block_kind(model: nn.Module, name: str) -> tuple[nn.Module, BlockKind]:
    block = model.get_submodule(name)
    kind = _kind(block)
    if kind is None:
        raise LotteryError(f"{name!r} is not a residual block")
    return block, kind


def last_bn(model: nn.Module, name: str) -> nn.BatchNorm2d:
    """The BatchNorm that ends the residual branch of block `name` (zero it to silence the block).
    LotteryError for a block without one (a transformer encoder layer: see `silencers`)."""
    block, kind = _block_kind(model, name)
    if kind.last_bn is None:
        raise LotteryError(f"block {name!r} ({type(block).__name__}) has no BatchNorm ending a residual branch")
    return kind.last_bn(block)


def has_branch_bn(model: nn.Module, name: str) -> bool:
    """Whether block `name` has one residual branch ending in a BatchNorm (`last_bn`): the conv blocks."""
    return _block_kind(model, name)[1].last_bn is not None


def silencers(model: nn.Module, name: str) -> tuple[nn.Module, ...]:
    """The modules whose weight and bias, zeroed, make block `name` the identity (its residual
    branches output exactly 0): the last BatchNorm of a conv block; the attention output
    projection and the last MLP Linear of a transformer encoder layer."""
    block, kind = _block_kind(model, name)
    return kind.silencers(block)


def is_silenced(model: nn.Module, name: str) -> bool:
    """Whether block `name` is provably the identity: every silencer has weight and bias all zero."""
    return all(m.weight is not None and m.bias is not None and not m.weight.any() and not m.bias.any()
               for m in silencers(model, name))


def block_parameters(model: nn.Module, name: str) -> dict[str, nn.Parameter]:
    """Parameters of block `name`, keyed by their qualified names in `model`."""
    prefix = name + "."
    return {k: p for k, p in model.named_parameters() if k.startswith(prefix)}
