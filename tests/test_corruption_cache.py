"""The node-local cache of corrupted evaluation sets (lottery_core.robustness.corruption_cache)."""
import json
import sys
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn

from lottery_core import robustness
from lottery_core.robustness import corruption_cache, image_ops
from lottery_core.robustness import recipes as R
from lottery_core.robustness.corruption_cache import set_key

MEAN, STD = (0.5,) * 3, (0.25,) * 3
NAMES, SEVERITIES = ("gaussian_noise", "contrast", "frost"), (1, 4)  # random draws, none, a texture
JOBS = [(n, s) for n in NAMES for s in SEVERITIES]


@pytest.fixture(scope="module")
def tiny():
    """A random 3-class conv net and 12 images with labels: accuracies that differ per set."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=g)
    return model, images, torch.randint(0, 3, (12,), generator=g)


@pytest.fixture
def calls(monkeypatch):
    """How often each corruption recipe runs (one call per block of images), counted."""
    counts = {name: 0 for name in R.CORRUPTION_FNS}
    for name, fn in list(R.CORRUPTION_FNS.items()):
        def counted(x, severity, rng, fn=fn, name=name):
            counts[name] += 1
            return fn(x, severity, rng)
        monkeypatch.setitem(R.CORRUPTION_FNS, name, counted)
    return counts


def _accuracies(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("seconds", "cache")}


def _run(tiny, cache_dir=None, **kwargs):
    model, images, labels = tiny
    kwargs = {"names": NAMES, "severities": SEVERITIES, "seed": 3, **kwargs}
    return robustness.corruption_accuracy(model, images, labels, MEAN, STD, cache_dir=cache_dir, **kwargs)


def test_cached_results_are_identical_and_the_second_run_makes_nothing(tiny, tmp_path, calls):
    plain = _run(tiny)
    assert plain["cache"] is None and sum(calls.values()) == len(JOBS)
    built = _run(tiny, tmp_path)
    assert built["cache"]["status"] == "built" and sum(calls.values()) == 2 * len(JOBS)
    reused = _run(tiny, tmp_path)
    assert reused["cache"]["status"] == "reused" and sum(calls.values()) == 2 * len(JOBS)  # no new call
    assert _accuracies(built) == _accuracies(plain) == _accuracies(reused)
    assert built["cache"]["key"] == reused["cache"]["key"] and len(built["cache"]["key"]) == 64
    # and the sets themselves, byte for byte
    stored = np.load(tmp_path / f"{built['cache']['key']}.npy")
    assert stored.shape == (len(JOBS), 12, 3, 32, 32) and stored.dtype == np.uint8
    assert np.array_equal(stored[JOBS.index(("gaussian_noise", 4))],
                          robustness.corrupt(tiny[1], "gaussian_noise", 4, seed=3).numpy())


def test_a_skipped_corruption_is_replayed_with_its_reason(tiny, tmp_path, monkeypatch):
    def missing():
        raise image_ops.AssetMissing("frost needs the six frost photographs; not found in /nowhere")

    monkeypatch.setattr(image_ops, "_frost_folder", missing)
    plain, built, reused = _run(tiny), _run(tiny, tmp_path), _run(tiny, tmp_path)
    assert reused["cache"]["status"] == "reused" and "frost" in reused["skipped"]
    assert _accuracies(plain) == _accuracies(built) == _accuracies(reused)


def test_every_input_is_in_the_key(tiny):
    _, images, _ = tiny
    key = set_key(images, JOBS, 3)[0]
    assert set_key(images.clone().contiguous(memory_format=torch.channels_last), JOBS, 3)[0] == key
    others = [set_key(images, JOBS, 4),                                   # seed
              set_key(images, [(n, 5 if s == 4 else s) for n, s in JOBS], 3),  # a severity
              set_key(images, JOBS[::-1], 3),                             # the order of the sets
              set_key(images, JOBS[:-1], 3),                              # one set fewer
              set_key(images[:11], JOBS, 3),                              # the subset: one image fewer
              set_key(torch.cat([images[:1] ^ 1, images[1:]]), JOBS, 3)]  # one image changed
    keys = [k for k, _ in others]
    assert key not in keys and len(set(keys)) == len(keys)
    parts = set_key(images, JOBS, 3)[1]
    assert {"numpy", "imagecorruptions"} <= set(parts["versions"]) and len(parts["recipes_sha256"]) == 64


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "no data"])
def test_a_damaged_cache_is_rebuilt_not_trusted(tiny, tmp_path, calls, damage):
    first = _run(tiny, tmp_path)
    key = first["cache"]["key"]
    data, manifest = tmp_path / f"{key}.npy", tmp_path / f"{key}.json"
    raw = data.read_bytes()
    if damage == "truncate":
        data.write_bytes(raw[:len(raw) // 2])
    elif damage == "flip":  # one byte of the second set, where only its digest can tell
        at = len(raw) - (len(JOBS) - 1) * 12 * 3 * 32 * 32 + 100
        data.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:])
    elif damage == "manifest":
        manifest.write_text(manifest.read_text()[:40])
    else:
        data.unlink()
    made = sum(calls.values())
    again = _run(tiny, tmp_path)
    assert again["cache"]["status"] == "built" and sum(calls.values()) == 2 * made
    assert _accuracies(again) == _accuracies(first) and data.read_bytes() == raw
    assert _run(tiny, tmp_path)["cache"]["status"] == "reused"
    assert json.loads(manifest.read_text())["key"] == key
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_two_threads_building_the_same_key_build_it_once(tiny, tmp_path, calls, monkeypatch):
    """The second builder arrives while the first holds the key's lock, waits, then reads."""
    arrived, second_waiting = [], threading.Event()
    real_lock = corruption_cache.exclusive_lock

    def lock(path, note=None):
        arrived.append(path)
        if len(arrived) == 2:
            second_waiting.set()
        return real_lock(path, note)

    monkeypatch.setattr(corruption_cache, "exclusive_lock", lock)
    contrast = R.CORRUPTION_FNS["contrast"]

    def slow_contrast(x, severity, rng):  # the builder goes on once the other one is at the lock
        second_waiting.wait(timeout=30)
        return contrast(x, severity, rng)

    monkeypatch.setitem(R.CORRUPTION_FNS, "contrast", slow_contrast)
    reports = [None, None]

    def work(i):
        reports[i] = _run(tiny, tmp_path)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert second_waiting.is_set() and len(arrived) == 2
    assert sorted(r["cache"]["status"] for r in reports) == ["built", "reused"]
    assert sum(calls.values()) == len(JOBS)  # slow_contrast calls the counted recipe
    assert _accuracies(reports[0]) == _accuracies(reports[1])


def test_a_folder_that_cannot_be_written_still_evaluates(tiny, tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    report = _run(tiny, blocked)
    assert report["cache"]["status"].startswith("uncached: cannot use")
    assert _accuracies(report) == _accuracies(_run(tiny))


def test_too_little_disk_leaves_nothing_behind(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(corruption_cache.shutil, "disk_usage", lambda path: SimpleNamespace(free=10**6))
    report = _run(tiny, tmp_path)
    assert report["cache"]["status"].startswith("uncached: ") and "GB free" in report["cache"]["status"]
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob(".*.tmp"))


def test_an_evaluation_error_releases_the_build(tiny, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(sys.modules["lottery_core.robustness.corruption_accuracy"], "evaluate", broken)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        _run(tiny, tmp_path)
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob(".*.tmp"))
    monkeypatch.undo()
    assert _run(tiny, tmp_path)["cache"]["status"] == "built"


def test_the_default_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path / "c"))
    assert corruption_cache.default_cache_dir() == tmp_path / "c" / "eval-sets"
    monkeypatch.delenv("LOTTERY_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert corruption_cache.default_cache_dir() == tmp_path / "x" / "block-tickets" / "eval-sets"


def test_the_evaluation_stage_tags_built_then_reused(tiny, tmp_path, monkeypatch):
    from pipelines.evaluation import _robustness

    model, images, labels = tiny
    monkeypatch.setenv("LOTTERY_CACHE_DIR", str(tmp_path))
    tags: list[dict] = []
    ev = SimpleNamespace(corruptions=("contrast",), corruption_images=8, severities=(2,), cifar10_c_dir=None,
                         cifar10_1_dir=None, cifar10_2_dir=None, attacks=(), attack_images=0)
    ctx = SimpleNamespace(data=SimpleNamespace(test_images=images, test_labels=labels, mean=MEAN, std=STD),
                          cfg=SimpleNamespace(evaluation=ev, data=SimpleNamespace(test_seed=0)),
                          set_tags=tags.append)
    first, second = _robustness(ctx, model), _robustness(ctx, model)
    assert first == second and set(first) == {"corruption_acc", "corruption_acc.contrast"}
    assert tags[0] == {"corruption_set": "built"}
    (stored,) = (tmp_path / "eval-sets").glob("*.npy")
    assert tags[1] == {"corruption_set": f"reused: {stored.stem[:12]}"}
