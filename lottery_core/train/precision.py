"""The numeric precision a training run computes in: one rule, used by the loop and by run identities.

    precision("cuda", amp=True)  -> "bf16"   (autocast to bfloat16; BatchNorm and the loss stay fp32)
    precision("cpu", amp=True)   -> "fp32"   (the engine does not autocast on the CPU)

Precision changes the trained weights, so a checkpoint or a finished run of one precision is never
taken for another: `pipelines` puts the resolved value into a run's identity.
"""
import torch

PRECISIONS = ("fp32", "bf16")


def precision(device: torch.device | str, amp: bool = True) -> str:
    """"bf16" where the engine autocasts (`amp` on a CUDA device), else "fp32"."""
    return "bf16" if amp and torch.device(device).type == "cuda" else "fp32"
