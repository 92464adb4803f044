import pytest

from lottery_core import accounting, models, surgery


def test_resnet56_macs_match_the_paper():
    assert accounting.count_macs(models.build("resnet56", shortcut="conv")) == 125_747_840
    assert accounting.count_macs(models.build("resnet56", shortcut="A")) == 125_485_696


def test_resnet56_without_twelve_blocks_is_45_percent_cheaper():
    model = models.build("resnet56", shortcut="conv")
    twelve = [f"layer{stage}.{i}" for stage in (1, 2, 3) for i in range(1, 5)]
    ticket = surgery.remove_blocks(model, twelve)
    dense, cheap = accounting.count_macs(model), accounting.count_macs(ticket)
    assert dense - cheap == 12 * 4_718_592
    assert round(100 * (1 - cheap / dense), 1) == 45.0  # 45.03; the paper prints 45.00


def test_resnet32_one_block_is_6_83_percent():
    model = models.build("resnet32", shortcut="conv")
    assert accounting.count_macs(model) == 69_124_736
    reduction = accounting.measure(surgery.remove_blocks(model, ["layer1.1"])).reduction_vs(accounting.measure(model))
    assert reduction["macs"] == pytest.approx(6.826, abs=1e-3)


def test_memory_is_four_bytes_per_activation_and_parameter():
    cost = accounting.measure(models.build("resnet20"))
    assert cost.params == 269_722
    assert cost.memory_bytes == 4 * (cost.params + cost.activations)
    assert cost.filters == 16 + 6 * (16 + 32 + 64)


def test_latency_is_positive_seconds():
    assert 0 < accounting.latency(models.build("resnet20"), batch_size=4, repeats=3, warmup=1) < 10
