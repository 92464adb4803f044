import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lottery_core import accounting, models, surgery

# Values per map of one 32x32 image: stage 1 16x32x32, stage 2 32x16x16, stage 3 64x8x8.
S1, S2, S3 = 16 * 32 * 32, 32 * 16 * 16, 64 * 8 * 8
# Parameters of one identity block: two 3x3 convs w->w (no bias) and two BNs (weight, bias).
BLOCK_PARAMS = {1: 2 * 16 * 16 * 9 + 4 * 16, 2: 2 * 32 * 32 * 9 + 4 * 32, 3: 2 * 64 * 64 * 9 + 4 * 64}


def cifar_activations(n: int, shortcut_convs: bool) -> int:
    """Closed form for a CIFAR ResNet of depth 6n+2: stem conv/BN/ReLU, 6 maps per block
    (conv, BN, ReLU, conv, BN, ReLU after the addition), the two 1x1 shortcut convs
    (shortcut="conv"; "A" pads, which is not counted), pooled features (64) and logits (10)."""
    return (3 * S1 + 6 * n * (S1 + S2 + S3) + (S2 + S3 if shortcut_convs else 0) + 64 + 10)


@pytest.mark.slow
def test_resnet56_macs_match_the_paper():
    assert accounting.count_macs(models.build("resnet56", shortcut="conv")) == 125_747_840
    assert accounting.count_macs(models.build("resnet56", shortcut="A")) == 125_485_696


@pytest.mark.slow
def test_resnet56_without_twelve_blocks_is_45_percent_cheaper():
    model = models.build("resnet56", shortcut="conv")
    twelve = [f"layer{stage}.{i}" for stage in (1, 2, 3) for i in range(1, 5)]
    ticket = surgery.remove_blocks(model, twelve)
    dense, cheap = accounting.count_macs(model), accounting.count_macs(ticket)
    assert dense - cheap == 12 * 4_718_592
    assert round(100 * (1 - cheap / dense), 1) == 45.0  # 45.03; the paper prints 45.00


@pytest.mark.slow
def test_resnet32_one_block_is_6_83_percent():
    model = models.build("resnet32", shortcut="conv")
    assert accounting.count_macs(model) == 69_124_736
    reduction = accounting.measure(surgery.remove_blocks(model, ["layer1.1"])).reduction_vs(accounting.measure(model))
    assert reduction["macs"] == pytest.approx(6.826, abs=1e-3)


def test_memory_is_four_bytes_per_activation_and_parameter():
    cost = accounting.measure(models.build("resnet20"))
    assert cost.params == 269_722
    assert cost.activations == cifar_activations(3, shortcut_convs=False) == 565_322
    assert cost.memory_bytes == 4 * (cost.params + cost.activations)
    assert cost.filters == 16 + 6 * (16 + 32 + 64)


@pytest.mark.slow
def test_memory_of_the_authors_resnets_and_their_tickets_is_pinned():
    """shortcut="conv". By hand, ResNet32 (n = 5): 3*16384 + 30*(16384 + 8192 + 4096)
    + 8192 + 4096 + 74 = 49,152 + 860,160 + 12,288 + 74 = 921,674 activations;
    464,154 + 2,560 = 466,714 params; 4 * 1,388,388 = 5,553,552 bytes. One stage-1 block holds
    6 * 16384 = 98,304 activations and 4,672 params: 7.42 % of the memory."""
    r32, r56 = models.build("resnet32", shortcut="conv"), models.build("resnet56", shortcut="conv")
    dense32, dense56 = accounting.measure(r32), accounting.measure(r56)
    assert (dense32.activations, dense32.params, dense32.memory_bytes) == (921_674, 466_714, 5_553_552)
    assert (dense56.activations, dense56.params, dense56.memory_bytes) == (1_609_802, 855_578, 9_861_520)
    assert dense32.activations == cifar_activations(5, shortcut_convs=True)
    assert dense56.activations == cifar_activations(9, shortcut_convs=True)

    ticket32 = accounting.measure(surgery.remove_blocks(r32, ["layer1.1"]))
    assert (ticket32.activations, ticket32.params, ticket32.memory_bytes) == (823_370, 462_042, 5_141_648)
    assert dense32.memory_bytes - ticket32.memory_bytes == 4 * (6 * S1 + BLOCK_PARAMS[1])
    assert ticket32.reduction_vs(dense32)["memory_bytes"] == pytest.approx(7.417, abs=1e-3)  # paper: 10.13

    ticket56 = accounting.measure(surgery.remove_blocks(r56, ["layer1.1", "layer1.2", "layer1.3"]))
    assert (ticket56.activations, ticket56.params, ticket56.memory_bytes) == (1_314_890, 841_562, 8_625_808)
    assert dense56.memory_bytes - ticket56.memory_bytes == 3 * 4 * (6 * S1 + BLOCK_PARAMS[1])
    assert ticket56.reduction_vs(dense56)["memory_bytes"] == pytest.approx(12.53, abs=1e-2)  # paper: 15.15


def test_relu_outputs_count_by_one_rule_in_every_model_family():
    """CIFAR ResNets call F.relu, torchvision nets call (and reuse) inplace nn.ReLU modules: both
    count every ReLU output, once per call."""
    # torchvision resnet18 on 32x32: stem conv/BN/ReLU at 64x16x16, max pool to 64x8x8, then
    # 2 blocks of 6 maps per stage (BasicBlock calls self.relu twice) and 2 downsample maps
    # (conv, BN) in stages 2-4; pooled 512 + logits 10.
    maps = [64 * 8 * 8, 128 * 4 * 4, 256 * 2 * 2, 512 * 1 * 1]
    resnet18 = 3 * 64 * 16 * 16 + maps[0] + sum(12 * m for m in maps) + sum(2 * m for m in maps[1:]) + 512 + 10
    assert accounting.count_activations(models.build("resnet18")) == resnet18 == 153_098

    class Net(nn.Module):  # the same network in three code styles
        def __init__(self, style):
            super().__init__()
            self.style, self.conv1, self.bn, self.relu = style, nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True)
            self.conv2, self.pool, self.fc = nn.Conv2d(4, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Linear(4, 2)

        def act(self, x):
            return {"module": self.relu, "functional": F.relu, "method": torch.Tensor.relu_}[self.style](x)

        def forward(self, x):
            x = self.act(self.bn(self.conv1(x)))
            x = self.act(x + self.conv2(x))
            x = self.act(self.conv2(x))  # conv2 and (style "module") the ReLU module reused
            return self.fc(torch.flatten(self.pool(x), 1))

    expected = 7 * 4 * 8 * 8 + 4 + 2  # conv1, BN, ReLU, conv2, ReLU, conv2, ReLU maps; pooled; logits
    for style in ("module", "functional", "method"):
        assert accounting.count_activations(Net(style), (3, 8, 8)) == expected, style


def test_latency_is_the_median_of_the_timed_passes_after_the_warmup(monkeypatch):
    """A fake clock that only the forward pass advances: pass k (warm-up included) takes k + 1 s."""
    clock = {"now": 0.0, "passes": 0}

    def forward_pass(*_):
        clock["passes"] += 1
        clock["now"] += clock["passes"]

    monkeypatch.setattr(accounting.time, "perf_counter", lambda: clock["now"])
    model = models.build("resnet20")
    model.register_forward_hook(forward_pass)
    assert accounting.latency(model, batch_size=2, repeats=3, warmup=1) == 3   # median of 2, 3, 4 s
    assert clock["passes"] == 4
