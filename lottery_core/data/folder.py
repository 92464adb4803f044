"""ImageFolder trees (`train/<class>/*`, `test/<class>/*`) decoded once into a uint8 tensor cache.

The cache is one file per source tree, `<cache_dir>/<tree name>-<path hash>-<content key>.pt`,
holding both splits as uint8 tensors (N, 3, H, W), int64 labels, the class names and the
per-channel mean/std of the training split. The content key hashes every image's relative path,
size and modification time, so adding, removing or touching a file makes a new cache (the stale
one is deleted, as are the caches of trees that no longer exist). `cache_dir` defaults to `$LOTTERY_CACHE_DIR`, else `$XDG_CACHE_HOME/lottery/data`,
else `~/.cache/lottery/data` (data trees are often read-only, so the cache is not put beside them).
Concurrent loaders of the same tree (parallel trials) wait on a file lock: one decodes, the others
read its cache.
"""
import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lottery_core.errors import LotteryError
from lottery_core.filelock import exclusive_lock
from lottery_core.files import atomic_writer

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
SPLITS = ("train", "test")
CACHE_FORMAT = 1


@dataclass(frozen=True, eq=False)
class FolderSplits:
    """Both splits of an ImageFolder tree, decoded: uint8 (N, 3, H, W) images and int64 labels."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    cache_path: Path


def is_image_folder(root: Path) -> bool:
    """True when `root` looks like an ImageFolder tree (it has a train/ or a test/ folder)."""
    return any((root / split).is_dir() for split in SPLITS)


def default_cache_dir() -> Path:
    """$LOTTERY_CACHE_DIR, else $XDG_CACHE_HOME/lottery/data, else ~/.cache/lottery/data."""
    if os.environ.get("LOTTERY_CACHE_DIR"):
        return Path(os.environ["LOTTERY_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "lottery" / "data"


def scan(root: Path) -> tuple[tuple[str, ...], dict[str, list[tuple[str, int, int]]]]:
    """Classes (sorted folder names of train/) and, per split, (relative path, size, mtime_ns) of
    every image, sorted by class then file name. Raises `LotteryError` on a missing or partial tree."""
    layout = f"expected {root}/train/<class>/<image> and {root}/test/<class>/<image>"
    for split in SPLITS:
        if not (root / split).is_dir():
            raise LotteryError(f"no {split}/ folder in {root} ({layout})")
    classes = tuple(sorted(e.name for e in os.scandir(root / "train") if e.is_dir() and not e.name.startswith(".")))
    if not classes:
        raise LotteryError(f"no class folders in {root / 'train'} ({layout})")
    test_classes = {e.name for e in os.scandir(root / "test") if e.is_dir() and not e.name.startswith(".")}
    missing = [c for c in classes if c not in test_classes]
    extra = sorted(test_classes - set(classes))
    if missing:
        raise LotteryError(f"class {missing[0]!r} has no folder in {root / 'test'} "
                           f"({len(missing)} of {len(classes)} train classes missing from test)")
    if extra:
        raise LotteryError(f"class {extra[0]!r} is in {root / 'test'} but not in {root / 'train'}")
    files: dict[str, list[tuple[str, int, int]]] = {}
    for split in SPLITS:
        entries = []
        for name in classes:
            found = []
            with os.scandir(root / split / name) as it:
                for e in it:
                    if e.name.startswith(".") or not e.name.lower().endswith(IMAGE_EXTENSIONS) or not e.is_file():
                        continue
                    st = e.stat()
                    found.append((f"{split}/{name}/{e.name}", st.st_size, st.st_mtime_ns))
            if not found:
                raise LotteryError(f"no images in {root / split / name} (extensions: {' '.join(IMAGE_EXTENSIONS)})")
            entries += sorted(found)
        files[split] = entries
    return classes, files


def content_key(classes, files) -> str:
    """SHA-256 (16 hex digits) of the class names and every file's relative path, size and mtime."""
    h = hashlib.sha256(f"format={CACHE_FORMAT};classes={','.join(classes)}".encode())
    for split in SPLITS:
        for rel, size, mtime in files[split]:
            h.update(f"\n{rel}\t{size}\t{mtime}".encode())
    return h.hexdigest()[:16]


def load_folder(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> FolderSplits:
    """Decode the ImageFolder tree at `root` (or read its cache) into uint8 tensors on the CPU."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise LotteryError(f"data directory {root} does not exist")
    classes, files = scan(root)
    cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir()
    prefix = f"{_safe(root.name)}-{hashlib.sha256(str(root).encode()).hexdigest()[:8]}"
    path = cache_dir / f"{prefix}-{content_key(classes, files)}.pt"
    cached = _read_cache(path)
    if cached is None:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LotteryError(f"cannot create the data cache folder {cache_dir} ({err.strerror}); "
                               f"set LOTTERY_CACHE_DIR or pass cache_dir") from None
        with exclusive_lock(cache_dir / f"{prefix}.lock", note=str(root)):  # the lock records its tree
            cached = _read_cache(path)  # another process may have written it while we waited
            if cached is None:
                cached = _decode_tree(root, classes, files)
                _write_atomic(path, cached)
                for stale in cache_dir.glob(f"{prefix}-*.pt"):
                    if stale != path:
                        stale.unlink(missing_ok=True)
        forget_vanished(cache_dir)
    return FolderSplits(cached["train_images"], cached["train_labels"], cached["test_images"],
                        cached["test_labels"], tuple(cached["classes"]), tuple(cached["mean"]),
                        tuple(cached["std"]), path)


def _decode_tree(root: Path, classes, files) -> dict:
    out: dict = {"format": CACHE_FORMAT, "classes": list(classes)}
    index = {name: k for k, name in enumerate(classes)}
    size = None
    for split in SPLITS:
        paths = [root / rel for rel, _, _ in files[split]]
        images = decode_many(paths)
        for path, img in zip(paths, images, strict=True):
            if size is None:
                size = img.shape
            elif img.shape != size:
                raise LotteryError(f"image {path} is {img.shape[2]}x{img.shape[1]}, the others "
                                   f"{size[2]}x{size[1]}; all images of a data set must have one size")
        out[f"{split}_images"] = torch.stack(images)
        out[f"{split}_labels"] = torch.tensor([index[rel.split("/")[1]] for rel, _, _ in files[split]],
                                              dtype=torch.int64)
    mean, std = channel_stats(out["train_images"])
    out["mean"], out["std"] = list(mean), list(std)
    return out


def decode_many(paths: list[Path], chunk: int = 1024) -> list[torch.Tensor]:
    """Decode image files into uint8 tensors (3, H, W), RGB; JPEGs in batches (~25 us each here)."""
    raw = [_read(p) for p in paths]
    out: list[torch.Tensor | None] = [None] * len(paths)
    jpegs = [i for i, data in enumerate(raw) if data[:3] == b"\xff\xd8\xff"] if _decode_jpeg else []
    for start in range(0, len(jpegs), chunk):
        part = jpegs[start:start + chunk]
        try:
            decoded = _decode_jpeg([torch.frombuffer(raw[i], dtype=torch.uint8) for i in part])
        except (RuntimeError, ValueError):  # find the culprit, one by one
            decoded = [_decode_bytes(raw[i], paths[i]) for i in part]
        for i, img in zip(part, decoded, strict=True):
            out[i] = img
    for i, img in enumerate(out):
        if img is None:
            out[i] = _decode_bytes(raw[i], paths[i])
    return out


def decode(path: Path) -> torch.Tensor:
    """One image file -> uint8 tensor (3, H, W), RGB. Raises `LotteryError` naming a corrupt file."""
    return _decode_bytes(_read(path), path)


def _read(path: Path) -> bytearray:
    try:
        with open(path, "rb") as handle:
            return bytearray(handle.read())
    except OSError as err:
        raise LotteryError(f"cannot read image {path}: {err.strerror}") from None


def _decode_bytes(data: bytearray, path: Path) -> torch.Tensor:
    """JPEGs go through torchvision's libjpeg-turbo decoder (~10x faster than PIL here); every
    other format through PIL (torchvision's PNG decoder can crash the process on corrupt files)."""
    if not data:
        raise LotteryError(f"corrupt image file {path}: the file is empty")
    if data[:3] == b"\xff\xd8\xff" and _decode_jpeg is not None:
        try:
            return _decode_jpeg(torch.frombuffer(data, dtype=torch.uint8))
        except (RuntimeError, ValueError) as err:
            raise LotteryError(f"corrupt image file {path}: {_decoder_message(err)}") from None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise LotteryError(f"corrupt image file {path}: {_decoder_message(err)}") from None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images (N, C, H, W), in [0, 1] units,
    rounded to 4 digits; computed exactly from each channel's 256-bin histogram."""
    values = torch.arange(256, dtype=torch.float64)
    mean, std = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1).cpu(), minlength=256).double()
        m = float((hist * values).sum() / hist.sum())
        var = float((hist * values * values).sum() / hist.sum()) - m * m
        mean.append(round(m / 255, 4))
        std.append(round(max(var, 0.0) ** 0.5 / 255, 4) or 1.0)
    return tuple(mean), tuple(std)


def _jpeg_decoder():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import ImageReadMode, decode_jpeg
    except ImportError:  # pragma: no cover - torchvision without image decoders
        return None

    def run(data):  # a tensor or a list of tensors
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_jpeg(data, mode=ImageReadMode.RGB)

    return run


_decode_jpeg = _jpeg_decoder()


def _read_cache(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        cached = torch.load(path, weights_only=True)
        if cached.get("format") == CACHE_FORMAT:
            return cached
    except Exception:  # a truncated or foreign file: decode again and overwrite it
        pass
    return None


def _write_atomic(path: Path, obj) -> None:
    try:
        with atomic_writer(path) as handle:
            torch.save(obj, handle)
    except OSError as err:
        warnings.warn(f"could not write the data cache {path} ({err.strerror}); "
                      f"images will be decoded again next time", RuntimeWarning, stacklevel=3)


def forget_vanished(cache_dir: Path) -> list[Path]:
    """Delete the caches of source trees that no longer exist (e.g. test folders under /tmp).

    Each `<prefix>.lock` file records its tree's path; returns the cache files removed.
    """
    removed = []
    for lock in cache_dir.glob("*.lock"):
        try:
            source = lock.read_text().strip()
        except OSError:
            continue
        if source and not Path(source).exists():
            for stale in cache_dir.glob(f"{lock.stem}-*.pt"):
                stale.unlink(missing_ok=True)
                removed.append(stale)
            lock.unlink(missing_ok=True)
    return removed


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "data"


def _decoder_message(err: Exception) -> str:
    """The useful part of a decoder error (torchvision prefixes 'function, file.cpp:line, ')."""
    text = str(err).strip().splitlines()
    line = text[-1] if text else type(err).__name__
    return re.sub(r"^[\w()]+, \S+:\d+, ", "", line)
