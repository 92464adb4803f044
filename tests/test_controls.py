"""The controls a block ticket is compared with (lottery_core.criteria.controls)."""
import pytest
import torch

from lottery_core import criteria, models, surgery
from lottery_core.errors import LotteryError
from lottery_core.models import CifarResNet
from lottery_core.normalize import CIFAR10_MEAN, CIFAR10_STD

R20 = {"layer1.0": 0.1, "layer1.1": 0.2, "layer1.2": 0.3, "layer2.1": 0.5, "layer2.2": 0.5,
       "layer3.1": 0.9, "layer3.2": 0.4}   # resnet20: stage budgets 1, 1, 1


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _batches(batch_size=8, images_per_class=2):
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return criteria.scoring_batches(images, torch.arange(30) % 10, images_per_class, 0, CIFAR10_MEAN, CIFAR10_STD,
                                    batch_size=batch_size)


def test_inverted_removes_the_highest_within_stage_budgets():
    model = models.build("resnet20")
    assert criteria.inverted(R20) == {n: -s for n, s in R20.items()}
    assert list(criteria.inverted(R20)) == list(R20)
    plan = criteria.select_blocks(criteria.inverted(R20), 3, model=model)
    assert plan.removed == ["layer3.1", "layer2.1", "layer1.2"]   # highest of each stage; 2.1 ties 2.2: earlier
    ticket_one = criteria.select_blocks(criteria.inverted(R20), 1, model=model).removed
    assert ticket_one == ["layer3.1"]
    m56 = models.build("resnet56")
    scores = criteria.score_blocks(m56, "magnitude")
    p = 10
    removed = criteria.select_blocks(criteria.inverted(scores), p, model=m56).removed
    by_stage = {}
    for n in sorted(scores, key=lambda n: -scores[n]):       # the p highest, at most 7 per stage
        if len(by_stage.get(n[5], [])) < 7 and sum(map(len, by_stage.values())) < p:
            by_stage.setdefault(n[5], []).append(n)
    assert sorted(removed) == sorted(n for v in by_stage.values() for n in v)


def test_stage_counts_of_a_plan_or_names():
    model = models.build("resnet56")
    plan = criteria.select_blocks(criteria.score_blocks(model, "magnitude"), 5, model=model)
    counts = criteria.stage_counts(plan, model)
    assert counts == criteria.stage_counts(plan.removed, model)
    assert list(counts) == [1, 2, 3] and sum(counts.values()) == 5
    assert criteria.stage_counts(["layer1.3", "layer3.8", "layer3.1"], model) == {1: 1, 2: 0, 3: 2}
    assert criteria.stage_counts([], model) == {1: 0, 2: 0, 3: 0}
    with pytest.raises(LotteryError, match="'layer4.1' is not a residual block of resnet56"):
        criteria.stage_counts(["layer4.1"], model)
    with pytest.raises(LotteryError, match="listed twice"):
        criteria.stage_counts(["layer1.1", "layer1.1"], model)
    with pytest.raises(LotteryError, match="expected a Plan or a list of block names"):
        criteria.stage_counts("layer1.1", model)


def test_same_stage_random_keeps_the_counts_per_stage_and_follows_its_seed():
    model = models.build("resnet56")
    removed = ["layer1.0", "layer1.4", "layer3.2"]
    allowed = surgery.removable_blocks(model)
    draws = [criteria.same_stage_random(removed, model, seed) for seed in range(20)]
    for drawn in draws:
        assert criteria.stage_counts(drawn, model) == {1: 2, 2: 0, 3: 1}
        assert drawn == [n for n in allowed if n in drawn]              # forward order, removable only
    assert draws[3] == criteria.same_stage_random(removed, model, 3)   # same seed, same choice
    assert len({tuple(d) for d in draws}) >= 15                         # 36 x 8 = 288 choices
    assert criteria.same_stage_random([], model, 0) == []
    ticket = surgery.remove_blocks(model, draws[0])                     # a valid plan
    assert [len(ticket.layer1), len(ticket.layer2), len(ticket.layer3)] == [7, 9, 8]
    with pytest.raises(LotteryError, match="block 'layer2.0' is not removable"):
        criteria.same_stage_random(["layer2.0"], model, 0)
    with pytest.raises(LotteryError, match="seed must be an integer"):
        criteria.same_stage_random(removed, model, -1)


def test_uniform_blocks_is_the_plain_shallower_network():
    m56 = models.build("resnet56")
    assert criteria.uniform_blocks(m56, 12) == [f"layer{s}.{i}" for s in (1, 2, 3) for i in (5, 6, 7, 8)]
    for shortcut in ("A", "B", "conv"):   # ResNet56 - 12 blocks (4 per stage) is a ResNet32
        m = models.build("resnet56", shortcut=shortcut)
        ticket = surgery.remove_blocks(m, criteria.uniform_blocks(m, 12))
        assert _params(ticket) == _params(models.build("resnet32", shortcut=shortcut))
    m20 = models.build("resnet20")
    assert [criteria.uniform_blocks(m20, p) for p in range(4)] == [
        [], ["layer1.2"], ["layer1.2", "layer2.2"], ["layer1.2", "layer2.2", "layer3.2"]]
    assert criteria.uniform_blocks(m56, 13)[:5] == ["layer1.4", "layer1.5", "layer1.6", "layer1.7", "layer1.8"]
    uneven = CifarResNet([3, 9, 9])         # stage 1 may lose 1 block: the rest goes to stages 2 and 3
    counts = [criteria.stage_counts(criteria.uniform_blocks(uneven, p), uneven) for p in (3, 6, 15)]
    assert counts == [{1: 1, 2: 1, 3: 1}, {1: 1, 2: 3, 3: 2}, {1: 1, 2: 7, 3: 7}]
    assert criteria.uniform_blocks(uneven, 6) == ["layer1.2", "layer2.6", "layer2.7", "layer2.8", "layer3.7", "layer3.8"]
    with pytest.raises(LotteryError, match=r"^p must be an integer in 0..21 \(the blocks resnet56 may lose with "
                                           r"min_blocks_per_stage=2\), got 22$"):
        criteria.uniform_blocks(m56, 22)
    assert len(criteria.uniform_blocks(m56, 21)) == 21


def test_draw_seed_is_one_to_one_and_apart_from_the_run_seeds():
    seeds = {criteria.draw_seed(s, d) for s in range(100) for d in range(100)}
    assert len(seeds) == 100 * 100 and min(seeds) >= 2 ** 32
    assert criteria.draw_seed(5, 7) == 2 ** 32 + 5 * 1_000_003 + 7
    assert criteria.draw_seed(0, 1_000_002) < criteria.draw_seed(1, 0)   # streams of two runs never meet
    assert criteria.draw_seed(2 ** 31 - 1, 1_000_002) < 2 ** 63
    for bad in ((-1, 0), (0, -1), (0, 1_000_003), (2 ** 31, 0), (True, 0), (0.5, 0)):
        with pytest.raises(LotteryError, match="must be an integer in"):
            criteria.draw_seed(*bad)


def test_shuffled_labels_permutes_the_labels_and_keeps_the_images():
    batches = _batches()
    shuffled = criteria.shuffled_labels(batches, 3)
    assert [len(y) for _, y in shuffled] == [len(y) for _, y in batches] == [8, 8, 4]
    assert all(a[0] is b[0] for a, b in zip(batches, shuffled, strict=True))         # the same images
    before, after = torch.cat([y for _, y in batches]), torch.cat([y for _, y in shuffled])
    assert torch.equal(torch.sort(before).values, torch.sort(after).values)           # a permutation ...
    assert not torch.equal(before, after)                                             # ... across batches
    assert any(not torch.equal(a[1], b[1]) for a, b in zip(batches, shuffled, strict=True))
    again = criteria.shuffled_labels(batches, 3)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(shuffled, again, strict=True))
    assert not torch.equal(after, torch.cat([y for _, y in criteria.shuffled_labels(batches, 4)]))
    with pytest.raises(LotteryError, match="shuffled_labels needs at least one scoring batch"):
        criteria.shuffled_labels([], 0)


def test_random_inputs_keep_labels_and_shapes():
    batches = _batches()
    noise = criteria.random_inputs(batches, 0)
    for (x, y), (n, m) in zip(batches, noise, strict=True):
        assert m is y and n.shape == x.shape and n.dtype == x.dtype and not torch.equal(n, x)
    flat = torch.cat([n.flatten() for n, _ in noise])
    assert abs(float(flat.mean())) < 0.05 and abs(float(flat.std()) - 1) < 0.05       # N(0, 1)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(noise, criteria.random_inputs(batches, 0), strict=True))
    assert not torch.equal(noise[0][0], criteria.random_inputs(batches, 1)[0][0])
    with pytest.raises(LotteryError, match="random_inputs needs at least one scoring batch"):
        criteria.random_inputs(None, 0)


@pytest.mark.slow
def test_reads_labels_says_which_criteria_a_shuffled_label_control_changes():
    model = models.build("resnet20")
    batches = _batches(batch_size=128, images_per_class=1)
    shuffled = criteria.shuffled_labels(batches, 1)
    flags = {n: criteria.registry.get(n, "block").reads_labels for n in criteria.names("block")}
    assert any(flags.values()) and not all(flags.values())   # each flag is then checked by its scores below
    # the consensus reads labels through its default member snip, but fuses ranks, which a
    # shuffled-label draw may leave unchanged: its flag is its members' (checked), not a score test
    from lottery_core.criteria.consensus import DEFAULT_MEMBERS
    assert flags.pop("consensus") == any(flags[m] for m in DEFAULT_MEMBERS)
    for name, reads in flags.items():
        if not criteria.registry.get(name, "block").needs_data:   # magnitude, random, synflow read no data
            assert not reads
            continue
        same = _scores_or_refusal(model, name, batches) == _scores_or_refusal(model, name, shuffled)
        assert same is not reads, name


def _scores_or_refusal(model, name, batches):
    """The block scores, or the refusal's text where they cannot rank the blocks (branch HRank at
    θ_0: every map full rank, 1.0 for every block; `criteria.degenerate`): labels change neither."""
    try:
        return criteria.score_blocks(model, name, batches)
    except LotteryError as err:
        assert "cannot rank the blocks" in str(err), name
        return str(err)
