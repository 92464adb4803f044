import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lottery_core import robustness
from lottery_core.errors import LotteryError
from lottery_core.robustness import CORRUPTIONS, SEVERITIES, corrupt, image_ops
from lottery_core.robustness import recipes as C

pytestmark = pytest.mark.numerical   # values oneDNN's kernels compute: CI reruns them under AVX2 and 1 thread

MEAN, STD = (0.5,) * 3, (0.25,) * 3
# corruptions without random draws: the seed cannot change them
DETERMINISTIC = {"defocus_blur", "zoom_blur", "contrast", "brightness", "pixelate", "jpeg_compression"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The tensors here are tiny: a second torch thread only adds synchronisation, which costs up to
    50x on a shared, loaded machine. Restored after the module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images():
    """Six 32x32 images: smooth colour fields plus fine texture, values 20..220."""
    g = torch.Generator().manual_seed(0)
    smooth = nn.functional.interpolate(torch.rand(6, 3, 4, 4, generator=g), size=32, mode="bicubic")
    texture = torch.rand(6, 3, 32, 32, generator=g)
    return ((0.7 * smooth + 0.3 * texture).clamp(0, 1) * 200 + 20).to(torch.uint8)


def _change(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().mean().item()


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_keeps_the_format_changes_the_image_and_is_seeded(images, name, severity):
    out = corrupt(images, name, severity, seed=3)
    assert out.shape == images.shape and out.dtype == torch.uint8 and out.device == images.device
    assert _change(out, images) > 0.3
    assert torch.equal(out, corrupt(images, name, severity, seed=3))  # same seed, same bytes
    if name in DETERMINISTIC:
        assert torch.equal(out, corrupt(images, name, severity, seed=4))
    else:
        assert not torch.equal(out, corrupt(images, name, severity, seed=4))


@pytest.mark.parametrize("name", sorted(set(CORRUPTIONS) - {"elastic_transform"}))
def test_severity_five_changes_images_more_than_severity_one(images, name):
    light, heavy = (_change(corrupt(images, name, s, seed=3), images) for s in (1, 5))
    assert heavy > 1.1 * light


def test_elastic_severity_five_distorts_locally_more_than_severity_one():
    """CIFAR-10-C's elastic severities trade a global affine warp (large at 1) for local elastic
    displacement (large at 5), so the mean pixel change even falls. Measured instead: how far the
    sampled positions stray from the best affine map, read off an image that encodes (row, col)."""
    rows, cols = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    ramp = torch.stack([rows * 8, cols * 8, torch.full_like(rows, 128)]).to(torch.uint8)[None].repeat(8, 1, 1, 1)
    inner = (slice(None), slice(None, 2), slice(4, 28), slice(4, 28))  # away from the reflected border
    a = torch.stack([rows[4:28, 4:28].flatten(), cols[4:28, 4:28].flatten(), torch.ones(576)], 1).double()

    def non_affine(severity: int) -> float:
        source = corrupt(ramp, "elastic_transform", severity, seed=3)[inner].double().div(8).flatten(2)
        residuals = [(a @ torch.linalg.lstsq(a, s.T).solution - s.T).norm(dim=1).mean() for s in source]
        return torch.stack(residuals).mean().item()

    light, heavy = non_affine(1), non_affine(5)
    assert light < 0.15 and heavy > 0.4  # pixels; severity 1 is (almost) a pure affine warp


def test_noise_and_contrast_use_the_cifar_constants():
    """CIFAR-10-C, not ImageNet-C: Gaussian noise sigma 0.04..0.10, contrast factor 0.75..0.15."""
    grey = torch.full((20, 3, 32, 32), 128, dtype=torch.uint8)
    sigmas = [(corrupt(grey, "gaussian_noise", s).float() - 127.5).std().item() / 255 for s in SEVERITIES]
    assert sigmas == pytest.approx([0.04, 0.06, 0.08, 0.09, 0.10], rel=0.03)
    stripes = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    stripes[..., ::2] = 200
    factors = [(corrupt(stripes, "contrast", s).float().std() / stripes.float().std()).item() for s in SEVERITIES]
    assert factors == pytest.approx([0.75, 0.5, 0.4, 0.3, 0.15], abs=0.01)


def test_glass_blur_is_the_recipes_pixel_loop():
    """One batched gather per pass reproduces the recipe's sequential loop, whose numpy 'swap'
    x[h, w], x[h', w'] = x[h', w'], x[h, w] copies the neighbour onto (h, w) only."""
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    offsets = np.random.default_rng(1).integers(-1, 1, size=(2, 30, 30, 2))
    expected = x.copy()
    for n in range(2):
        img = expected[n]
        for h in range(31, 1, -1):
            for w in range(31, 1, -1):
                dx, dy = offsets[n, h - 2, w - 2]
                img[h, w], img[h + dy, w + dx] = img[h + dy, w + dx], img[h, w]
    got = x.copy()  # the gather glass_blur does per pass
    visited = np.arange(2, 32)
    got[:, 2:32, 2:32] = got[np.arange(2)[:, None, None], visited[None, :, None] + offsets[..., 1],
                             visited[None, None, :] + offsets[..., 0]]
    assert np.array_equal(got, expected)
    # and glass_blur draws its offsets with exactly that shape, once per pass
    shapes = []

    class Recorder:
        def integers(self, low, high, size):
            shapes.append((low, high, size))
            return np.zeros(size, dtype=np.int64)

    C.glass_blur(x, 4, Recorder())
    assert shapes == [(-1, 1, (2, 30, 30, 2))] * 2


def test_brightness_matches_skimage_and_zoom_blur_matches_scipy(images):
    from scipy.ndimage import zoom
    from skimage.color import hsv2rgb, rgb2hsv

    x = images.permute(0, 2, 3, 1).numpy()
    hsv = rgb2hsv(x / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + 0.3, 0, 1)
    assert np.array_equal(C.brightness(x, 5, None), image_ops.floor_uint8(hsv2rgb(hsv)))
    img = (x[0] / 255.0).astype(np.float32)
    crop = int(np.ceil(32 / 1.2))
    top = (32 - crop) // 2
    zoomed = zoom(img[top:top + crop, top:top + crop], (1.2, 1.2, 1), order=1)
    trim = (zoomed.shape[0] - 32) // 2
    assert np.array_equal(image_ops.clipped_zoom(img[None], 1.2)[0], zoomed[trim:trim + 32, trim:trim + 32])


def test_blocks_do_not_depend_on_what_follows(images):
    many = images.repeat(100, 1, 1, 1)  # 600 images: two generator blocks
    assert torch.equal(corrupt(many, "shot_noise", 2)[:6], corrupt(images, "shot_noise", 2))
    assert not torch.equal(corrupt(many, "shot_noise", 2)[500:506], corrupt(images, "shot_noise", 2))


@pytest.mark.parametrize("call,message", [
    (lambda x: corrupt(x, "rain", 1), r"unknown corruption 'rain'; choose one of: brightness, contrast, defocus_blur"),
    (lambda x: corrupt(x, "fog", 0), r"severity 0 is outside 1-5; choose one of: 1, 2, 3, 4, 5"),
    (lambda x: corrupt(x, "fog", 6), r"severity 6 is outside 1-5"),
    (lambda x: corrupt(x, "fog", 2.5), r"severity 2.5 is outside 1-5"),
    (lambda x: corrupt(x, "fog", True), r"severity True is outside 1-5"),
    (lambda x: corrupt(x.float(), "fog", 1), r"corrupt needs uint8 images \(N, 3, 32, 32\).*got torch.float32"),
    (lambda x: corrupt(x.repeat(1, 1, 2, 2), "fog", 1), r"got torch.uint8 \(6, 3, 64, 64\)"),
    (lambda x: robustness.corruption_accuracy(nn.Linear(1, 1), x, None, MEAN, STD, names=("fog", "hail")),
     r"unknown corruption 'hail'"),
    (lambda x: robustness.corruption_accuracy(nn.Linear(1, 1), x, None, MEAN, STD, severities=(1, 7)),
     r"severity 7 is outside 1-5"),
])
def test_bad_corruption_arguments(images, call, message):
    with pytest.raises(LotteryError, match=message):
        call(images)


def test_frost_without_its_textures_is_skipped_with_the_reason(monkeypatch, trained):
    model, x, y = trained

    def missing():
        raise image_ops.AssetMissing("frost needs the six frost photographs; not found in /nowhere")

    monkeypatch.setattr(image_ops, "_frost_folder", missing)
    with pytest.raises(robustness.CorruptionUnavailable, match="not found in /nowhere"):
        corrupt(x[:2], "frost", 1)
    report = robustness.corruption_accuracy(model, x[:20], y[:20], MEAN, STD, names=("frost", "contrast"),
                                            severities=(1,))
    assert report["skipped"] == {"frost": "frost needs the six frost photographs; not found in /nowhere"}
    assert set(report["per_corruption"]) == {"contrast"} and report["mean"] == report["per_corruption"]["contrast"]
    only_frost = robustness.corruption_accuracy(model, x[:20], y[:20], MEAN, STD, names=("frost",), severities=(1,))
    assert math.isnan(only_frost["mean"]) and only_frost["per_corruption"] == {}


def _level_images(levels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    x = (levels.view(-1, 1, 1, 1) + 0.02 * torch.randn(len(levels), 3, 32, 32, generator=g)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def trained():
    """A tiny conv net trained in a few seconds to ~100% on bright-vs-dark 32x32 images whose mean
    brightness is within 0.005..0.04 of the 0.5 threshold (so an 8/255 budget can cross it)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    side = torch.randint(0, 2, (200,), generator=g)
    levels = 0.5 + (2 * side - 1) * (0.005 + 0.035 * torch.rand(200, generator=g))
    x = _level_images(levels, g)
    model = nn.Sequential(nn.AvgPool2d(4), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    inputs = (x.float() / 255 - 0.5) / 0.25
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(inputs), side).backward()
        opt.step()
    model.train()
    return model, x, side


def test_attacks_lower_the_accuracy_of_a_trained_model(trained):
    model, x, y = trained
    acc = {(attack, eps): robustness.adversarial_accuracy(model, x, y, MEAN, STD, attack=attack, eps=eps)
           for attack in ("fgsm", "pgd") for eps in (0.0, 2 / 255, 8 / 255)}
    clean = acc["pgd", 0.0]
    assert clean >= 98 and acc["fgsm", 0.0] == clean
    assert acc["pgd", 8 / 255] < 50 and acc["pgd", 8 / 255] < acc["pgd", 2 / 255] < clean
    assert acc["pgd", 8 / 255] <= acc["fgsm", 8 / 255] < clean
    assert acc["pgd", 2 / 255] <= acc["fgsm", 2 / 255]
    assert model.training  # mode restored


def test_attacks_are_seeded_and_leave_the_callers_rng_alone(trained):
    model, x, y = trained
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = robustness.adversarial_accuracy(model, x, y, MEAN, STD, eps=4 / 255, seed=5, n_images=100)
    assert torch.equal(torch.rand(3), expected_next)
    assert robustness.adversarial_accuracy(model, x, y, MEAN, STD, eps=4 / 255, seed=5, n_images=100,
                                           batch_size=100) == first
    assert robustness.adversarial_accuracy(model, x, y, MEAN, STD, eps=4 / 255, seed=5, n_images=100,
                                           batch_size=30) == first  # batching does not change it


def test_standard_attacks_report_the_four_budgets(trained):
    model, x, y = trained
    report = robustness.standard_attacks(model, x, y, MEAN, STD, n_images=120)
    assert set(report) == {"adv_acc.fgsm.eps2", "adv_acc.fgsm.eps8", "adv_acc.pgd.eps2", "adv_acc.pgd.eps8"}
    assert report["adv_acc.pgd.eps8"] == robustness.adversarial_accuracy(model, x, y, MEAN, STD, n_images=120)
    assert report["adv_acc.pgd.eps8"] < report["adv_acc.pgd.eps2"]


@pytest.mark.parametrize("kwargs,message", [
    ({"attack": "cw"}, r"unknown attack 'cw'; choose one of: fgsm, pgd"),
    ({"eps": 2}, r"epsilon 2 is outside \[0, 1\]"),
    ({"eps": -0.01}, r"epsilon -0.01 is outside \[0, 1\]"),
    ({"eps": float("nan")}, r"epsilon nan is outside \[0, 1\]"),
    ({"eps": "8/255"}, r"epsilon '8/255' is outside \[0, 1\]"),
    ({"steps": 0}, r"steps must be a positive integer, got 0"),
    ({"alpha": -1}, r"alpha must be a positive number, got -1"),
    ({"n_images": 0}, r"n_images must be a positive integer, got 0"),
])
def test_attack_arguments_are_checked(trained, kwargs, message):
    model, x, y = trained
    with pytest.raises(LotteryError, match=message):
        robustness.adversarial_accuracy(model, x, y, MEAN, STD, **kwargs)


def test_corruption_accuracy_reports_every_level(trained):
    model, x, y = trained
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = robustness.corruption_accuracy(model, x[:60], y[:60], MEAN, STD,
                                            names=("contrast", "brightness", "motion_blur"), severities=(1, 5))
    assert set(report["per_severity"]) == {"contrast", "brightness", "motion_blur"}
    assert set(report["per_severity"]["contrast"]) == {1, 5}
    # contrast keeps each image's mean (the feature learnt); brightness +0.3 makes every image bright
    assert report["per_severity"]["contrast"][1] >= 98 and report["per_severity"]["brightness"][5] <= 60
    assert report["per_corruption"]["contrast"] == np.mean(list(report["per_severity"]["contrast"].values()))
    assert report["mean"] == pytest.approx(np.mean(list(report["per_corruption"].values())))
    assert report["skipped"] == {} and set(report["substitutes"]) == {"motion_blur"}
    assert report["seconds"]["corrupt"] > 0 and report["seconds"]["evaluate"] > 0
    # the caller's model is untouched: same weights, same memory format, same mode
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model[1].weight.is_contiguous()
    plain = robustness.corruption_accuracy(model, x[:60], y[:60], MEAN, STD, names=("contrast", "brightness",
                                           "motion_blur"), severities=(1, 5), channels_last=False)
    assert plain["per_severity"] == report["per_severity"]


def test_the_fifteen_cifar_c_corruptions_and_their_substitutes():
    assert CORRUPTIONS == ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
                           "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
                           "elastic_transform", "pixelate", "jpeg_compression")
    assert set(robustness.SUBSTITUTES) == {"motion_blur", "snow"}
    assert len(image_ops.frost_textures()) == 6  # shipped with imagecorruptions


# ---- official shifted sets, in tiny files written in their formats --------------------------------


@pytest.fixture(scope="module")
def bright_dark():
    """20 HWC uint8 images the trained model gets right, and their labels (1 = bright)."""
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(20) % 2
    x = _level_images(0.5 + (2 * labels - 1) * 0.2, g)
    return x.permute(0, 2, 3, 1).numpy(), labels.numpy()


def test_cifar_c_files_are_read_by_severity(tmp_path, trained, bright_dark):
    model, _, _ = trained
    images, labels = bright_dark
    for name in ("fog", "snow"):  # 5 severities x 4 images; snow's labels are inverted at severity 2
        np.save(tmp_path / f"{name}.npy", np.concatenate([images[:4]] * 5))
    np.save(tmp_path / "labels.npy", np.tile(labels[:4], 5).astype(np.uint8))
    x, y = robustness.load_cifar_c(tmp_path, "fog", 2)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(images[:4]).permute(0, 3, 1, 2)) and y.tolist() == [0, 1, 0, 1]
    report = robustness.cifar_c_accuracy(model, tmp_path, MEAN, STD, corruptions=("fog", "snow"))
    assert report["per_severity"]["fog"] == {s: 100.0 for s in SEVERITIES} and report["mean"] == 100.0
    assert robustness.shifted_accuracy(model, tmp_path, "cifar10_c", MEAN, STD, corruptions=("fog",)) == 100.0
    with pytest.raises(LotteryError, match=r"missing file .*gaussian_noise\.npy"):
        robustness.shifted_accuracy(model, tmp_path, "cifar10_c", MEAN, STD)  # all 15 by default
    np.save(tmp_path / "labels.npy", np.tile(labels[:4], 4))
    with pytest.raises(LotteryError, match=r"fog\.npy: expected 5 severities of equal size and as many labels, "
                                           r"got 20 images and 16 labels"):
        robustness.load_cifar_c(tmp_path, "fog", 1)


def test_cifar10_1_files_are_read(tmp_path, trained, bright_dark):
    model, _, _ = trained
    images, labels = bright_dark
    np.save(tmp_path / "cifar10.1_v6_data.npy", images)
    np.save(tmp_path / "cifar10.1_v6_labels.npy", labels)
    np.save(tmp_path / "cifar10.1_v4_data.npy", images[:6])
    np.save(tmp_path / "cifar10.1_v4_labels.npy", 1 - labels[:6])
    x, y = robustness.load_cifar10_1(tmp_path)
    assert x.shape == (20, 3, 32, 32) and y.tolist() == labels.tolist()
    assert robustness.shifted_accuracy(model, tmp_path, "cifar10_1", MEAN, STD) == 100.0
    assert robustness.shifted_accuracy(model, tmp_path, "cifar10_1", MEAN, STD, version="v4") == 0.0
    with pytest.raises(LotteryError, match=r"missing file .*cifar10\.1_v7_data\.npy"):
        robustness.load_cifar10_1(tmp_path, "v7")
    with pytest.raises(LotteryError, match=r"unknown CIFAR-10.1 version 'v5'; choose one of: v4, v6, v7"):
        robustness.load_cifar10_1(tmp_path, "v5")


def test_cifar10_2_files_are_read(tmp_path, trained, bright_dark):
    model, _, _ = trained
    images, labels = bright_dark
    names = np.array(["dark", "bright"])
    np.savez(tmp_path / "cifar102_test.npz", images=images, labels=labels.astype(np.int64), label_names=names,
             ti_indices=np.arange(20), keywords=np.array(["sky"] * 20))
    x, y = robustness.load_cifar10_2(tmp_path)
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.uint8 and y.tolist() == labels.tolist()
    assert robustness.shifted_accuracy(model, tmp_path, "cifar10_2", MEAN, STD) == 100.0
    with pytest.raises(LotteryError, match=r"missing file .*cifar102_train\.npz"):
        robustness.load_cifar10_2(tmp_path, "train")
    np.savez(tmp_path / "cifar102_train.npz", data=images, labels=labels)
    with pytest.raises(LotteryError, match=r"cifar102_train\.npz lacks the array\(s\) images"):
        robustness.load_cifar10_2(tmp_path, "train")
    with pytest.raises(LotteryError, match=r"unknown shifted set 'cifar10_3'"):
        robustness.shifted_accuracy(model, tmp_path, "cifar10_3", MEAN, STD)


@pytest.mark.slow
def test_worker_processes_give_the_same_report(trained):
    model, x, y = trained
    kwargs = {"names": ("shot_noise", "glass_blur", "frost"), "severities": (2, 4), "seed": 7}
    here = robustness.corruption_accuracy(model, x[:40], y[:40], MEAN, STD, **kwargs)
    pooled = robustness.corruption_accuracy(model, x[:40], y[:40], MEAN, STD, workers=1, **kwargs)
    assert pooled["per_severity"] == here["per_severity"] and pooled["skipped"] == {}
    with pytest.raises(LotteryError, match=r"workers must be an integer >= 0 \(0: generate in this process\), got -1"):
        robustness.corruption_accuracy(model, x[:4], y[:4], MEAN, STD, workers=-1)
