"""lottery_core.data: ImageFolder decoding and its cache, balanced subsets, seeded batches."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lottery_core import data as D
from lottery_core.errors import LotteryError


def make_folder(root: Path, classes: int = 3, train: int = 6, test: int = 3, size: int = 16,
                fmt: str = "png", seed: int = 0) -> Path:
    """train/<class>/<i>.<fmt>, test/<class>/<i>.<fmt>: random RGB pixels, `size` x `size`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("test", test)):
        for k in range(classes):
            folder = root / split / f"c{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.{fmt}")
    return root


def pil_pixels(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "imgs")


def load(root, tmp_path, **kw):
    return D.load_data("folder", root, cache_dir=tmp_path / "cache", **kw)


def test_folder_is_decoded_exactly_into_uint8_tensors(folder, tmp_path):
    data = load(folder, tmp_path)
    assert data.train_images.shape == (18, 3, 16, 16) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (9, 3, 16, 16) and data.val_images.shape == (0, 3, 16, 16)
    assert data.train_labels.dtype == torch.int64 and data.train_labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert data.classes == ("c0", "c1", "c2") and data.num_classes == 3
    assert data.source == str(folder.resolve()) and data.name == "folder"
    assert torch.equal(data.train_images[7], pil_pixels(folder / "train" / "c1" / "1.png"))
    pixels = data.train_images.double() / 255
    assert data.mean == pytest.approx(tuple(pixels.mean((0, 2, 3)).tolist()), abs=1e-4)
    assert data.std == pytest.approx(tuple(pixels.std((0, 2, 3), unbiased=False).tolist()), abs=1e-4)


def test_jpegs_decode_like_pil(tmp_path):
    root = make_folder(tmp_path / "jpg", classes=2, train=3, test=1, fmt="jpg")
    data = load(root, tmp_path)
    reference = pil_pixels(root / "train" / "c1" / "2.jpg")
    assert (data.train_images[5].int() - reference.int()).abs().max() <= 2


def test_the_cache_is_reused_then_invalidated_by_a_changed_file(folder, tmp_path, monkeypatch):
    first = load(folder, tmp_path)
    caches = list((tmp_path / "cache").glob("*.pt"))
    assert len(caches) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(D.folder, "_decode_tree", no_decoding)
    again = load(folder, tmp_path, train_size=6)
    assert torch.equal(again.train_images, first.train_images[again_indices(first, again)])
    monkeypatch.undo()

    from PIL import Image

    changed = folder / "train" / "c0" / "0.png"
    Image.fromarray(np.full((16, 16, 3), 7, dtype=np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))  # a different mtime even on coarse-grained file systems
    fresh = load(folder, tmp_path)
    assert (fresh.train_images[0] == 7).all() and not torch.equal(fresh.train_images[0], first.train_images[0])
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1  # the stale cache was removed


def test_the_cache_dir_follows_the_environment_and_forgets_vanished_trees(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path / "env_cache"))
    assert D.default_cache_dir() == tmp_path / "env_cache"
    gone = make_folder(tmp_path / "gone", classes=2, train=1, test=1, size=4)
    D.load_data("folder", gone)
    assert len(list((tmp_path / "env_cache").glob("*.pt"))) == 1
    shutil.rmtree(gone)
    D.load_data("folder", make_folder(tmp_path / "kept", classes=2, train=1, test=1, size=4))
    caches = list((tmp_path / "env_cache").glob("*.pt"))
    assert len(caches) == 1 and caches[0].name.startswith("kept-")


def again_indices(full, subset):
    """Row of `full` holding each image of `subset` (images are unique random pixels)."""
    flat = full.train_images.flatten(1)
    return torch.tensor([int((flat == row).all(1).nonzero()[0]) for row in subset.train_images.flatten(1)])


def test_subsets_are_class_balanced_disjoint_nested_and_seeded(tmp_path):
    root = make_folder(tmp_path / "imgs", classes=3, train=10, test=6, size=8)
    data = load(root, tmp_path, train_size=12, val_size=6, test_size=9, seed=3)
    assert torch.bincount(data.train_labels).tolist() == [4, 4, 4]
    assert torch.bincount(data.val_labels).tolist() == [2, 2, 2]
    assert torch.bincount(data.test_labels).tolist() == [3, 3, 3]
    full = load(root, tmp_path)
    train_rows = set(again_indices(full, data).tolist())
    val_rows = set(again_indices(full, type("V", (), {"train_images": data.val_images})).tolist())
    assert not train_rows & val_rows
    smaller = load(root, tmp_path, train_size=6, val_size=6, seed=3)
    assert set(again_indices(full, smaller).tolist()) <= train_rows        # nested
    assert torch.equal(smaller.val_images, data.val_images)                 # val does not depend on train_size
    same = load(root, tmp_path, train_size=12, val_size=6, test_size=9, seed=3)
    other = load(root, tmp_path, train_size=12, val_size=6, test_size=9, seed=4)
    assert torch.equal(same.train_images, data.train_images) and torch.equal(same.test_images, data.test_images)
    assert not torch.equal(other.train_images, data.train_images)
    uneven = load(root, tmp_path, train_size=7)
    assert sorted(torch.bincount(uneven.train_labels).tolist()) == [2, 2, 3]
    with pytest.raises(LotteryError, match="class 'c0'"):
        load(root, tmp_path, train_size=30, val_size=3)


def test_batches_are_seeded_per_seed_and_epoch_and_cover_every_image(folder, tmp_path):
    data = load(folder, tmp_path)
    a = list(D.train_batches(data, 4, seed=1, epoch=2))
    b = list(D.train_batches(data, 4, seed=1, epoch=2))
    c = list(D.train_batches(data, 4, seed=1, epoch=3))
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True))
    assert not torch.equal(torch.cat([x for x, _ in a]), torch.cat([x for x, _ in c]))  # another epoch
    d = list(D.train_batches(data, 4, seed=2, epoch=2))
    assert not torch.equal(torch.cat([x for x, _ in a]), torch.cat([x for x, _ in d]))  # another seed
    assert [len(y) for _, y in a] == [4, 4, 4, 4]                        # 18 images: the last 2 are dropped
    plain = list(D.train_batches(data, 6, seed=1, epoch=2, augment=False))
    seen = torch.cat([x for x, _ in plain])
    expected = (data.train_images.float() / 255 - torch.tensor(data.mean).view(1, 3, 1, 1)) / torch.tensor(data.std).view(1, 3, 1, 1)
    assert torch.allclose(seen.sum(0), expected.sum(0), atol=1e-3)       # every image exactly once
    assert [len(y) for _, y in D.train_batches(data, 17, seed=0, epoch=0)] == [17]   # a last batch of 1 goes
    assert [len(y) for _, y in D.train_batches(data, 32, seed=0, epoch=0)] == [18]   # fewer than a batch: all
    assert (D.num_batches(18, 4), D.num_batches(18, 32), D.num_batches(1, 32)) == (4, 1, 0)


def test_augmentation_is_a_padded_crop_and_flip_of_each_image(folder, tmp_path):
    data = load(folder, tmp_path)
    gen = D.epoch_generator(5, 0)
    order = torch.randperm(18, generator=gen)
    offsets = torch.randint(0, 9, (18, 2), generator=gen)
    flips = torch.randint(0, 2, (18,), generator=gen).bool()
    scale, shift = D.normalize_constants(data.mean, data.std, "cpu")
    batches = list(D.train_batches(data, 18, seed=5, epoch=0, channels_last=True))
    x, y = batches[0]
    assert x.shape == (18, 3, 16, 16) and x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, data.train_labels[order])
    low, high = shift.flatten(), (255 * scale + shift).flatten()
    assert ((x >= low.view(1, 3, 1, 1) - 1e-5) & (x <= high.view(1, 3, 1, 1) + 1e-5)).all()
    for i, src in enumerate(order.tolist()):
        padded = F.pad(data.train_images[src], (4, 4, 4, 4))
        r, c = offsets[i].tolist()
        crop = padded[:, r:r + 16, c:c + 16]
        if flips[i]:
            crop = crop.flip(2)
        assert torch.allclose(x[i], crop.float() * scale[0] + shift[0], atol=1e-5), i
    assert 0 < int(flips.sum()) < 18 and (offsets != 4).any()  # both kinds of image, real shifts


def test_eval_batches_keep_order_and_normalize(folder, tmp_path):
    data = load(folder, tmp_path)
    batches = list(D.eval_batches(data.test_images, data.test_labels, data.mean, data.std, batch_size=4))
    assert [len(y) for _, y in batches] == [4, 4, 1]
    x = torch.cat([b[0] for b in batches])
    back = x * torch.tensor(data.std).view(1, 3, 1, 1) + torch.tensor(data.mean).view(1, 3, 1, 1)
    assert torch.allclose(back * 255, data.test_images.float(), atol=1e-3)
    assert torch.equal(torch.cat([b[1] for b in batches]), data.test_labels)


def test_a_corrupt_image_is_named(folder, tmp_path):
    bad = folder / "test" / "c2" / "1.png"
    bad.write_bytes(bad.read_bytes()[:60])
    with pytest.raises(LotteryError, match=r"corrupt image file .*test/c2/1\.png") as err:
        load(folder, tmp_path)
    assert "\n" not in str(err.value)


def test_a_truncated_jpeg_is_named(tmp_path):
    root = make_folder(tmp_path / "jpg", classes=2, train=2, test=1, fmt="jpg")
    bad = root / "train" / "c1" / "0.jpg"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(LotteryError, match=r"corrupt image file .*train/c1/0\.jpg"):
        load(root, tmp_path)


def test_missing_or_partial_folders_get_one_clear_line(folder, tmp_path):
    import shutil

    shutil.rmtree(folder / "test" / "c1")
    with pytest.raises(LotteryError, match=r"class 'c1' has no folder in .*test"):
        load(folder, tmp_path)
    shutil.rmtree(folder / "test")
    with pytest.raises(LotteryError, match=r"no test/ folder in .*imgs"):
        load(folder, tmp_path)
    with pytest.raises(LotteryError, match="does not exist"):
        load(tmp_path / "nowhere", tmp_path)
    with pytest.raises(LotteryError, match="root"):
        D.load_data("folder", None)


def test_offline_cifar_says_where_it_looked_and_how_to_point_elsewhere(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tvd, "CIFAR10", offline)
    with pytest.raises(LotteryError) as err:
        D.load_data("cifar10", tmp_path / "empty")
    message = str(err.value)
    assert str(tmp_path / "empty") in message and "--data-dir" in message and "LOTTERY_DATA_DIR" in message
    assert "\n" not in message


def test_cifar10_reads_an_image_folder_copy(tmp_path):
    root = make_folder(tmp_path / "c10", classes=10, train=2, test=1, size=8)
    data = D.load_data("cifar10", root, cache_dir=tmp_path / "cache")
    assert data.mean == (0.4914, 0.4822, 0.4465) and data.num_classes == 10 and data.source == str(root.resolve())
    with pytest.raises(LotteryError, match="needs 100 class folders"):
        D.load_data("cifar100", root, cache_dir=tmp_path / "cache")
    with pytest.raises(LotteryError, match="unknown data set"):
        D.load_data("mnist", root)
    with pytest.raises(LotteryError, match="train_size"):
        D.load_data("cifar10", root, train_size=0)
