"""Model registry. `build(name, num_classes=10, *, seed=None, **options)`, `names()`, `options(name)`,
`skeleton(name)` (the model on the meta device: its layout, for stage budgets and traits).

Adding an architecture: one file in this folder with a builder `f(num_classes=10, **options) ->
nn.Module` decorated `@register_model("name")` (a family registers its members in a loop there).
This package imports every module in its folder, so there is no line to add anywhere else.
"""
import importlib
import pkgutil

from lottery_core.models.registry import build, names, options, register, register_model, skeleton

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from lottery_core.models.cifar_resnet import INITS, SHORTCUTS, BasicBlock, CifarResNet  # noqa: E402

__all__ = ["build", "names", "options", "register", "register_model", "skeleton", "BasicBlock", "CifarResNet",
           "INITS", "SHORTCUTS"]
