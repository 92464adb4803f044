"""What a network costs: MACs, parameters, memory, filters and latency.

MACs are multiply-accumulates of one forward pass over one image, counted by
`torch.utils.flop_counter` (which counts FLOPs = 2 x MACs for convolutions and matrix products;
BatchNorm, ReLU and pooling are not counted, as in the paper). Memory follows the authors' count:
the activations of one image (the output of every convolution, BatchNorm, ReLU/activation,
pooling and linear layer) plus the parameters, 4 bytes each.
"""
import statistics
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

BYTES_PER_VALUE = 4
_ACTIVATION_LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Linear,
                      nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class Cost:
    """Cost of one network for one input image. `memory_bytes` = 4 x (activations + params)."""

    macs: int
    params: int
    activations: int
    memory_bytes: int
    filters: int

    def as_dict(self) -> dict:
        return asdict(self)

    def reduction_vs(self, dense: "Cost") -> dict[str, float]:
        """Percent reduction of each quantity versus `dense` (positive = smaller than dense)."""
        return {k: 100.0 * (1 - getattr(self, k) / getattr(dense, k))
                for k in ("macs", "params", "memory_bytes", "filters") if getattr(dense, k)}


def count_macs(model: nn.Module, input_size: tuple[int, ...] = (3, 32, 32)) -> int:
    """Multiply-accumulates of one forward pass over one image of `input_size` (C, H, W)."""
    x = _example(model, input_size)
    with _eval(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def count_params(model: nn.Module) -> int:
    """Number of trainable parameter values."""
    return sum(p.numel() for p in model.parameters())


def count_filters(model: nn.Module) -> int:
    """Number of convolution filters (output channels of every Conv2d), as the paper counts them."""
    return sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))


def count_activations(model: nn.Module, input_size: tuple[int, ...] = (3, 32, 32)) -> int:
    """Values produced by the activation-holding layers for one image (see module docstring)."""
    total = 0

    def hook(module, args, out):
        nonlocal total
        total += out.numel()

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, _ACTIVATION_LAYERS)]
    try:
        with _eval(model), torch.no_grad():
            model(_example(model, input_size))
    finally:
        for h in hooks:
            h.remove()
    return total


def measure(model: nn.Module, input_size: tuple[int, ...] = (3, 32, 32)) -> Cost:
    """MACs, params, activations, memory (bytes) and filters of `model` for one image."""
    params = count_params(model)
    activations = count_activations(model, input_size)
    return Cost(macs=count_macs(model, input_size), params=params, activations=activations,
                memory_bytes=BYTES_PER_VALUE * (params + activations), filters=count_filters(model))


def latency(model: nn.Module, batch_size: int = 128, input_size: tuple[int, ...] = (3, 32, 32),
            repeats: int = 10, warmup: int = 2) -> float:
    """Median seconds of one forward pass of a batch (eval mode, no grad) on the model's device."""
    x = _example(model, input_size, batch_size)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    with _eval(model), torch.no_grad():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def _example(model: nn.Module, input_size, batch_size: int = 1) -> torch.Tensor:
    p = next(model.parameters())
    return torch.zeros(batch_size, *input_size, device=p.device, dtype=p.dtype)


class _eval:
    """Context: put a model in eval mode and restore its previous mode."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was_training)
