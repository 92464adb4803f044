"""What a network costs: MACs, parameters, memory, filters and latency.

MACs are multiply-accumulates of one forward pass over one image, counted by
`torch.utils.flop_counter` (which counts FLOPs = 2 x MACs for convolutions and matrix products;
BatchNorm, ReLU and pooling are not counted, as in the paper). Attention is counted: the
projections as matrix products and, in scaled dot-product attention, QKᵀ and attention·V
(N²·d MACs each for N tokens of width d; softmax, LayerNorm and GELU are not counted). Counting
runs MultiheadAttention on its plain path (not the fused inference kernel, which the counter
cannot see into) and counts CPU flash attention with torch's own attention formula.

Memory follows the authors' count, 4 bytes per value: the parameters plus the activations of one
image. *Activations* are the values output by every call of a convolution, BatchNorm, ReLU/ReLU6
(Hardtanh), linear or pooling operation (max, average, adaptive), and, in transformers, of every
LayerNorm and GELU, and of every multi-head attention as its parts: the query, key and value
projections, the attention output and the output projection (5 x N x d values for N tokens of
width d in self-attention; the N x N attention weights inside are not counted). They are counted where the forward
pass calls the operation in `torch.nn.functional` (a `TorchFunctionMode`), not through module hooks,
so the count does not depend on the model's code style: an `nn.ReLU` module, `F.relu`,
`torch.relu` and `x.relu_()` count alike, and one module called twice (torchvision's BasicBlock
reuses `self.relu`) counts twice. Not counted: residual additions, padding, slicing, flattening,
dropout, and operations that a not-counted function calls internally. In a CIFAR ResNet every
block therefore holds 6 maps of its width (conv, BN, ReLU, conv, BN, ReLU after the addition).
"""
import copy
import statistics
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

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
    F.layer_norm, F.gelu,
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


def _cpu_flash_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of CPU flash attention: torch's formula for its other attention kernels (QKᵀ and A·V)."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# attention kernels the flop counter has no formula for (it counts them as 0 otherwise)
_ATTENTION_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flops}


def count_macs(model: nn.Module, input_size: tuple[int, ...] = (3, 32, 32)) -> int:
    """Multiply-accumulates of one forward pass over one image of `input_size` (C, H, W),
    attention included (module docstring)."""
    x = _example(model, input_size)
    with (_eval(model), torch.no_grad(), _plain_attention(),
          FlopCounterMode(display=False, custom_mapping=_ATTENTION_FLOPS) as counter):
        model(x)
    return counter.get_total_flops() // 2


def count_params(model: nn.Module) -> int:
    """Number of trainable parameter values."""
    return sum(p.numel() for p in model.parameters())


def count_filters(model: nn.Module) -> int:
    """Number of convolution filters (output channels of every Conv2d), as the paper counts them;
    a vision transformer has only its patch embedding's (its hidden width)."""
    return sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))


def count_activations(model: nn.Module, input_size: tuple[int, ...] = (3, 32, 32)) -> int:
    """Values output by every conv/BN/ReLU/ReLU6/linear/pool call (and LayerNorm, GELU, attention in
    transformers) for one image (module docstring)."""
    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper: count the eager model
    with _eval(model), torch.no_grad(), _plain_attention(), _ActivationCounter() as counter:
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
    with _eval(model), torch.no_grad():
        return median_seconds(lambda: model(x), repeats, warmup,
                              sync=torch.cuda.synchronize if x.is_cuda else None)


def train_step_seconds(model: nn.Module, batch_size: int = 128, input_size: tuple[int, ...] = (3, 32, 32),
                       bf16: bool = False, channels_last: bool = False, repeats: int = 10, warmup: int = 2) -> float:
    """Median seconds of one SGD training step of a batch on the model's device: forward (bf16
    autocast when `bf16`, as the engine trains), cross-entropy, backward, a momentum SGD update.
    It runs on a copy of `model` in train mode (the model itself is untouched), on zero images and
    fixed labels: the time of a step does not depend on the values."""
    net = copy.deepcopy(model).train()
    x = _example(net, input_size, batch_size)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        classes = net(x[:1]).shape[-1]
    labels = torch.arange(batch_size, device=x.device) % classes
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), labels)
        loss.backward()
        optimizer.step()

    return median_seconds(step, repeats, warmup, sync=torch.cuda.synchronize if x.is_cuda else None)


def median_seconds(call, repeats: int = 10, warmup: int = 2, sync=None) -> float:
    """Median wall seconds of `call()` over `repeats` timed calls after `warmup` untimed ones;
    `sync` (e.g. torch.cuda.synchronize) runs before and after each, so queued work is counted."""
    sync = sync or (lambda: None)
    times = []
    for i in range(warmup + repeats):
        sync()
        start = time.perf_counter()
        call()
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
        elif func is F.multi_head_attention_forward:  # its inner calls are not seen: count its parts
            query, key, width = args[0], args[1], out[0].shape[-1]   # q: (L, N, ·), k and v: (S, N, ·)
            projected = (query.numel() // query.shape[-1] + 2 * (key.numel() // key.shape[-1])) * width
            self.total += projected + 2 * out[0].numel()
        return out


class _plain_attention:
    """Context: MultiheadAttention takes its plain path (in-projection, scaled dot-product attention,
    out-projection, each visible to the counters) instead of the fused inference kernel."""

    def __enter__(self):
        self.was_enabled = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)

    def __exit__(self, *exc):
        torch.backends.mha.set_fastpath_enabled(self.was_enabled)


class _eval:
    """Context: put a model in eval mode and restore its previous mode."""

    def __init__(self, model: nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was_training)
