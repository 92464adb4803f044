"""Model registry. `build(name, num_classes=10, **options)`; `names()` lists the catalog, the models a
run config accepts (`registry.names()` adds whatever was `register`ed at run time).

Adding an architecture: write one file with a builder `f(num_classes, **options) -> nn.Module`,
add one `register(...)` line in `registry.py` and its line in `catalog.py` (the static table the
run config reads without torch; a test checks the two agree).
"""
from lottery_core.lazy import lazy_attributes
from lottery_core.models.catalog import ARCHITECTURES, max_removable, names, options, traits

# name -> the module that defines it, imported on first use (torch, torchvision); names, options
# and layouts come from the static catalog, which the run config reads before torch is imported
_LAZY = {"build": "registry", "register": "registry", "BasicBlock": "cifar_resnet", "CifarResNet": "cifar_resnet",
         "INITS": "cifar_resnet", "SHORTCUTS": "cifar_resnet"}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = ["ARCHITECTURES", "build", "max_removable", "names", "options", "register", "traits", "BasicBlock",
           "CifarResNet", "INITS", "SHORTCUTS"]
