"""The numeric precision a training run computes in: one rule, used by the loop and by run identities.

    precision("cuda", amp=True)  -> "bf16"   (autocast to bfloat16; BatchNorm and the loss stay fp32)
    precision("cpu", amp=True)   -> "bf16" on a CPU with native bf16 instructions, else "fp32"
    precision(device, amp=False) -> "fp32"

A CPU computes bf16 natively when its flags (Linux /proc/cpuinfo, what `lscpu` prints) name
`avx512_bf16` (AVX-512 BF16: AMD Zen 4+, Intel Cooper Lake+) or `amx_bf16` (Intel AMX: Sapphire
Rapids+). Elsewhere oneDNN would emulate bf16, slower than fp32, so amp stays off there.
To train fp32 on a bf16 CPU (e.g. for a comparison), set amp=False.

Precision changes the trained weights, so a checkpoint or a finished run of one precision is never
taken for another: `pipelines` puts the resolved value into a run's identity, the loop into a
checkpoint's.
"""
import functools
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def precision(device: torch.device | str, amp: bool = True) -> str:
    """"bf16" where the engine autocasts (`amp` on CUDA or on a CPU with native bf16), else "fp32"."""
    if not amp:
        return "fp32"
    kind = torch.device(device).type
    if kind == "cuda" or (kind == "cpu" and cpu_has_native_bf16()):
        return "bf16"
    return "fp32"


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bf16 instructions (see the module docstring)."""
    return bool(native_bf16_flags())


@functools.cache
def native_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The native-bf16 flags this CPU reports, e.g. ("avx512_bf16",); () where none or unknown."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return tuple(f for f in NATIVE_BF16_FLAGS if f in flags)
    return ()
