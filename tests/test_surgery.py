import copy

import pytest
import torch
from helpers import randomize_bn_stats as _randomize_bn_stats
from helpers import silence as _silence

from lottery_core import accounting, models, surgery
from lottery_core.errors import LotteryError

pytestmark = pytest.mark.numerical   # values oneDNN's kernels compute: CI reruns them under AVX2 and 1 thread

CASES = [("resnet20", {"shortcut": "A"}, 2), ("resnet20", {"shortcut": "B"}, 2),
         ("resnet20", {"shortcut": "conv"}, 2), ("resnet18", {}, 1),
         pytest.param("resnet50", {}, 2, marks=pytest.mark.slow),
         pytest.param("mobilenet_v2", {}, 1, marks=pytest.mark.slow)]


@pytest.mark.parametrize("name,options,min_blocks", CASES)
def test_removing_a_silenced_block_preserves_the_function(name, options, min_blocks):
    """Zero the last BN of a block's residual branch: removing that block changes nothing (eval)."""
    model = models.build(name, **options)
    _randomize_bn_stats(model)
    x = torch.rand(2, 3, 32, 32)
    blocks = surgery.removable_blocks(model, min_blocks_per_stage=min_blocks)
    assert blocks, name
    for block in blocks:
        silenced = copy.deepcopy(model)
        _silence(silenced, block)
        ticket = surgery.remove_blocks(silenced, [block], min_blocks_per_stage=min_blocks)
        silenced.eval(), ticket.eval()
        with torch.no_grad():
            torch.testing.assert_close(ticket(x), silenced(x), atol=1e-6, rtol=0)
        assert sum(p.numel() for p in ticket.parameters()) < sum(p.numel() for p in silenced.parameters())


def test_removable_blocks_of_resnet32_and_mobilenet():
    assert surgery.removable_blocks(models.build("resnet32")) == [
        "layer1.0", "layer1.1", "layer1.2", "layer1.3", "layer1.4",
        "layer2.1", "layer2.2", "layer2.3", "layer2.4", "layer3.1", "layer3.2", "layer3.3", "layer3.4"]
    assert surgery.removable_blocks(models.build("resnet18")) == []  # two blocks per stage, both kept
    assert surgery.removable_blocks(models.build("resnet18"), min_blocks_per_stage=1) == [
        "layer1.0", "layer1.1", "layer2.1", "layer3.1", "layer4.1"]
    assert surgery.removable_blocks(models.build("mobilenet_v2"))[:3] == ["features.5", "features.6", "features.8"]


def test_ticket_is_physically_shallower_and_the_original_untouched():
    model = models.build("resnet20")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ticket = surgery.remove_blocks(model, ["layer1.1", "layer3.2"])
    assert len(ticket.layer1) == 2 and len(ticket.layer3) == 2 and len(model.layer1) == 3
    assert not any(isinstance(m, torch.nn.Identity) for m in ticket.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert ticket.removed_blocks == ("layer1.1", "layer3.2")


def test_key_map_shifts_later_blocks_and_weights_are_copied_by_name():
    model = models.build("resnet20")
    ticket = surgery.remove_blocks(model, ["layer1.0"])
    key_map = ticket.dense_key_map
    assert key_map["layer1.1.conv1.weight"] == "layer1.0.conv1.weight"
    assert key_map["layer2.0.conv1.weight"] == "layer2.0.conv1.weight"
    assert "layer1.0.conv1.weight" not in key_map
    state = ticket.state_dict()
    for dense_key, ticket_key in key_map.items():
        assert torch.equal(state[ticket_key], model.state_dict()[dense_key])


def test_rewind_loads_other_epoch_weights_exactly():
    model = models.build("resnet20")
    ticket = surgery.remove_blocks(model, ["layer2.1"])
    theta_i = models.build("resnet20").state_dict()
    surgery.rewind_to(ticket, theta_i)
    for dense_key, ticket_key in ticket.dense_key_map.items():
        assert torch.equal(ticket.state_dict()[ticket_key], theta_i[dense_key])


def test_rewind_refuses_another_architecture():
    ticket = surgery.remove_blocks(models.build("resnet20"), ["layer2.1"])
    with pytest.raises(LotteryError, match="shape mismatch|lacks key"):
        surgery.rewind_to(ticket, models.build("resnet20", num_classes=100).state_dict())


def test_not_removable_block_names_the_removable_ones():
    with pytest.raises(LotteryError, match=r"block 'layer2.0' is not removable; removable blocks: layer1.0"):
        surgery.remove_blocks(models.build("resnet20"), ["layer2.0"])


def test_network_without_residual_blocks_is_refused():
    with pytest.raises(LotteryError, match="VGG has no removable residual blocks"):
        surgery.removable_blocks(models.build("vgg11_bn"))


def test_stage_budget_follows_min_blocks_per_stage():
    assert surgery.stage_budget(models.build("resnet56")) == {1: 7, 2: 7, 3: 7}
    assert surgery.stage_budget(models.build("resnet56"), min_blocks_per_stage=4) == {1: 5, 2: 5, 3: 5}
    assert surgery.stage_budget(models.build("resnet20"), min_blocks_per_stage=1) == {1: 2, 2: 2, 3: 2}
    # ResNet20 has 3 blocks per stage: with 3 kept per stage nothing may go, and p is at most 0
    assert surgery.stage_budget(models.build("resnet20"), min_blocks_per_stage=3) == {1: 0, 2: 0, 3: 0}
    assert surgery.max_removable(models.build("resnet20"), min_blocks_per_stage=3) == 0


def test_bypass_equals_removal():
    model = models.build("resnet20").eval()
    _randomize_bn_stats(model)
    ticket = surgery.remove_blocks(model, ["layer2.2"]).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad(), surgery.bypass_blocks(model, ["layer2.2"]):
        torch.testing.assert_close(model(x), ticket(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("shortcut,dense_filters", [("A", 1136), ("conv", 1232)])
def test_filter_ticket_matches_block_ticket_filter_count(shortcut, dense_filters):
    """PAPER.md Table 3: 1232 filters in the authors' ResNet32, 1200 after one stage-1 block."""
    model = models.build("resnet32", shortcut=shortcut)
    assert accounting.count_filters(model) == dense_filters
    block_ticket = surgery.remove_blocks(model, ["layer1.1"])
    target = accounting.count_filters(block_ticket)
    assert target == dense_filters - 32
    weight_scores = {k: p.detach().abs() for k, p in model.named_parameters()}
    scores = surgery.filter_scores(model, weight_scores)
    filter_ticket = surgery.prune_filters_to_count(model, scores, target)
    assert accounting.count_filters(filter_ticket) == target
    # residual channels stay: every block's last conv still writes the full width
    assert filter_ticket.layer1[0].conv2.out_channels == 16 and filter_ticket.fc.in_features == 64
    assert filter_ticket(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_filter_pruning_removes_the_lowest_scores():
    model = models.build("resnet20")
    scores = {name: torch.arange(model.get_submodule(name).out_channels, dtype=torch.float64) + 100
              for name in surgery.prunable_convs(model)}
    scores["layer2.1.conv1"][[3, 7]] = -1.0
    pruned = surgery.prune_filters(model, scores, 2)
    kept = pruned.layer2[1].conv1.weight
    expected = torch.cat([model.layer2[1].conv1.weight[i:i + 1] for i in range(32) if i not in (3, 7)])
    assert torch.equal(kept, expected)
    replayed = surgery.replay_pruning(models.build("resnet20"), pruned.pruning_history)
    assert replayed.layer2[1].conv1.out_channels == 30


def test_filter_pruning_bounds_are_named():
    model = models.build("resnet20")
    scores = {name: torch.ones(model.get_submodule(name).out_channels) for name in surgery.prunable_convs(model)}
    with pytest.raises(LotteryError, match="cannot prune 10000 filters; between 0 and"):
        surgery.prune_filters(model, scores, 10_000)


def test_max_removable_counts_the_stage_budgets():
    assert surgery.max_removable(models.build("resnet20")) == 3
    assert surgery.max_removable(models.build("resnet32")) == 9
    assert surgery.max_removable(models.build("resnet56")) == 21
    assert surgery.max_removable(models.build("resnet56"), min_blocks_per_stage=1) == 24


def test_remove_blocks_honours_min_blocks_per_stage():
    model = models.build("resnet20")
    with pytest.raises(LotteryError, match=r"removing 2 blocks from stage 1 .* at most 1 may go"):
        surgery.remove_blocks(model, ["layer1.0", "layer1.1"])
    assert len(surgery.remove_blocks(model, ["layer1.0", "layer1.1"], min_blocks_per_stage=1).layer1) == 1


def test_filter_ticket_matched_by_macs_is_the_fewest_filters_at_or_below_the_target():
    """Target: the MACs of resnet20 minus one stage-1 block. In a CIFAR ResNet one pruned filter of
    a block's conv1 (c_in -> w, HW output pixels) removes 9*c_in*HW MACs there and 9*w*HW from
    conv2's input: 18*16*1024 = 294,912 in stage 1, 9*(16+32)*256 = 110,592 in layer2.0,
    18*32*256 = 147,456 in layer2.1-2, 55,296 in layer3.0 and 73,728 in layer3.1-2."""
    torch.manual_seed(0)
    model = models.build("resnet20")
    scores = {name: torch.rand(model.get_submodule(name).out_channels, dtype=torch.float64)
              for name in surgery.prunable_convs(model)}
    dense = accounting.count_macs(model)
    target = accounting.count_macs(surgery.remove_blocks(model, ["layer1.1"]))
    assert dense - target == 4_718_592
    ticket = surgery.prune_filters_to_macs(model, scores, target)
    macs = accounting.count_macs(ticket)
    # a from-scratch recount: dense MACs minus the per-filter worth of every pruned filter
    hw = {1: 32 * 32, 2: 16 * 16, 3: 8 * 8}
    per_filter = {name: 9 * hw[int(name[5])] * (model.get_submodule(name).in_channels
                                                 + model.get_submodule(name[:-1] + "2").out_channels)
                  for name in scores}  # name: "layerS.i.conv1"
    assert max(per_filter.values()) == 294_912 and per_filter["layer2.0.conv1"] == 110_592
    pruned = {name: model.get_submodule(name).out_channels - ticket.get_submodule(name).out_channels
              for name in scores}
    assert macs == dense - sum(k * per_filter[name] for name, k in pruned.items())
    assert macs == accounting.count_macs(surgery.replay_pruning(model, ticket.pruning_history))
    # the rule: MACs <= target, and one filter fewer would exceed it
    n = sum(pruned.values())
    assert 0 <= target - macs < 294_912
    assert accounting.count_macs(surgery.prune_filters(model, scores, n - 1)) > target
    assert ticket(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_filter_ticket_matched_by_macs_bounds():
    model = models.build("resnet20")
    scores = {name: torch.ones(model.get_submodule(name).out_channels) for name in surgery.prunable_convs(model)}
    dense = accounting.count_macs(model)
    untouched = surgery.prune_filters_to_macs(model, scores, dense)
    assert accounting.count_filters(untouched) == accounting.count_filters(model)
    with pytest.raises(LotteryError, match="cannot bring MACs to 1,000: pruning all 327 prunable filters leaves"):
        surgery.prune_filters_to_macs(model, scores, 1_000)
