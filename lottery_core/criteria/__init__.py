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

register("random", random_weights, level="weight", needs_data=False, bn_mode=None)
register("magnitude", magnitude, level="weight", needs_data=False, bn_mode=None)
register("snip", snip, level="weight", needs_data=True, bn_mode="train")
register("grasp", grasp, level="weight", needs_data=True, bn_mode="train")
register("synflow", synflow, level="weight", needs_data=False, bn_mode="eval")
register("random", random_blocks, level="block", needs_data=False, bn_mode=None)
register("hrank", hrank, level="block", needs_data=True)
register("expectabs", expectabs, level="block", needs_data=True)
register("kl", kl, level="block", needs_data=True)
register("pls", pls, level="block", needs_data=True)
register("cka", cka, level="block", needs_data=True)

__all__ = ["Criterion", "Plan", "describe", "names", "register", "scoring_batches", "score_blocks",
           "score_weights", "select_blocks", "weight_parameters"]
