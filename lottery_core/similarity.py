"""Representation similarity: linear CKA (Kornblith et al. 2019) of penultimate features."""
import torch
import torch.nn as nn


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two feature matrices (n examples x features each), in [0, 1]; float64 inside."""
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"CKA needs the same n >= 2 examples on both sides, got {x.shape[0]} and {y.shape[0]}")
    x = x.flatten(1).double()
    y = y.flatten(1).double()
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    cross = (y.T @ x).norm() ** 2
    denom = (x.T @ x).norm() * (y.T @ y).norm()
    return float(cross / denom) if denom > 0 else 0.0


def classifier(model: nn.Module) -> nn.Linear:
    """The last `nn.Linear` of a model: its input is the penultimate representation."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no linear classifier")
    return linears[-1]


def penultimate_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(features entering the last linear layer, logits) of one forward pass of `x`."""
    captured: list[torch.Tensor] = []
    hook = classifier(model).register_forward_hook(lambda m, args, out: captured.append(args[0]))
    try:
        logits = model(x)
    finally:
        hook.remove()
    return captured[-1].flatten(1), logits


@torch.no_grad()
def features(model: nn.Module, batches) -> torch.Tensor:
    """The penultimate features of `model` (eval mode) over `batches` of (inputs, labels), on the
    CPU: n examples x features. Saved beside a run, they let its CKA with another model over the
    same inputs be computed later without either model (`linear_cka` of the two)."""
    mode = model.training
    model.eval()
    try:
        return torch.cat([penultimate_features(model, x)[0].cpu() for x, _ in batches])
    finally:
        model.train(mode)


def feature_cka(model_a: nn.Module, model_b: nn.Module, batches) -> float:
    """Linear CKA between the penultimate features of two models over the same batches (eval mode).

    `batches` yields (inputs, labels) already prepared for both models (same normalization).
    """
    batches = list(batches)
    return linear_cka(features(model_a, batches), features(model_b, batches))
