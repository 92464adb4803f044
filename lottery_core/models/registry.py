"""The model registry: a new architecture is one file plus one `register` line below (and its\nline in `catalog.py`, what the run config knows of it before torch is imported)."""
from collections.abc import Callable

import torch
import torch.nn as nn

from lottery_core.errors import LotteryError, choose

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make `build(name, ...)` call `builder(num_classes=..., **options)`."""
    if name in _BUILDERS:
        raise LotteryError(f"model {name!r} is registered twice")
    _BUILDERS[name] = builder


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


def _register_shipped() -> None:
    from lottery_core.models.cifar_resnet import cifar_resnet
    from lottery_core.models.torchvision_nets import torchvision_model
    from lottery_core.models.vit import VIT_SIZES, vit

    for depth in (20, 32, 44, 56, 110):
        register(f"resnet{depth}", cifar_resnet(depth))
    for name in ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "vgg11_bn"):
        register(name, torchvision_model(name))
    for name in VIT_SIZES:
        register(name, vit(name))


_register_shipped()
