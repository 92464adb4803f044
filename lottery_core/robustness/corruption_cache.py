"""Corrupted evaluation sets built once per node and reused by every run: a file cache.

    sets = CachedSets(images, jobs, seed, cache_dir=default_cache_dir())
    for (name, severity), corrupted, seconds in sets:   # as `corruption_sets.corrupted_sets`
        ...
    sets.status, sets.key                                # "built" / "reused" / "uncached: why"

`corruption_accuracy(..., cache_dir=...)` uses it. The corrupted images depend only on the test
images, the (corruption, severity) jobs in order, the seed and the code and libraries that make
them, never on the model; so the sets of one evaluation are stored under a key (SHA-256, 64 hex
digits) of exactly those:

    the images' bytes and shape (uint8 (N, 3, 32, 32), hashed in full: ~20 ms per 10,000 images)
    the jobs, the seed, `corruptions.BLOCK`, a digest of the recipe sources (recipes.py,
    image_ops.py, corruptions.py), the versions of numpy, scipy, OpenCV, Pillow, imagecorruptions
    (its frost photographs), and `FORMAT`

so a stale or different set can never be reused. Per key, in `cache_dir`:

    <key>.npy    uint8 (jobs, N, 3, 32, 32): every set in job order (a skipped one is zeros);
                 N × 3,072 bytes per set, so the paper's 10,000 images × 15 corruptions × 5
                 severities take 2.3 GB (2,304,000,128 bytes); 1,000 images, 230 MB
    <key>.json   the manifest, written last: key, its parts, shape, SHA-256 of every set, skipped
                 corruptions with their reasons. A set is read only after its digest matched.
    <key>.lock   the flock that serialises builders of this key on one machine

Both files are written to a temporary name and renamed. A reader needs no lock: it takes the
sets when the manifest and the data agree (every set's digest verified: SHA-256, about 1.4 GB/s
here), else it takes the key's lock (`lottery_core.filelock`), looks again (a concurrent builder
may have finished meanwhile: the second waits, then reads) and otherwise builds. Building
evaluates as it goes: each set is yielded as soon as it is made and appended to the temporary
file, so a cold run costs what it did without the cache plus hashing and writing each set. A
damaged or truncated file is rebuilt, never trusted. Where the cache cannot be written
(read-only folder, too little free disk) the sets are made in memory as without the cache, and
`status` says why.

`default_cache_dir()`: $LOTTERY_CACHE_DIR/eval-sets, else $XDG_CACHE_HOME/block-tickets/eval-sets,
else ~/.cache/block-tickets/eval-sets: node-local, since one node's builders share the lock.
Nothing is ever evicted: delete the folder (or a key's files) between runs to reclaim the space.
"""
import functools
import hashlib
import importlib.metadata
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from lottery_core.filelock import exclusive_lock
from lottery_core.files import replace_synced, write_atomic
from lottery_core.robustness import corruptions
from lottery_core.robustness.corruption_sets import corrupted_sets
from lottery_core.robustness.recipes import CorruptionUnavailable

FORMAT = 1
RECIPE_MODULES = ("recipes.py", "image_ops.py", "corruptions.py")  # the code that makes the bytes
LIBRARIES = ("numpy", "scipy", "opencv-python-headless", "opencv-python", "pillow", "imagecorruptions")
FREE_MARGIN = 256 * 2**20  # bytes of free disk left over after a set is stored


def default_cache_dir() -> Path:
    """$LOTTERY_CACHE_DIR/eval-sets, else $XDG_CACHE_HOME/block-tickets/eval-sets, else
    ~/.cache/block-tickets/eval-sets (node-local; see the module docstring for sizes)."""
    if os.environ.get("LOTTERY_CACHE_DIR"):
        return Path(os.environ["LOTTERY_CACHE_DIR"]).expanduser() / "eval-sets"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "block-tickets" / "eval-sets"


@functools.cache
def code_identity() -> dict:
    """What besides the inputs decides the bytes: the recipe sources' digest and library versions."""
    folder = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in RECIPE_MODULES:
        h.update(name.encode() + b"\0" + (folder / name).read_bytes() + b"\0")
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            versions[lib] = None
    return {"recipes_sha256": h.hexdigest(), "block": corruptions.BLOCK, "versions": versions}


def images_digest(images: torch.Tensor) -> str:
    """SHA-256 of the images' bytes in (N, C, H, W) order, whatever their device or memory format."""
    array = images.detach().cpu().contiguous().numpy()
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()


def set_key(images: torch.Tensor, jobs: Sequence[tuple[str, int]], seed: int) -> tuple[str, dict]:
    """(key, its parts): the key (64 hex digits) of the corrupted sets of `images` for `jobs`
    ((corruption, severity) in order) and `seed`. Any difference in a part gives another key."""
    parts = {"format": FORMAT, "images_sha256": images_digest(images), "shape": list(images.shape),
             "dtype": str(images.dtype), "jobs": [[str(n), int(s)] for n, s in jobs], "seed": int(seed),
             **code_identity()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), parts


class CachedSets:
    """The corrupted sets of `images` for `jobs`, from `cache_dir` when stored there, else made
    (in this process, or in `workers` spawned ones) and stored. Iterate once: it yields
    ((name, severity), uint8 images on the CPU or CorruptionUnavailable, seconds waited) in job
    order, as `corrupted_sets`; the first item's seconds include the look-up, any wait for
    another builder and the digest checks. After iterating, `status` is "built", "reused" or
    "uncached: <why>" (made but not stored); `key` and `path` (the .npy) are known from the start."""

    def __init__(self, images: torch.Tensor, jobs: Sequence[tuple[str, int]], seed: int,
                 cache_dir: str | os.PathLike, workers: int = 0):
        self.images, self.jobs, self.seed, self.workers = images, [tuple(j) for j in jobs], seed, workers
        self.cache_dir = Path(cache_dir).expanduser()
        self.key, self.parts = set_key(images, self.jobs, seed)
        self.path = self.cache_dir / f"{self.key}.npy"
        self.manifest_path = self.cache_dir / f"{self.key}.json"
        self.status: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.jobs), *self.images.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored sets (uint8)."""
        return int(np.prod(self.shape, dtype=np.int64))

    def __iter__(self) -> Iterator:
        start = time.perf_counter()
        found = self._open()
        if found is None:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                lock = exclusive_lock(self.cache_dir / f"{self.key}.lock", note=str(self.path))
                lock.__enter__()
            except OSError as err:
                self.status = f"uncached: cannot use {self.cache_dir} ({err.strerror or err})"
                yield from self._made(start, None)
                return
            try:
                found = self._open()  # another builder may have stored it while we waited
                if found is None:
                    yield from self._build(start)
                    return
            finally:
                lock.__exit__(None, None, None)
        self.status = "reused"
        yield from self._replay(start, *found)

    # ---- reading ---------------------------------------------------------------------------------

    def _open(self):
        """(manifest, memory-mapped sets) when both are here and every stored set matches its
        digest, else None (missing, truncated, damaged or another key's files)."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
            if manifest.get("format") != FORMAT or manifest.get("key") != self.key \
                    or manifest.get("parts") != self.parts or tuple(manifest.get("shape", ())) != self.shape:
                return None
            sets = np.load(self.path, mmap_mode="r", allow_pickle=False)
            if sets.dtype != np.uint8 or sets.shape != self.shape:
                return None
            digests, skipped = manifest["digests"], manifest["skipped"]
            if len(digests) != len(self.jobs):
                return None
            for i, digest in enumerate(digests):
                if digest is None and str(i) not in skipped:
                    return None
                if digest is not None and _digest(sets[i]) != digest:
                    return None
            return manifest, sets
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):  # json: ValueError
            return None

    def _replay(self, start: float, manifest: dict, sets: np.ndarray):
        skipped = manifest["skipped"]
        for i, job in enumerate(self.jobs):
            if str(i) in skipped:
                out = CorruptionUnavailable(skipped[str(i)])
            else:
                out = torch.from_numpy(np.array(sets[i]))  # a copy: the file stays read-only
            yield job, out, time.perf_counter() - start
            start = time.perf_counter()

    # ---- building --------------------------------------------------------------------------------

    def _made(self, start: float, sink):
        """The sets made here (as without the cache), each also passed to `sink` when given."""
        for job, out, waited in corrupted_sets(self.images, self.jobs, self.seed, self.workers):
            if sink is not None:
                sink(job, out)
            yield job, out, waited + (time.perf_counter() - start if start else 0.0)
            start = 0.0

    def _build(self, start: float):
        for stale in self.cache_dir.glob(f".{self.key}.*.tmp"):  # left by a builder that died
            stale.unlink(missing_ok=True)
        free = shutil.disk_usage(self.cache_dir).free
        if free < self.nbytes + FREE_MARGIN:
            self.status = (f"uncached: {self.nbytes / 1e9:.2f} GB needed, {free / 1e9:.2f} GB free in "
                           f"{self.cache_dir}")
            yield from self._made(start, None)
            return
        writer = _Writer(self.cache_dir, self.key, self.shape)
        try:
            yield from self._made(start, writer.add)
            self.status = writer.commit(self.path, self.manifest_path, {
                "format": FORMAT, "key": self.key, "parts": self.parts, "shape": list(self.shape),
                "jobs": self.parts["jobs"], "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        finally:
            writer.discard()


class _Writer:
    """Appends the sets, in job order, to a temporary .npy; `commit` renames it and writes the
    manifest. A write error stops the storing, not the evaluation (the sets are still yielded)."""

    def __init__(self, folder: Path, key: str, shape: tuple[int, ...]):
        self.tmp = folder / f".{key}.{os.getpid()}.{id(self):x}.npy.tmp"
        self.set_bytes = int(np.prod(shape[1:], dtype=np.int64))
        self.digests: list[str | None] = []
        self.skipped: dict[str, str] = {}
        self.error: str | None = None
        try:
            self.handle = open(self.tmp, "wb")
            np.lib.format.write_array_header_1_0(self.handle, {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                "shape": tuple(shape)})
        except OSError as err:
            self._fail(err)

    def _fail(self, err: OSError) -> None:
        self.error = f"cannot write {self.tmp.parent} ({err.strerror or err})"
        self.discard()

    def add(self, job, out) -> None:
        if self.error is not None:
            return
        if isinstance(out, CorruptionUnavailable):
            data = np.zeros(self.set_bytes, np.uint8)
            self.skipped[str(len(self.digests))] = str(out)
            self.digests.append(None)
        else:
            data = out.detach().cpu().contiguous().numpy()
            self.digests.append(_digest(data))
        try:
            self.handle.write(memoryview(np.ascontiguousarray(data)).cast("B"))
        except OSError as err:
            self._fail(err)

    def commit(self, path: Path, manifest_path: Path, manifest: dict) -> str:
        """Rename the data into place, then write the manifest: "built", or "uncached: <why>"."""
        if self.error is None:
            try:
                replace_synced(self.handle, self.tmp, path)
                write_atomic(manifest_path, json.dumps({**manifest, "digests": self.digests,
                                                        "skipped": self.skipped}, indent=1).encode())
            except OSError as err:
                self._fail(err)
        return "built" if self.error is None else f"uncached: {self.error}"

    def discard(self) -> None:
        """Close and remove the temporary file (nothing once committed)."""
        handle = getattr(self, "handle", None)
        if handle is not None and not handle.closed:
            handle.close()
        self.tmp.unlink(missing_ok=True)


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()
