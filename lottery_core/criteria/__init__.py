"""Criteria that score weights and residual blocks (higher = more important = keep).

    score_weights(model, criterion, batches, **options)   {param name: score tensor}
    score_blocks(model, criterion, batches, **options)    {removable block: score}
    select_blocks(scores, p, model=...)                   Plan: the p lowest within stage budgets
    scoring_batches(images, labels, images_per_class, seed, mean, std)   seeded, class-balanced data

Controls (`controls`: what a criterion's choice is compared with, pure functions):

    inverted(scores)                                      negated: select_blocks removes the highest
    stage_counts(plan_or_removed, model)                  {stage: blocks it loses}
    same_stage_random(removed, model, seed)               random blocks, the same count per stage
    uniform_blocks(model, p)                              the plain shallower net: last blocks, spread evenly
    draw_seed(seed, draw)                                 the seed of random draw `draw` of run `seed`
    shuffled_labels(batches, seed), random_inputs(batches, seed)   scoring data with the signal removed

Adding a criterion: write one file with its function (see `registry` for the two signatures)
and, next to it, `OPTIONS`, the declarations of its keyword-only options (`lottery_core.options.
Option`: type, range, default, help); add one `register(...)` line below. The registry, with
every criterion's options, is known without importing torch (the functions are imported on
first use), so the run config validates a criterion's options before any heavy import. `bn_mode` is the BatchNorm mode used when the caller
passes none: "train" for the gradient criteria used at initialization (the running statistics
of θ_0 are placeholders), "eval" for the activation criteria used after training; a data-driven
"eval" criterion scores in "train" mode while every BatchNorm still holds placeholder statistics
(`score.default_bn_mode`), so at θ_0 no activation criterion reads an unnormalized stream.
`reads_labels` marks criteria whose scores depend on the labels (snip, grasp, pls).

What a criterion can see:
- Activation criteria (hrank, expectabs, pls) read a block's residual branch f(x) by default
  (`target="branch"`); `target="output"` is the paper's literal reading, the block output
  relu(x + f(x)), i.e. the residual stream: there a silenced block (f ≡ 0) scores like the block
  before it, and the scores follow the block's position (HRank: the stage's resolution,
  expectABS: the stream's growth with depth).
- Weight criteria are summed over a block's weights (`aggregate="sum"`, the paper's reading),
  which grows with the block's size: a stage-3 CIFAR ResNet block has 16x the weights of a
  stage-1 block, so sums favour removing early blocks whatever the per-weight scores say;
  `aggregate="mean"` (the per-weight mean) removes that size bias.
- magnitude reads only weights: a silenced block (last BN γ = β = 0) keeps its conv weights and
  its score. GraSP is signed: a silenced block's weights score exactly 0, which is not the
  lowest score when other blocks are negative.
- KL, CKA, SNIP and SynFlow give a silenced block exactly 0 (SynFlow is refused on networks with
  bounded activations such as MobileNetV2's ReLU6, where the positive all-ones pass saturates and
  every block scores 0: `applicability`, trait "bounded_activation").
- Scores that cannot rank the blocks (all equal, all zero, some not finite) are refused by
  `score_blocks` with the likely cause (`degenerate`), since block order, the tie-break, would
  otherwise choose the ticket; the `random` control is exempt.
- On a vision transformer a block is an encoder layer (silenced: its attention output projection
  and last MLP Linear zero). KL, CKA, SNIP, GraSP, magnitude and random (the weights: the packed
  q/k/v projection, the output projection, both MLP Linears) and the consensus score it; SynFlow
  (degenerate under LayerNorm) and the activation criteria (they read conv feature maps) are
  refused with the reason (`applicability`), by `score_blocks` and by the run config.
"""
from lottery_core.criteria import consensus, expectabs, grasp, hrank, pls, random_score, synflow
from lottery_core.criteria.control_registry import (
    Control,
    control_names,
    get_control,
    register_control,
)
from lottery_core.criteria.registry import Criterion, describe, names, register
from lottery_core.criteria.target import TARGETS
from lottery_core.lazy import lazy_attributes

# name -> the module that defines it; imported on first use (they import torch; the registry does not)
_LAZY = {
    "scoring_batches": "batches", "weight_parameters": "common", "cka": "cka",
    "draw_seed": "controls", "inverted": "controls", "random_inputs": "controls", "same_stage_random": "controls",
    "shuffled_labels": "controls", "stage_counts": "controls", "uniform_blocks": "controls",
    "score_blocks": "score", "score_weights": "score", "Plan": "select", "select_blocks": "select",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


def _at(module: str, function: str) -> str:
    return f"{__name__}.{module}:{function}"


register("random", _at("random_score", "random_weights"), level="weight", needs_data=False, bn_mode=None,
         options=random_score.OPTIONS, summary="seeded uniform score per weight (control)")
register("magnitude", _at("magnitude", "magnitude"), level="weight", needs_data=False, bn_mode=None,
         summary="|θ| (ℓ1); data-free, grows with the stage's width")
register("snip", _at("snip", "snip"), level="weight", needs_data=True, bn_mode="train", reads_labels=True,
         summary="|θ ⊙ ∂L/∂θ| (Lee et al. 2019), at initialization")
register("grasp", _at("grasp", "grasp"), level="weight", needs_data=True, bn_mode="train", reads_labels=True,
         options=grasp.OPTIONS, summary="θ ⊙ Hg, temperature 200 (Wang et al. 2020); most negative goes first")
register("synflow", _at("synflow", "synflow"), level="weight", needs_data=False, bn_mode="eval",
         bn_modes=("eval",), options=synflow.OPTIONS,
         summary="|θ ⊙ ∂R/∂θ| on positive weights and an all-ones image, float64 (Tanaka et al. 2020)")
register("random", _at("random_score", "random_blocks"), level="block", needs_data=False, bn_mode=None,
         options=random_score.OPTIONS, summary="seeded uniform score per block (control)")
register("hrank", _at("hrank", "hrank"), level="block", needs_data=True, options=hrank.OPTIONS,
         summary="mean matrix rank of the block's branch maps / min(H, W) (Lin et al. 2020); "
                 "target='output': the block output's rank")
register("expectabs", _at("expectabs", "expectabs"), level="block", needs_data=True, options=expectabs.OPTIONS,
         summary="mean |activation| of the block's branch (DropNet); target='output': of its output")
register("kl", _at("kl", "kl"), level="block", needs_data=True,
         summary="KL of the softmax output with the block switched off (Luo & Wu 2020)")
register("pls", _at("pls", "pls"), level="block", needs_data=True, reads_labels=True, options=pls.OPTIONS,
         summary="PLS-VIP of the block's pooled branch (Jordao et al. 2020); target='output': of its output")
register("cka", _at("cka", "cka"), level="block", needs_data=True,
         summary="1 − linear CKA of penultimate features with the block switched off")
# last: its members may be any criterion registered above (each scores in its own default mode)
register("consensus", _at("consensus", "consensus"), level="block", needs_data=True, bn_mode=None, reads_labels=True,
         options=consensus.declare(names("block")),
         summary="rank fusion (borda | rrf) of several block criteria, default kl, cka, snip")

# Controls, in the order the report lists them (`control_registry`: what `acts_on` means)
register_control("same_stage_random", _at("controls", "same_stage_random"), acts_on="choice", draws=True,
                 stage_counts=True, summary="random blocks with the criterion's per-stage counts")
register_control("uniform", _at("controls", "uniform_blocks"), acts_on="blocks",
                 summary="the plain shallower network: the last blocks of each stage, spread evenly")
register_control("inverted", _at("controls", "inverted"), acts_on="scores", stage_counts=True,
                 summary="the criterion's p highest blocks instead of its p lowest")
register_control("shuffled_labels", _at("controls", "shuffled_labels"), acts_on="scoring_data", draws=True,
                 needs="reads_labels", summary="the criterion scores with the labels permuted")
register_control("random_inputs", _at("controls", "random_inputs"), acts_on="scoring_data", draws=True,
                 needs="needs_data", summary="the criterion scores on N(0, 1) noise images")

__all__ = ["TARGETS", "Control", "Criterion", "Plan", "describe", "draw_seed", "inverted", "names", "random_inputs",
           "control_names", "get_control", "register", "register_control", "same_stage_random", "scoring_batches", "score_blocks", "score_weights", "select_blocks",
           "shuffled_labels", "stage_counts", "uniform_blocks", "weight_parameters"]
