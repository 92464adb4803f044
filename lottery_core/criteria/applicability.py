"""Which criteria cannot score which networks, and why: one home for the rule and its reason.

A network has *traits* (`model_traits` reads them off a model, built or `models.skeleton`, the
one the run config checks):

    "layernorm"     it normalizes with LayerNorm (a vision transformer)
    "token_blocks"  its residual blocks work on token sequences (N × tokens × d) and have two
                    residual branches each ending in a Linear, no BatchNorm-ended conv branch
    "bounded_activation"  it has an activation that is flat past a bound (ReLU6, Hardtanh,
                    Hardsigmoid: MobileNetV2's ReLU6), whose slope there is exactly 0

    refusal("synflow", {"layernorm"})   the one-line reason, or None where the criterion applies

A refusal is known before anything is scored. What only the scores reveal (all equal, all zero,
not finite: the tie-break would choose the ticket) `score_blocks` refuses afterwards, with the
likely cause (`criteria.degenerate`); a cause that a trait predicts belongs here, up front.

`refusal` itself is torch-free; the run config asks it with the traits of `models.skeleton` (after
torch is imported, before anything trains), and `score_weights` / `score_blocks` ask it on the
model they are given.
"""
TRAITS = ("layernorm", "token_blocks", "bounded_activation")

_SYNFLOW = ("synflow cannot score a network with LayerNorm (a vision transformer): SynFlow credits each weight "
            "with its share of positive path products from an all-ones input, but LayerNorm centres every token "
            "and divides out its scale (LN(a·z) = LN(z)), so the weights before it get no credit for their size "
            "and that all-ones pass is degenerate; use snip, grasp, kl, cka or consensus")
_SYNFLOW_BOUNDED = ("synflow cannot score a network with bounded activations (ReLU6, Hardtanh, Hardsigmoid: "
                    "MobileNetV2): its positive all-ones pass drives the pre-activations past the bound, where the "
                    "slope is exactly 0, so no gradient reaches the blocks and every block scores 0 (all 9 of "
                    "mobilenet_v2's at θ_0); use snip, grasp, kl, cka or consensus")
_ACTIVATION = ("{criterion} reads conv feature maps (a block's residual branch where its last BatchNorm ends "
               "it, N×C×H×W); a transformer encoder layer has two residual branches ending in Linears over a "
               "token sequence (N×tokens×d), with no such map (HRank's H×W rank, PLS's spatial pooling); use "
               "kl, cka, snip, grasp or consensus")
ACTIVATION_CRITERIA = ("hrank", "expectabs", "pls")

REFUSED: dict[str, dict[str, str]] = {   # trait -> {criterion: reason}
    "layernorm": {"synflow": _SYNFLOW},
    "token_blocks": {c: _ACTIVATION.format(criterion=c) for c in ACTIVATION_CRITERIA},
    "bounded_activation": {"synflow": _SYNFLOW_BOUNDED},
}


def refusal(criterion: str, traits: set[str] | frozenset[str]) -> str | None:
    """Why `criterion` cannot score a network with `traits` (one line), or None if it can."""
    for trait in TRAITS:
        if trait in traits and criterion in REFUSED[trait]:
            return REFUSED[trait][criterion]
    return None


def model_traits(model) -> frozenset[str]:
    """The traits of a built model (imports torch): "layernorm" if it has an nn.LayerNorm,
    "token_blocks" if some residual block has no BatchNorm-ended branch (`surgery.has_branch_bn`),
    "bounded_activation" if it has a bounded activation module (`bounded_activation`)."""
    import torch.nn as nn

    from lottery_core.surgery import has_branch_bn, residual_blocks

    found = set()
    if any(isinstance(m, nn.LayerNorm) for m in model.modules()):
        found.add("layernorm")
    if any(not has_branch_bn(model, b.name) for b in residual_blocks(model)):
        found.add("token_blocks")
    if any(bounded_activation(m) for m in model.modules()):
        found.add("bounded_activation")
    return frozenset(found)


def bounded_activation(module) -> bool:
    """Whether `module` is an activation that is flat past a bound, slope exactly 0 there:
    nn.Hardtanh and its subclass nn.ReLU6, nn.Hardsigmoid. Not Hardswish (linear above 3) nor
    the smooth Sigmoid and Tanh. An activation called as a function (F.relu6) is no module and
    is not seen: there the degenerate scores are refused when they appear (`criteria.degenerate`)."""
    import torch.nn as nn

    return isinstance(module, nn.Hardtanh | nn.Hardsigmoid)
