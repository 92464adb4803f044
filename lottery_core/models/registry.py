"""The model registry: a model is one decorated builder in its own file under `lottery_core/models/`
(the package imports every module there), as torchvision's `register_model`:

    @register_model("resnet20")
    def resnet20(num_classes: int = 10, shortcut: str = "A") -> nn.Module: ...

What the run config asks of a model (its options, its stage budget, its traits) is read from the
builder's signature and from the model itself (`skeleton`, `surgery.stage_budget`,
`criteria.applicability.model_traits`), never from a second table.
"""
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn as nn

from lottery_core.errors import LotteryError, choose

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make `build(name, ...)` call `builder(num_classes=..., **options)`."""
    if name in _BUILDERS:
        raise LotteryError(f"model {name!r} is registered twice")
    _BUILDERS[name] = builder
    skeleton.cache_clear()


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: `@register_model("resnet20")` over a builder `f(num_classes=10, **options)`
    registers it under `name` and returns it unchanged."""
    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        register(name, builder)
        return builder

    return decorate


def names() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_BUILDERS)


def options(name: str) -> set[str]:
    """Keyword options a registered builder takes besides num_classes (e.g. {"shortcut"})."""
    import inspect

    choose("model", name, _BUILDERS)
    params = inspect.signature(_BUILDERS[name]).parameters
    return {n for n, p in params.items() if n != "num_classes" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build(name: str, num_classes: int = 10, *, seed: int | None = None, **options) -> nn.Module:
    """Build a freshly initialised model (on the CPU). With `seed`, its weights are those that
    `torch.manual_seed(seed)` then `build(name, ...)` gives, drawn under `torch.random.fork_rng`: the
    caller's random stream is neither read nor advanced. Without (None), initialisation draws from
    torch's global RNG, as it stands: seed it first."""
    choose("model", name, _BUILDERS)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise LotteryError(f"num_classes must be a positive integer, got {num_classes!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise LotteryError(f"seed must be an integer or None, got {seed!r}")
    try:
        if seed is None:
            return _BUILDERS[name](num_classes=num_classes, **options)
        with torch.random.fork_rng(devices=[]):   # the CPU stream, the only one a build draws from
            torch.default_generator.manual_seed(seed)   # = torch.manual_seed's CPU part; CUDA untouched
            return _BUILDERS[name](num_classes=num_classes, **options)
    except TypeError as err:  # an option the builder does not take
        raise LotteryError(f"model {name!r}: {err}") from None


@lru_cache(maxsize=32)
def skeleton(name: str, **options) -> nn.Module:
    """The model `name` (10 classes, `options` as for `build`) built on the meta device: its modules
    and block layout without weights (no memory, no random draw; milliseconds even for resnet50).
    What the run config's model rules read: `surgery.stage_budget(skeleton(name))` and
    `criteria.applicability.model_traits(skeleton(name))`. Shared between callers (cached): do not
    modify it."""
    choose("model", name, _BUILDERS)
    try:
        with torch.device("meta"):
            return _BUILDERS[name](num_classes=10, **options)
    except TypeError as err:  # an option the builder does not take
        raise LotteryError(f"model {name!r}: {err}") from None
