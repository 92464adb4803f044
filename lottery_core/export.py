"""A network (dense or ticket) as an ONNX file, and its latency in ONNX Runtime.

    path = export_onnx(ticket, "ticket.onnx")          # any batch size; weights inside the file
    session = onnx_session(path)
    logits = session.run(None, {INPUT_NAME: images.numpy()})[0]
    onnx_latency(path, batch_size=128)                 # median seconds of one batch

The file holds the network in eval mode (BatchNorm uses its running statistics) with the batch
dimension dynamic (named `batch`) and the image size fixed. Its input is a float32 tensor
(batch, C, H, W) of *normalized* images, as the network sees them (`lottery_core.evaluate`
normalizes with the data set's mean and std before the network); its output the logits
(batch, classes). A block ticket's ONNX graph is physically shallower (its convolutions are the
ticket's), and the file's metadata names the removed blocks (`removed_blocks`, comma-separated).

The exporter is torch's default since 2.9, `torch.onnx.export(..., dynamo=True)`: it traces the
network with `torch.export` and translates the graph with `onnxscript` (both pinned).
"""
import copy
import os
from pathlib import Path

import torch
import torch.nn as nn

from lottery_core.accounting import median_seconds
from lottery_core.errors import LotteryError, first_line

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
# torch.export specializes a dimension of size 0 or 1 to a constant: trace with a batch of 2
# so that the batch dimension stays symbolic, whatever batch the caller has in mind.
TRACE_BATCH = 2


def export_onnx(model: nn.Module, path: str | os.PathLike, input_size: tuple[int, ...] = (3, 32, 32),
                opset: int | None = None) -> Path:
    """Write `model` (eval mode, float32, on the CPU) to the ONNX file `path`; return its path.

    `input_size` is one image's (C, H, W); the batch dimension is dynamic. The model itself is
    untouched (a copy is exported). `opset`: the ONNX opset (None: the exporter's default).
    A model that does not take that input, or cannot be traced, raises a one-line LotteryError
    naming the first line of the cause.
    """
    input_size = _check_size(input_size)
    path = Path(path)
    if path.suffix != ".onnx":
        raise LotteryError(f"ONNX file name {path.name!r} must end in .onnx")
    if not path.parent.is_dir():
        raise LotteryError(f"folder {path.parent} does not exist; create it or choose another path for the ONNX file")
    network = cpu_copy(model, float32=True, frozen=True)
    example = torch.zeros(TRACE_BATCH, *input_size)
    shape = f"(batch, {', '.join(map(str, input_size))})"
    try:  # a wrong input size fails here at once (the exporter would try three tracers first)
        with torch.no_grad():
            network(example)
    except Exception as err:
        raise LotteryError(f"{type(model).__name__} does not take input {shape}: {first_line(err, 300)}") from None
    batch = torch.export.Dim("batch")
    try:
        program = torch.onnx.export(network, (example,), dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},),
                                    opset_version=opset, verbose=False)
    except Exception as err:  # torch.export / onnxscript errors are pages long: keep the first line
        raise LotteryError(f"ONNX export of {type(model).__name__} with input {shape} failed: "
                           f"{first_line(err, 300)}") from None
    removed = getattr(model, "removed_blocks", None)
    if removed is not None:
        program.model.metadata_props["removed_blocks"] = ",".join(removed)
    program.save(path, external_data=False)   # one self-contained file (our networks are far below 2 GB)
    return path


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """An ONNX Runtime CPU session of the file at `path`; `threads`: intra-op threads (None: torch's
    current thread count, so that ONNX Runtime and torch are compared on the same cores)."""
    import onnxruntime as ort

    if not Path(path).is_file():
        raise LotteryError(f"no ONNX file at {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_predict(session, images: torch.Tensor) -> torch.Tensor:
    """The logits that an `onnx_session` gives for a batch of normalized images (float32 on the CPU)."""
    array = images.detach().to("cpu", torch.float32).contiguous().numpy()
    return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: array})[0])


def onnx_latency(path_or_session, batch_size: int = 128, input_size: tuple[int, ...] = (3, 32, 32),
                 repeats: int = 10, warmup: int = 2) -> float:
    """Median seconds of one ONNX Runtime forward pass of a batch (CPU), like `accounting.latency`."""
    session = onnx_session(path_or_session) if isinstance(path_or_session, str | os.PathLike) else path_or_session
    array = torch.zeros(batch_size, *_check_size(input_size)).numpy()
    return median_seconds(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: array}), repeats, warmup)


def _check_size(input_size) -> tuple[int, ...]:
    size = tuple(input_size)
    if len(size) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size):
        raise LotteryError(f"input_size must be one image's (C, H, W) as three positive integers, got {input_size!r}")
    return size


def cpu_copy(model: nn.Module, *, float32: bool = False, frozen: bool = False) -> nn.Module:
    """An eval-mode CPU copy in the default memory format, a torch.compile wrapper unwrapped;
    `float32`: cast to float32; `frozen`: parameters without gradients (`requires_grad` off).
    `model` itself is untouched."""
    model = getattr(model, "_orig_mod", model)
    network = copy.deepcopy(model)
    network = network.to("cpu", torch.float32) if float32 else network.to("cpu")
    network = network.to(memory_format=torch.contiguous_format).eval()
    if frozen:
        for p in network.parameters():
            p.requires_grad_(False)
            p.grad = None
    return network
