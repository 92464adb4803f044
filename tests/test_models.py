import pytest
import torch

from lottery_core import models
from lottery_core.errors import LotteryError

# PAPER.md, "Reference parameter counts" (10 classes).
OPTION_A_PARAMS = {"resnet20": 269_722, "resnet32": 464_154, "resnet56": 853_018, "resnet110": 1_727_962}


@pytest.mark.parametrize("name,count", OPTION_A_PARAMS.items())
def test_option_a_parameter_counts(name, count):
    assert sum(p.numel() for p in models.build(name).parameters()) == count


@pytest.mark.parametrize("shortcut,extra", [("B", 2_752), ("conv", 2_560)])
def test_shortcut_variants_add_the_papers_parameters(shortcut, extra):
    for name, count in OPTION_A_PARAMS.items():
        model = models.build(name, shortcut=shortcut)
        assert sum(p.numel() for p in model.parameters()) == count + extra


def test_resnet44_has_depth_44():
    model = models.build("resnet44")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) + 1 == 44  # 43 convs + fc


def test_block_names_follow_torchvision():
    names = dict(models.build("resnet20").named_modules())
    assert {"layer1.0", "layer2.2.conv1", "layer3.2.bn2", "fc"} <= set(names)


@pytest.mark.slow
def test_forward_shapes_and_classes():
    x = torch.randn(2, 3, 32, 32)
    assert models.build("resnet20", num_classes=100)(x).shape == (2, 100)
    assert models.build("mobilenet_v2")(x).shape == (2, 10)


def test_unknown_model_names_the_choices():
    with pytest.raises(LotteryError, match=r"unknown model 'resnet21'.*resnet20.*resnet56"):
        models.build("resnet21")


def test_unknown_shortcut_names_the_choices():
    with pytest.raises(LotteryError, match=r"unknown shortcut 'C'; choose one of: A, B, conv"):
        models.build("resnet20", shortcut="C")


def test_a_model_is_one_decorated_builder_and_the_run_config_knows_it():
    from pipelines.config import load_config

    @models.register_model("tiny_test_net")
    def tiny(num_classes: int = 10, width: int = 8) -> torch.nn.Module:
        return models.CifarResNet(2, num_classes=num_classes, widths=(width, 2 * width, 4 * width))

    try:
        assert models.build("tiny_test_net", num_classes=4).fc.out_features == 4
        assert "tiny_test_net" in models.names() and models.options("tiny_test_net") == {"width"}
        base = ["model.name=tiny_test_net", "pruning.min_blocks_per_stage=1"]
        assert load_config(None, [*base, "pruning.p=3"]).pruning.p == 3   # one block per stage
        with pytest.raises(LotteryError, match=r"^pruning.p=4 exceeds the 3 blocks tiny_test_net may lose "
                                               r"\(min_blocks_per_stage=1\)$"):
            load_config(None, [*base, "pruning.p=4"])
        with pytest.raises(LotteryError, match=r"^model 'tiny_test_net' is registered twice$"):
            models.register_model("tiny_test_net")(tiny)
    finally:
        models.registry._BUILDERS.pop("tiny_test_net")
        models.skeleton.cache_clear()


@pytest.mark.parametrize("name", models.names())
def test_a_seeded_build_is_seeding_then_building_and_leaves_the_global_stream_alone(name):
    torch.manual_seed(7)
    expected = models.build(name, num_classes=4).state_dict()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    built = models.build(name, num_classes=4, seed=7).state_dict()
    assert torch.equal(torch.get_rng_state(), before)   # not advanced, not reseeded
    assert list(built) == list(expected)
    for key, value in expected.items():
        assert torch.equal(built[key], value), key   # bit for bit


def test_a_seed_must_be_an_integer():
    with pytest.raises(LotteryError, match=r"^seed must be an integer or None, got 1.5$"):
        models.build("resnet20", seed=1.5)
