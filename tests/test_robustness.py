import numpy as np
import pytest
import torch
import torch.nn as nn

from lottery_core import robustness
from lottery_core.errors import LotteryError
from lottery_core.robustness import CORRUPTIONS, corrupt


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(6, 3, 8, 8, generator=g), size=32, mode="bilinear")
    return (smooth * 200 + 20).to(torch.uint8)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_is_deterministic_changes_the_image_and_grows_with_severity(images, name):
    light, heavy = corrupt(images, name, 1, seed=3), corrupt(images, name, 5, seed=3)
    assert light.shape == images.shape and light.dtype == torch.uint8
    assert torch.equal(light, corrupt(images, name, 1, seed=3))
    change = [(c.float() - images.float()).abs().mean().item() for c in (light, heavy)]
    assert change[0] > 0.1
    if name != "elastic_transform":  # its CIFAR severities trade affine for elastic strength
        assert change[1] > change[0]


def test_the_fifteen_cifar_c_corruptions():
    assert len(CORRUPTIONS) == 15 and set(robustness.SUBSTITUTES) == {"motion_blur", "snow"}


@pytest.mark.parametrize("call,message", [
    (lambda x: corrupt(x, "rain", 1), r"unknown corruption 'rain'; choose one of: brightness"),
    (lambda x: corrupt(x, "fog", 0), r"severity 0 is outside 1-5"),
    (lambda x: corrupt(x, "fog", 6), r"severity 6 is outside 1-5"),
    (lambda x: corrupt(x.float(), "fog", 1), r"corrupt needs uint8 images"),
])
def test_bad_corruption_arguments(images, call, message):
    with pytest.raises(LotteryError, match=message):
        call(images)


def test_official_shifted_formats_are_read(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "c").mkdir()
    np.save(tmp_path / "c" / "fog.npy", rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8))
    np.save(tmp_path / "c" / "labels.npy", np.arange(10) % 3)
    x, y = robustness.load_cifar_c(tmp_path / "c", "fog", 2)
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [2, 0]
    np.save(tmp_path / "cifar10.1_v6_data.npy", rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8))
    np.save(tmp_path / "cifar10.1_v6_labels.npy", np.array([1, 2, 3, 4]))
    assert robustness.load_cifar10_1(tmp_path)[1].tolist() == [1, 2, 3, 4]
    np.savez(tmp_path / "cifar102_test.npz", images=rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8),
             labels=np.array([0, 1, 0]))
    x, y = robustness.load_cifar10_2(tmp_path)
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.uint8
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 5))
    acc = robustness.shifted_accuracy(model, tmp_path, "cifar10_2", (0.5,) * 3, (0.25,) * 3)
    assert acc in (0.0, 100 / 3, 200 / 3, 100.0)
    with pytest.raises(LotteryError, match="missing file .*cifar10.1_v4_data.npy"):
        robustness.load_cifar10_1(tmp_path, "v4")


@pytest.fixture(scope="module")
def trained():
    """A tiny conv net trained to ~100% on bright-vs-dark images (label = brightness above 0.5)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    level = torch.rand(400, 1, 1, 1, generator=g) * 0.6 + 0.2
    x = (level + 0.02 * torch.randn(400, 3, 8, 8, generator=g)).clamp(0, 1)
    y = (level.flatten() > 0.5).long()
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model((x - 0.5) / 0.25), y).backward()
        opt.step()
    return model, (x * 255).round().to(torch.uint8), y


def test_attacks_lower_the_accuracy_of_a_trained_model(trained):
    model, x, y = trained
    clean = robustness.adversarial_accuracy(model, x, y, (0.5,) * 3, (0.25,) * 3, attack="pgd", eps=0.0)
    fgsm = robustness.adversarial_accuracy(model, x, y, (0.5,) * 3, (0.25,) * 3, attack="fgsm", eps=0.2)
    pgd = robustness.adversarial_accuracy(model, x, y, (0.5,) * 3, (0.25,) * 3, attack="pgd", eps=0.2,
                                          steps=10, alpha=0.05)
    assert clean > 95
    assert pgd < 50 and pgd <= fgsm < clean
    assert model.training  # mode restored


def test_attack_arguments_are_checked(trained):
    model, x, y = trained
    with pytest.raises(LotteryError, match=r"unknown attack 'cw'; choose one of: fgsm, pgd"):
        robustness.adversarial_accuracy(model, x, y, (0.5,) * 3, (0.25,) * 3, attack="cw")
    with pytest.raises(LotteryError, match=r"epsilon 2 is outside \[0, 1\]"):
        robustness.adversarial_accuracy(model, x, y, (0.5,) * 3, (0.25,) * 3, eps=2)


def test_corruption_accuracy_reports_every_level(trained):
    model, x, y = trained
    big = torch.nn.functional.interpolate(x.float(), size=32).round().to(torch.uint8)
    report = robustness.corruption_accuracy(model, big[:40], y[:40], (0.5,) * 3, (0.25,) * 3,
                                            names=("contrast", "brightness"), severities=(1, 5))
    assert set(report["per_severity"]["contrast"]) == {1, 5} and report["per_severity"]["contrast"][1] == 100.0
    assert report["mean"] == pytest.approx(np.mean(list(report["per_corruption"].values())))
    # brightness +0.3 turns dark images bright: the brightness classifier fails on them
    assert report["per_severity"]["brightness"][5] < report["per_severity"]["brightness"][1]
