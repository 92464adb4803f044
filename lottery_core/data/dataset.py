"""A data set held in memory as uint8 tensors, with class-balanced subsets and a validation split."""
import contextlib
import hashlib
import io
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from lottery_core.data.folder import default_cache_dir, is_image_folder, load_folder
from lottery_core.errors import LotteryError, choose
from lottery_core.normalize import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD

DATASETS = {"cifar10": (10, CIFAR10_MEAN, CIFAR10_STD, "CIFAR10", "cifar-10-batches-py"),
            "cifar100": (100, CIFAR100_MEAN, CIFAR100_STD, "CIFAR100", "cifar-100-python"),
            "folder": (None, None, None, None, None)}


@dataclass(frozen=True, eq=False)
class ImageData:
    """Train/val/test images as uint8 tensors (N, 3, H, W) on one device, int64 labels.

    `mean`/`std` (per channel, [0, 1] units) normalize the images; `source` is the absolute path
    the images were read from, or "torchvision". The validation split may have 0 rows.
    `fingerprint` is the content digest of the whole source data set (see `content_fingerprint`),
    the same wherever it is read from: runs record it in their identity and check it.
    """

    train_images: torch.Tensor = field(repr=False)
    train_labels: torch.Tensor = field(repr=False)
    val_images: torch.Tensor = field(repr=False)
    val_labels: torch.Tensor = field(repr=False)
    test_images: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)
    num_classes: int
    classes: tuple[str, ...] = field(repr=False)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str
    source: str
    fingerprint: str = ""

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every image."""
        return tuple(self.train_images.shape[2:])

    def sizes(self) -> dict[str, int]:
        """Rows per split: {'train': ..., 'val': ..., 'test': ...}."""
        return {"train": len(self.train_labels), "val": len(self.val_labels), "test": len(self.test_labels)}

    def to(self, device) -> "ImageData":
        """The same data with every tensor on `device` (self when already there)."""
        device = torch.device(device)
        if self.train_images.device == device:
            return self
        return replace(self, **{k: getattr(self, k).to(device) for k in _TENSORS})

    def __repr__(self) -> str:
        s = self.sizes()
        return (f"ImageData({self.name!r}, train={s['train']}, val={s['val']}, test={s['test']}, "
                f"classes={self.num_classes}, size={'x'.join(map(str, self.image_size))}, "
                f"device={self.device}, source={self.source!r})")


_TENSORS = ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")


def load_data(name: str = "cifar10", root: str | os.PathLike | None = None, *, train_size: int | None = None,
              test_size: int | None = None, val_size: int = 0, seed: int = 0, test_seed: int = 0, device="cpu",
              cache_dir: str | os.PathLike | None = None) -> ImageData:
    """Load a data set into memory on `device`.

    name: "cifar10" or "cifar100" (an ImageFolder tree at `root`, else torchvision's copy under
    `root`, downloaded when online) or "folder" (any ImageFolder tree `root/train/<class>/*`,
    `root/test/<class>/*`). `root` defaults to $LOTTERY_DATA_DIR, else (CIFAR through
    torchvision) ~/.cache/lottery/torchvision. Image trees are decoded once into a uint8 cache
    (default ~/.cache/lottery/data, see `lottery_core.data.folder`; `cache_dir` overrides it).

    `val_size` images are carved from train first (class-balanced, seeded by `seed`), then
    `train_size` class-balanced images are drawn from the rest, and `test_size` from test (None =
    all) seeded by `test_seed` alone: runs of different seeds are tested on the same images.
    Subsets are nested: a smaller `train_size` gives a subset of a larger one with the same seed.
    """
    choose("data set", name, DATASETS)
    for label, value, low in (("train_size", train_size, 1), ("test_size", test_size, 1), ("val_size", val_size, 0)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise LotteryError(f"{label} must be an integer >= {low}, got {value!r}")
    root = root if root is not None else os.environ.get("LOTTERY_DATA_DIR")
    num_classes, mean, std, _, _ = DATASETS[name]
    if name == "folder":
        if root is None:
            raise LotteryError("data set 'folder' needs a root directory (root=... / --data-dir / LOTTERY_DATA_DIR)")
        full = _from_folder(Path(root), cache_dir)
        mean, std = full["mean"], full["std"]
    elif root is not None and is_image_folder(Path(root).expanduser()):
        full = _from_folder(Path(root), cache_dir)
        if len(full["classes"]) != num_classes:
            raise LotteryError(f"{name} needs {num_classes} class folders, {full['source']}/train has "
                               f"{len(full['classes'])}; use name='folder' for other data")
    else:
        full = _from_torchvision(name, Path(root).expanduser().resolve() if root else default_cache_dir().parent / "torchvision")
    classes = tuple(full["classes"])
    num_classes = len(classes)
    val_idx, train_idx = balanced_subsets(full["train_labels"], classes, [val_size, train_size], seed, "train")
    (test_idx,) = balanced_subsets(full["test_labels"], classes, [test_size], test_seed, "test")
    device = torch.device(device)

    def take(split: str, idx: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = full[f"{split}_images"], full[f"{split}_labels"]
        if idx is not None:
            images, labels = images[idx], labels[idx]
        return images.to(device), labels.to(device)

    return ImageData(*take("train", train_idx), *take("train", val_idx), *take("test", test_idx),
                     num_classes=num_classes, classes=classes, mean=tuple(mean), std=tuple(std),
                     name=name, source=full["source"], fingerprint=full.get("fingerprint") or content_fingerprint(full))


def content_fingerprint(full: dict) -> str:
    """'blake2b-' + 16 hex digits of a digest over the class names and every image and label tensor
    of both splits (uint8/int64 bytes): equal for the same data wherever and however it is stored.
    (The prefix keeps YAML from reading an all-digit digest as a number.)"""
    digest = hashlib.blake2b(digest_size=8)
    digest.update("\n".join(full["classes"]).encode())
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        t = full[key].contiguous()
        digest.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.numpy().tobytes())
    return f"blake2b-{digest.hexdigest()}"


def balanced_subsets(labels: torch.Tensor, classes: tuple[str, ...], sizes: list[int | None], seed: int,
                     split: str = "train") -> list[torch.Tensor | None]:
    """Disjoint, class-balanced, seeded index sets of the given sizes, drawn in order.

    Each class's images are shuffled once (seeded by `seed` and `split`); the first subset takes
    the first `size // num_classes` (+1 for `size % num_classes` seeded classes) of every class,
    the next subset the following ones, and so on. A size of None takes every image left (None
    is returned when that is the whole set, untouched); 0 gives an empty index. Indices come back
    sorted, so subsets keep the source order.
    """
    num_classes = len(classes)
    gen = torch.Generator().manual_seed(_mix(seed, split))
    by_class = [torch.nonzero(labels == k).flatten() for k in range(num_classes)]
    by_class = [idx[torch.randperm(len(idx), generator=gen)] for idx in by_class]
    used = [0] * num_classes
    out: list[torch.Tensor | None] = []
    for size in sizes:
        if size is None:
            if not any(used):
                out.append(None)
                continue
            parts = [idx[u:] for idx, u in zip(by_class, used, strict=True)]
            used = [len(idx) for idx in by_class]
        else:
            quota = [size // num_classes] * num_classes
            for k in torch.randperm(num_classes, generator=gen)[: size % num_classes].tolist():
                quota[k] += 1
            parts = []
            for k, (idx, u, q) in enumerate(zip(by_class, used, quota, strict=True)):
                if u + q > len(idx):
                    asked = " + ".join(str(s) for s in sizes if s is not None)
                    raise LotteryError(f"class-balanced {split} subsets of {asked} images need {u + q} images of "
                                       f"class {classes[k]!r}, which has {len(idx)} in {split}/")
                parts.append(idx[u:u + q])
                used[k] = u + q
        out.append(torch.sort(torch.cat(parts)).values if parts else torch.zeros(0, dtype=torch.int64))
    return out


def _mix(seed: int, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{salt}".encode()).digest()[:8], "little") >> 1


def _from_folder(root: Path, cache_dir) -> dict:
    root = root.expanduser().resolve()
    splits = load_folder(root, cache_dir)
    return {"train_images": splits.train_images, "train_labels": splits.train_labels,
            "test_images": splits.test_images, "test_labels": splits.test_labels,
            "classes": splits.classes, "mean": splits.mean, "std": splits.std, "source": str(root)}


def _from_torchvision(name: str, root: Path) -> dict:
    _, _, _, cls_name, folder = DATASETS[name]
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # "Files already downloaded and verified"
            train = cls(str(root), train=True, download=True)
            test = cls(str(root), train=False, download=True)
    except Exception as err:  # offline: URLError, socket errors, a partial archive
        reason = str(err).strip().splitlines()[-1][:120] if str(err).strip() else type(err).__name__
        raise LotteryError(f"{name} not found in {root} (looked for an ImageFolder train/ + test/ tree or "
                           f"torchvision's {folder}/) and the download failed ({reason}); point at a local "
                           f"copy with --data-dir DIR or LOTTERY_DATA_DIR=DIR") from None

    def tensors(ds):
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.as_tensor(ds.targets, dtype=torch.int64)

    (tri, trl), (tei, tel) = tensors(train), tensors(test)
    return {"train_images": tri, "train_labels": trl, "test_images": tei, "test_labels": tel,
            "classes": tuple(train.classes), "mean": DATASETS[name][1], "std": DATASETS[name][2],
            "source": "torchvision"}
