"""What the run config must know of every architecture, without importing torch or torchvision.

    names()                          every architecture `models.build` takes
    options("resnet20")              {"shortcut", "init"}: its builder's options
    traits("vit_tiny")               {"layernorm", "token_blocks"}: what some criteria refuse
    traits("mobilenet_v2")           {"bounded_activation"}: ReLU6 (SynFlow is refused)
    max_removable("resnet20", 2)     3: the largest p with 2 blocks kept per stage
    stage_budgets("resnet20", 2)     (1, 1, 1): how many blocks each stage may lose

A static table: `tests/test_models.py` checks it against the registered builders (names, options)
and the built networks (block layout) so that it cannot drift. Adding an architecture: its
builder's `register` line in `registry.py` and its line here.
"""
from dataclasses import dataclass

from lottery_core.errors import LotteryError, choose


@dataclass(frozen=True)
class Architecture:
    """`options`: builder options besides num_classes. `stages`: per stage (forward order), its
    residual blocks and how many of them have an identity shortcut (may be removed). `traits`:
    what some criteria and pipelines cannot work with (`lottery_core.criteria.applicability`)."""

    options: tuple[str, ...]
    stages: tuple[tuple[int, int], ...]
    traits: tuple[str, ...] = ()


def _cifar(depth: int) -> Architecture:
    n = (depth - 2) // 6   # blocks per stage; the first block of stages 2 and 3 downsamples
    return Architecture(("init", "shortcut"), ((n, n), (n, n - 1), (n, n - 1)))


ARCHITECTURES: dict[str, Architecture] = {
    **{f"resnet{d}": _cifar(d) for d in (20, 32, 44, 56, 110)},
    "resnet18": Architecture((), ((2, 2), (2, 1), (2, 1), (2, 1))),
    "resnet34": Architecture((), ((3, 3), (4, 3), (6, 5), (3, 2))),
    "resnet50": Architecture((), ((3, 2), (4, 3), (6, 5), (3, 2))),
    # ReLU6 after every expansion and depthwise conv (see traits: SynFlow's all-ones pass saturates it)
    "mobilenet_v2": Architecture((), ((1, 0), (2, 1), (3, 2), (4, 3), (3, 2), (3, 2), (1, 0)),
                                 ("bounded_activation",)),
    "vgg11_bn": Architecture((), ()),
    # one stage of identity encoder layers (models/vit.py); LayerNorm, token blocks (see traits)
    "vit_tiny": Architecture((), ((6, 6),), ("layernorm", "token_blocks")),
}


def names() -> list[str]:
    """Every architecture name, sorted."""
    return sorted(ARCHITECTURES)


def options(name: str) -> set[str]:
    """Keyword options the builder of `name` takes besides num_classes (e.g. {"shortcut", "init"})."""
    choose("model", name, ARCHITECTURES)
    return set(ARCHITECTURES[name].options)


def traits(name: str) -> set[str]:
    """Traits of `name` that some criteria or pipelines refuse (`criteria.applicability.TRAITS`)."""
    choose("model", name, ARCHITECTURES)
    return set(ARCHITECTURES[name].traits)


def max_removable(name: str, min_blocks_per_stage: int) -> int:
    """The largest p for `name`: the sum of its `stage_budgets`. LotteryError for a network without
    residual blocks."""
    return sum(stage_budgets(name, min_blocks_per_stage))


def stage_budgets(name: str, min_blocks_per_stage: int) -> tuple[int, ...]:
    """How many blocks each stage of `name` may lose (stage 1 first): min(identity blocks, stage size
    - min_blocks_per_stage), 0 for a stage of at most min_blocks_per_stage blocks (the rule of
    `surgery.stage_budget`, on the static layout). LotteryError for a network without residual blocks."""
    choose("model", name, ARCHITECTURES)
    stages = ARCHITECTURES[name].stages
    if not stages:
        raise LotteryError(f"{name} has no removable residual blocks")
    return tuple(min(identity, size - min_blocks_per_stage) if size > min_blocks_per_stage else 0
                 for size, identity in stages)
