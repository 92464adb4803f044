"""Lazy package attributes: the torch-using parts of a package imported on first use.

The run config validates against torch-free declarations (`criteria`, `train.settings`) before
torch is imported (the model's rules come after, from the model registry); the packages' other names load when first touched.

    __getattr__ = lazy_attributes(__name__, {"score_blocks": "score", ...})
"""
import importlib
from collections.abc import Callable


def lazy_attributes(package: str, modules: dict[str, str]) -> Callable[[str], object]:
    """A module-level `__getattr__` for `package`: `modules[name]` names the submodule that defines
    `name`; any other name is tried as a submodule (e.g. `criteria.controls`)."""
    def __getattr__(name: str):
        if name in modules:
            return getattr(importlib.import_module(f"{package}.{modules[name]}"), name)
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    return __getattr__


def resolve(target: Callable | str) -> Callable:
    """A registry entry's function: `target` itself, or "module:function" imported now (on first
    use, so that a registry is known without importing torch)."""
    if callable(target):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
