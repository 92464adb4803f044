"""What a network costs: MACs, parameters, memory, filters and latency.

MACs are multiply-accumulates of one forward pass over one image, counted by
`torch.utils.flop_counter` (which counts FLOPs = 2 x MACs for convolutions and matrix products;
BatchNorm, ReLU and pooling are not counted, as in the paper).

Memory follows the authors' count, 4 bytes per value: the parameters plus the activations of one
image. *Activations* are the values output by every call of a convolution, BatchNorm, ReLU/ReLU6
(Hardtanh), linear or pooling operation (max, average, adaptive). They are counted where the forward
pass calls the operation in `torch.nn.functional` (a `TorchFunctionMode`), not through module hooks,
so the count does not depend on the model's code style: an `nn.ReLU` module, `F.relu`,
`torch.relu` and `x.relu_()` count alike, and one module called twice (torchvision's BasicBlock
reuses `self.relu`) counts twice. Not counted: residual additions, padding, slicing, flattening,
dropout, and operations that a not-counted function calls internally. In a CIFAR ResNet every
block therefore holds 6 maps of its width (conv, BN, ReLU, conv, BN, ReLU after the addition).
"""
import statistics
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

BYTES_PER_VALUE = 4
# Every entry point of the counted operations that a forward pass may call (module forwards call
# the `F.` ones: nn.ReLU6 calls F.hardtanh). F.conv2d is torch.conv2d, F.avg_pool2d is a builtin.
ACTIVATION_FUNCTIONS = frozenset({
    F.conv2d,
    F.batch_norm, torch.batch_norm,
    F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_,
    F.relu6, F.hardtanh, F.hardtanh_,
    F.linear,
    F.max_pool2d, torch.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d,
    F.max_pool2d_with_indices, F.adaptive_max_pool2d, F.adaptive_max_pool2d_with_indices,
})


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
    """Values output by every conv/BN/ReLU/ReLU6/linear/pool call for one image (module docstring)."""
    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper: count the eager model
    with _eval(model), torch.no_grad(), _ActivationCounter() as counter:
        model(_example(model, input_size))
    return counter.total


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


class _ActivationCounter(TorchFunctionMode):
    """Sums the output sizes of the `ACTIVATION_FUNCTIONS` calls made while it is active."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        try:
            counted = func in ACTIVATION_FUNCTIONS
        except TypeError:  # an unhashable callable is none of them
            counted = False
        if counted:  # max pooling with return_indices: count the values only
            self.total += (out[0] if isinstance(out, tuple) else out).numel()
        return out


class _eval:
    """Context: put a model in eval mode and restore its previous mode."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was_training)
