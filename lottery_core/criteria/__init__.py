"""Criteria that score weights and residual blocks (higher = more important = keep).

    score_weights(model, criterion, batches, **options)   {param name: score tensor}
    score_blocks(model, criterion, batches, **options)    {removable block: score}
    select_blocks(scores, p, model=...)                   Plan: the p lowest within stage budgets
    scoring_batches(images, labels, images_per_class, seed, mean, std)   seeded, class-balanced data

Adding a criterion: write one file with its function (see `registry` for the two signatures)
and add one `register(...)` line below. `bn_mode` is the BatchNorm mode used when the caller
passes none: "train" for the gradient criteria used at initialization (the running statistics
of θ_0 are placeholders), "eval" for the activation criteria used after training.
"""
from lottery_core.criteria.batches import scoring_batches
from lottery_core.criteria.cka import cka
from lottery_core.criteria.common import weight_parameters
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
register("snip", snip, level="weight", needs_data=True, bn_mode="train",
         summary="|θ ⊙ ∂L/∂θ| (Lee et al. 2019), at initialization")
register("grasp", grasp, level="weight", needs_data=True, bn_mode="train",
         summary="θ ⊙ Hg, temperature 200 (Wang et al. 2020); most negative goes first")
register("synflow", synflow, level="weight", needs_data=False, bn_mode="eval",
         summary="|θ ⊙ ∂R/∂θ| on positive weights and an all-ones image, float64 (Tanaka et al. 2020)")
register("random", random_blocks, level="block", needs_data=False, bn_mode=None,
         summary="seeded uniform score per block (control)")
register("hrank", hrank, level="block", needs_data=True,
         summary="mean matrix rank of the block's output maps (Lin et al. 2020)")
register("expectabs", expectabs, level="block", needs_data=True,
         summary="mean |activation| of the block's output (DropNet)")
register("kl", kl, level="block", needs_data=True,
         summary="KL of the softmax output with the block switched off (Luo & Wu 2020)")
register("pls", pls, level="block", needs_data=True,
         summary="PLS-VIP of the block's pooled output (Jordao et al. 2020)")
register("cka", cka, level="block", needs_data=True,
         summary="1 − linear CKA of penultimate features with the block switched off")

__all__ = ["Criterion", "Plan", "describe", "names", "register", "scoring_batches", "score_blocks",
           "score_weights", "select_blocks", "weight_parameters"]
