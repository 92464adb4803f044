"""The consensus criterion: rank fusion pinned by hand computations, and what it sees in a network."""
import pytest
import torch
from helpers import silence

from lottery_core import criteria, models
from lottery_core.criteria.consensus import fuse
from lottery_core.errors import LotteryError
from lottery_core.normalize import CIFAR10_MEAN, CIFAR10_STD
from pipelines.config import load_config

pytestmark = pytest.mark.numerical   # values oneDNN's kernels compute: CI reruns them under AVX2 and 1 thread

# two criteria over three blocks; the second ties a and c
TABLES = [{"a": 1.0, "b": 5.0, "c": 3.0}, {"a": 0.2, "b": 0.1, "c": 0.2}]


def test_borda_is_the_mean_normalized_rank_with_ties_sharing_their_average():
    # ascending ranks: first (a 1, b 3, c 2) -> (0, 1, 0.5); second (b 1, a and c 2.5) -> (0.75, 0, 0.75)
    assert fuse(TABLES, "borda") == pytest.approx({"a": 0.375, "b": 0.5, "c": 0.625}, abs=1e-15)


def test_reciprocal_rank_fusion_sums_one_over_k_plus_the_rank_from_the_top():
    # ranks from the top: first (a 3, b 1, c 2); second (a 1.5, b 3, c 1.5)
    want = {"a": 1 / 63 + 1 / 61.5, "b": 1 / 61 + 1 / 63, "c": 1 / 62 + 1 / 61.5}
    assert fuse(TABLES, "rrf", rrf_k=60.0) == pytest.approx(want, abs=1e-15)
    assert fuse(TABLES, "rrf", rrf_k=0.0)["b"] == pytest.approx(1 / 1 + 1 / 3, abs=1e-15)


def test_fusion_reads_ranks_only_so_a_monotone_rescale_of_a_member_changes_nothing():
    rescaled = [TABLES[0], {k: 1e6 * v ** 3 - 7 for k, v in TABLES[1].items()}]
    assert fuse(rescaled) == fuse(TABLES)


def test_tables_over_different_blocks_are_refused():
    with pytest.raises(LotteryError, match="same blocks in the same order"):
        fuse([{"a": 1.0, "b": 2.0}, {"b": 1.0, "a": 2.0}])


def _batches():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return criteria.scoring_batches(images, torch.arange(30) % 10, 2, 0, CIFAR10_MEAN, CIFAR10_STD)


@pytest.fixture(scope="module")
def silenced_resnet20():
    torch.manual_seed(0)
    model = models.build("resnet20")
    silence(model, "layer2.2")
    return model


def test_the_consensus_equals_the_fusion_of_its_members_scored_alone(silenced_resnet20):
    batches = _batches()
    members = ("kl", "snip")
    alone = [criteria.score_blocks(silenced_resnet20, m, batches, aggregate="mean") for m in members]
    for fusion in ("borda", "rrf"):
        fused = criteria.score_blocks(silenced_resnet20, "consensus", batches, members=members, fusion=fusion)
        assert fused == pytest.approx(fuse(alone, fusion), abs=1e-15)


def test_a_block_every_member_scores_lowest_is_the_consensus_lowest_and_goes_first(silenced_resnet20):
    scores = criteria.score_blocks(silenced_resnet20, "consensus", _batches())   # kl, cka, snip; borda
    assert scores["layer2.2"] == 0.0
    assert all(s > 0 for b, s in scores.items() if b != "layer2.2")
    assert criteria.select_blocks(scores, 1, model=silenced_resnet20).removed == ["layer2.2"]


def test_the_run_config_checks_the_members_before_anything_runs():
    cfg = load_config(None, ["pipeline=ticket_init", "pruning.criterion=consensus", "pruning.members=[kl,cka]",
                             "pruning.fusion=rrf"])
    assert dict(cfg.pruning.options) == {"members": ("kl", "cka"), "fusion": "rrf"}
    with pytest.raises(LotteryError, match=r"^pruning.members must be a list of two or more distinct of: .*kl.*, got "):
        load_config(None, ["pruning.criterion=consensus", "pruning.members=[kl,bogus]"])
    with pytest.raises(LotteryError, match=r"^pruning.members must be a list of two or more distinct of: .*, got \['kl', 'kl'\]$"):
        load_config(None, ["pruning.criterion=consensus", "pruning.members=[kl,kl]"])
    with pytest.raises(LotteryError, match=r"^unknown pruning.fusion 'mean'; choose one of: borda, rrf$"):
        load_config(None, ["pruning.criterion=consensus", "pruning.fusion=mean"])


def test_the_library_refuses_one_member_with_the_same_line(silenced_resnet20):
    with pytest.raises(LotteryError, match=r"^members must be a list of two or more distinct of: .*, got \['kl', 'kl'\]$"):
        criteria.score_blocks(silenced_resnet20, "consensus", _batches(), members=("kl", "kl"))
