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
and add one `register(...)` line below. `bn_mode` is the BatchNorm mode used when the caller
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
- KL, CKA, SNIP and SynFlow give a silenced block exactly 0 (SynFlow: not on ReLU6 networks such
  as MobileNetV2, where the positive all-ones pass saturates every ReLU6 and all scores are 0).
"""
from lottery_core.criteria.batches import scoring_batches
from lottery_core.criteria.cka import cka
from lottery_core.criteria.common import TARGETS, weight_parameters
from lottery_core.criteria.controls import (
    draw_seed,
    inverted,
    random_inputs,
    same_stage_random,
    shuffled_labels,
    stage_counts,
    uniform_blocks,
)
from lottery_core.criteria.expectabs import expectabs
from lottery_core.criteria.grasp import grasp
from lottery_core.criteria.hrank import hrank
from lottery_core.criteria.kl import kl
from lottery_core.criteria.magnitude import magnitude
from lottery_core.criteria.pls import pls
from lottery_core.criteria.random_score import random_blocks, random_weights
from lottery_core.criteria.registry import Criterion, describe, names, register
from lottery_core.criteria.score import score_blocks, score_weights
from lottery_core.criteria.select import Plan, select_blocks
from lottery_core.criteria.snip import snip
from lottery_core.criteria.synflow import synflow

register("random", random_weights, level="weight", needs_data=False, bn_mode=None,
         summary="seeded uniform score per weight (control)")
register("magnitude", magnitude, level="weight", needs_data=False, bn_mode=None,
         summary="|θ| (ℓ1); data-free, grows with the stage's width")
register("snip", snip, level="weight", needs_data=True, bn_mode="train", reads_labels=True,
         summary="|θ ⊙ ∂L/∂θ| (Lee et al. 2019), at initialization")
register("grasp", grasp, level="weight", needs_data=True, bn_mode="train", reads_labels=True,
         summary="θ ⊙ Hg, temperature 200 (Wang et al. 2020); most negative goes first")
register("synflow", synflow, level="weight", needs_data=False, bn_mode="eval",
         summary="|θ ⊙ ∂R/∂θ| on positive weights and an all-ones image, float64 (Tanaka et al. 2020)")
register("random", random_blocks, level="block", needs_data=False, bn_mode=None,
         summary="seeded uniform score per block (control)")
register("hrank", hrank, level="block", needs_data=True,
         summary="mean matrix rank of the block's branch maps / min(H, W) (Lin et al. 2020); "
                 "target='output': the block output's rank")
register("expectabs", expectabs, level="block", needs_data=True,
         summary="mean |activation| of the block's branch (DropNet); target='output': of its output")
register("kl", kl, level="block", needs_data=True,
         summary="KL of the softmax output with the block switched off (Luo & Wu 2020)")
register("pls", pls, level="block", needs_data=True, reads_labels=True,
         summary="PLS-VIP of the block's pooled branch (Jordao et al. 2020); target='output': of its output")
register("cka", cka, level="block", needs_data=True,
         summary="1 − linear CKA of penultimate features with the block switched off")

__all__ = ["TARGETS", "Criterion", "Plan", "describe", "draw_seed", "inverted", "names", "random_inputs",
           "register", "same_stage_random", "scoring_batches", "score_blocks", "score_weights", "select_blocks",
           "shuffled_labels", "stage_counts", "uniform_blocks", "weight_parameters"]
