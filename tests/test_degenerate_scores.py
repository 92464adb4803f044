"""Degenerate block scores are refused; a silenced block scores lowest on every model under every
criterion that applies to it (issue 24, item 7).

1. Every model of the registry, every block criterion but `random`: one removable block in the
   middle is silenced, every weight and bias of its residual branch zero (the branch's last
   BatchNorm / the encoder layer's LayerNorms included), so f(x) = 0 and the block is the
   identity. It scores exactly 0 and strictly lowest, and goes first; or scoring is refused up
   front with the reason (`applicability`), which names the criterion. GraSP is the one exception,
   by design: it is signed (θ ⊙ Hg), the silenced block scores exactly 0, and the blocks below it
   are exactly those whose removal GraSP judges to *increase* the gradient flow (negative score),
   which it removes first on purpose (Wang et al. 2020). VGG has no removable block at all.
2. SynFlow on MobileNetV2: every block scores exactly 0 at θ_0 (ReLU6 saturates under the
   positive all-ones pass), so it is refused up front, by `score_blocks` and by the run config.
3. `score_blocks` refuses all-equal, all-zero and non-finite tables, naming the criterion, the
   model, what was degenerate and the likely cause.
"""
import functools
import math

import pytest
import torch

from lottery_core import criteria, models, surgery
from lottery_core.criteria import registry
from lottery_core.criteria.applicability import model_traits, refusal
from lottery_core.criteria.common import scoring_copy
from lottery_core.criteria.consensus import fuse
from lottery_core.criteria.degenerate import GENERIC, check_scores, degeneracy
from lottery_core.errors import LotteryError
from lottery_core.normalize import CIFAR10_MEAN, CIFAR10_STD
from pipelines.cli import main
from pipelines.config import load_config

CLASSES = 4
_IMAGES = torch.randint(0, 256, (4 * CLASSES, 3, 32, 32), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(0))
# 2 random 32x32 images per class, 4 classes: the smallest batch PLS accepts, small enough for ResNet110
BATCHES = criteria.scoring_batches(_IMAGES, torch.arange(4 * CLASSES) % CLASSES, 2, 0, CIFAR10_MEAN, CIFAR10_STD)
CRITERIA = [c for c in criteria.names("block") if c != "random"]   # random: the control, never checked
QUICK = ("resnet20", "resnet18", "vit_tiny")   # the rest (deeper, wider): the slow tier
WITH_BLOCKS = [m for m in models.names() if surgery.residual_blocks(models.skeleton(m))]


@functools.cache
def silenced(name: str) -> tuple[torch.nn.Module, str]:
    """`name` at θ_0 (seed 0, 4 classes) with its middle removable block (one kept per stage)
    silenced: every parameter of the block is zero, so its residual branch outputs exactly 0."""
    torch.manual_seed(0)
    model = models.build(name, num_classes=CLASSES)
    blocks = surgery.removable_blocks(model, 1)
    dead = blocks[len(blocks) // 2]
    with torch.no_grad():
        for p in surgery.block_parameters(model, dead).values():
            p.zero_()
    assert surgery.is_silenced(model, dead)
    return model, dead


CASES = [pytest.param(m, c, id=f"{m}-{c}", marks=() if m in QUICK else pytest.mark.slow)
         for m in WITH_BLOCKS for c in CRITERIA]


@pytest.mark.numerical
@pytest.mark.parametrize("name,criterion", CASES)
def test_a_silenced_block_scores_lowest_or_the_criterion_is_refused_with_the_reason(name, criterion):
    model, dead = silenced(name)
    reason = refusal(criterion, model_traits(models.skeleton(name)))
    if reason is not None:   # SynFlow on MobileNetV2 / the ViT; the activation criteria on the ViT
        with pytest.raises(LotteryError) as err:
            criteria.score_blocks(model, criterion, BATCHES, min_blocks_per_stage=1)
        assert str(err.value) == reason and str(err.value).startswith(f"{criterion} ")
        return
    scores = criteria.score_blocks(model, criterion, BATCHES, min_blocks_per_stage=1)
    live = {b: s for b, s in scores.items() if b != dead}
    assert scores[dead] == pytest.approx(0.0, abs=1e-12)
    if criterion == "grasp":   # signed by design (module docstring): below 0 = removal helps gradient flow
        assert scores[dead] == 0.0
        assert all(s != 0 for s in live.values())   # the silenced block is the lowest of the non-negative
        below = {b for b, s in live.items() if s < scores[dead]}
        assert set(criteria.select_blocks(scores, len(below) + 1).removed) == below | {dead}
        return
    assert scores[dead] < min(live.values())
    assert criteria.select_blocks(scores, 1, model=model, min_blocks_per_stage=1).removed == [dead]


def test_a_network_without_removable_blocks_is_refused_for_every_criterion():
    model = models.build("vgg11_bn", num_classes=CLASSES)
    for criterion in criteria.names("block"):
        with pytest.raises(LotteryError, match=r"^VGG has no removable residual blocks"):
            criteria.score_blocks(model, criterion, BATCHES)


# --- 2. SynFlow on MobileNetV2 ------------------------------------------------------------------

def test_synflow_scores_every_mobilenet_v2_block_exactly_0_which_is_why_it_is_refused():
    """The measurement behind the refusal: the criterion itself, past the up-front check. ReLU6's
    slope is 0 above 6, where the positive all-ones pass drives the last 1x1 conv's outputs (and
    every expansion conv's from features.3 on): the only weight with a non-zero score is the
    classifier's (also at 224x224, measured: too slow for the suite in float64)."""
    torch.manual_seed(0)
    model = models.build("mobilenet_v2", num_classes=CLASSES)
    weights = registry.get("synflow", "weight").fn(scoring_copy(model, "eval"), None)
    assert [k for k, s in weights.items() if s.any()] == ["classifier.1.weight"]
    with pytest.raises(LotteryError) as err:
        criteria.score_blocks(model, "synflow")
    message = str(err.value)
    assert message.startswith("synflow cannot score a network with bounded activations (ReLU6")
    assert "slope is exactly 0" in message and "\n" not in message
    with pytest.raises(LotteryError, match=r"^synflow cannot score a network with bounded activations"):
        criteria.score_weights(model, "synflow")


def test_the_run_config_refuses_synflow_on_mobilenet_v2(capsys):
    """As for SynFlow on LayerNorm (tests/test_vit.py): from the traits of the model itself."""
    base = ["model.name=mobilenet_v2", "pipeline=ticket_init"]
    assert model_traits(models.skeleton("mobilenet_v2")) == {"bounded_activation"}
    assert load_config(None, [*base, "pruning.criterion=snip"]).pruning.criterion == "snip"
    with pytest.raises(LotteryError, match=r"^pruning.criterion=synflow on model.name=mobilenet_v2: synflow cannot "
                                           r"score a network with bounded activations") as err:
        load_config(None, [*base, "pruning.criterion=synflow"])
    assert "\n" not in str(err.value)
    with pytest.raises(LotteryError, match=r"^pruning.criterion=consensus on model.name=mobilenet_v2: synflow"):
        load_config(None, [*base, "pruning.criterion=consensus", "pruning.members=[kl,synflow]"])
    code = main(["run", *[a for s in base for a in ("--set", s)], "--set", "pruning.criterion=synflow"])
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err_lines) == 1
    assert err_lines[0].startswith("lottery run: error: pruning.criterion=synflow on model.name=mobilenet_v2: "
                                   "synflow cannot score a network with bounded activations")


# --- 3. degenerate tables -----------------------------------------------------------------------

@pytest.fixture
def stub(monkeypatch):
    """Register block criterion "stub" whose scores are `table[0]` (set by the test), in block order."""
    monkeypatch.setattr(registry, "_CRITERIA", dict(registry._CRITERIA))
    table: list[list[float]] = [[]]

    def scores(model, blocks, batches):
        return dict(zip(blocks, table[0], strict=True))

    criteria.register("stub", scores, level="block", needs_data=False, bn_mode=None)
    return table


@pytest.mark.parametrize("values,what", [
    ([0.5] * 7, "all 7 block scores are equal (0.5)"),
    ([0.0] * 7, "all 7 block scores are exactly 0"),
    ([1, 2, math.nan, 4, 5, math.nan, 7], "2 of 7 block scores are nan"),
    ([1, 2, math.inf, 4, 5, math.nan, 7], "2 of 7 block scores are nan or inf"),
])
def test_score_blocks_refuses_a_degenerate_table_in_one_line(stub, values, what):
    stub[0] = values
    with pytest.raises(LotteryError) as err:
        criteria.score_blocks(models.build("resnet20"), "stub")
    message = str(err.value)
    assert message.startswith(f"stub cannot rank the blocks of CifarResNet: {what}, so block order (the "
                              "tie-break) would choose the ticket; likely cause: ")
    assert "\n" not in message
    if math.isnan(values[2]) or math.isinf(values[2]):
        assert message.endswith("likely cause: stub's arithmetic overflowed or divided by zero on finite weights "
                                "(non-finite scoring images, or a network deep enough to overflow; SynFlow runs "
                                "in float64 for this)")
    stub[0] = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]   # ties among the rest: still ranked, not degenerate
    assert list(criteria.score_blocks(models.build("resnet20"), "stub").values()) == stub[0]


def test_which_tables_are_degenerate():
    assert degeneracy({"a": 0.0}) is None   # one block: nothing to rank, p <= 1 removes it or nothing
    assert degeneracy({"a": math.nan}) == "1 of 1 block scores are nan"
    assert degeneracy({"a": 1.0, "b": 1.0 + 1e-15}) is None   # exact equality only
    model = models.build("resnet20")
    check_scores("random", model, {"a": 0.0, "b": 0.0}, needs_data=False)   # the control is exempt


def test_the_likely_cause_is_named():
    resnet = models.build("resnet20")
    every = surgery.removable_blocks(resnet)
    with torch.no_grad():
        for block in every:
            for p in surgery.block_parameters(resnet, block).values():
                p.zero_()
    with pytest.raises(LotteryError, match=r"^kl cannot rank .*: all 7 block scores are exactly 0, .*likely cause: "
                                           r"every removable block is silenced"):
        criteria.score_blocks(resnet, "kl", BATCHES)

    torch.manual_seed(0)   # branch HRank at θ_0: every map full rank, 1.0 for every block
    with pytest.raises(LotteryError, match=r"^hrank cannot rank .*: all 7 block scores are equal \(1\), .*likely "
                                           r"cause: every map of every block has the same rank, full rank"):
        criteria.score_blocks(models.build("resnet20"), "hrank", BATCHES)

    constant = models.build("resnet20")
    with torch.no_grad():
        for p in constant.parameters():
            p.fill_(0.5)
    with pytest.raises(LotteryError, match=r"^magnitude cannot rank .*equal \(0.5\).*likely cause: magnitude is "
                                           r"data-free and reads only the weights"):
        criteria.score_blocks(constant, "magnitude", aggregate="mean")

    broken = models.build("resnet20")
    with torch.no_grad():
        broken.get_parameter("layer2.1.conv1.weight")[0, 0, 0, 0] = math.nan
    with pytest.raises(LotteryError, match=r"^magnitude cannot rank .*: 1 of 7 block scores are nan, .*likely "
                                           r"cause: the model's weights are not finite \(1 of \d+ parameter tensors"):
        criteria.score_blocks(broken, "magnitude")

    live = models.build("resnet20")
    ranks = dict(zip(every[:3], (1.0, 2.0, 3.0), strict=True))
    opposite = fuse([ranks, {b: -s for b, s in ranks.items()}])   # two members in exactly opposite order
    with pytest.raises(LotteryError, match=r"^consensus cannot rank .*all 3 block scores are equal \(0.5\).*"
                                           r"members' rankings cancel out"):
        check_scores("consensus", live, opposite, needs_data=True)
    with pytest.raises(LotteryError) as err:
        check_scores("kl", live, dict.fromkeys(every[:2], 2.0), needs_data=True)
    assert str(err.value).endswith(f"likely cause: {GENERIC}")
