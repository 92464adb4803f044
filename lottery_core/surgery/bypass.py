"""Switch blocks off without surgery: used by criteria that compare a network with and without a block."""
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch.nn as nn


@contextmanager
def bypass_blocks(model: nn.Module, names: Iterable[str]) -> Iterator[nn.Module]:
    """Within the context, blocks `names` return their input unchanged (their residual branch is off).

    For identity-shortcut blocks `relu(x + f(x))` with `x >= 0` (and `x + f(x)`), this equals the
    forward pass of the network with the block removed.
    """
    hooks = [model.get_submodule(n).register_forward_hook(lambda m, args, out: args[0])
             for n in names]
    try:
        yield model
    finally:
        for h in hooks:
            h.remove()
