"""Model registry. `build(name, num_classes=10, **options)`; `names()` lists what is registered.

Adding an architecture: write one file with a builder `f(num_classes, **options) -> nn.Module`,
add one `register(...)` line in `registry.py` and its line in `catalog.py` (the static table the
run config reads without torch; a test checks the two agree).
"""
import importlib

from lottery_core.models.catalog import ARCHITECTURES, max_removable, names, options

# name -> the module that defines it, imported on first use (torch, torchvision); names, options
# and layouts come from the static catalog, which the run config reads before torch is imported
_LAZY = {"build": "registry", "register": "registry", "BasicBlock": "cifar_resnet", "CifarResNet": "cifar_resnet",
         "INITS": "cifar_resnet", "SHORTCUTS": "cifar_resnet"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


__all__ = ["ARCHITECTURES", "build", "max_removable", "names", "options", "register", "BasicBlock", "CifarResNet",
           "INITS", "SHORTCUTS"]
