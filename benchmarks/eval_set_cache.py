"""One run's corruption evaluation with its corrupted sets built (cold) or reused (warm) from the node cache.

    .venv/bin/python -m benchmarks.eval_set_cache [--images N] [--sets-images M] [--repeats 3]
                                                  [--threads T] [--out benchmarks/eval_set_cache.json]

The stage is `corruption_accuracy` as `pipelines.evaluation._robustness` calls it, with the
evaluation settings of `--config` (default configs/paper/resnet32_dense.yaml: 10,000 test images,
the 15 corruptions x 5 severities, data.test_seed 0) on the real CIFAR-10 test split (the same
seeded subset as `_subset`) and that config's ResNet, freshly initialised (the accuracy is not
the point; its time is). `--images` replaces `evaluation.corruption_images`: on a 2-core CPU the
model's 75 passes over 10,000 images alone take over an hour (about 5 s per 1,000 images per set),
time that the cache does not change. Three ways, per measure:

    uncached   cache_dir=None: what every run did before the cache (made in the run's process)
    cold       an empty cache folder: the sets are made, evaluated and stored (one new folder per repeat)
    warm       the first cold folder again: the sets are read (digests checked), nothing is made

Measures: "stage" (the call above, with the model; its report splits the seconds into
"corrupt", waiting for the sets made or read, and "evaluate", the model) and "sets_only" (the
same sets made or read without the model, `--sets-images` of them: what the cache changes, at a
size the model would make too slow here). Repeats alternate cold and warm so that load from other
work on the machine hits both; every run must give bit-identical accuracies (stage) and bytes
(sets only), checked. Written: wall seconds (runs, median, min), the cache status and key, the
stored bytes, the machine (CPU model from /proc/cpuinfo, threads, 1-minute load average before
and after, whether it was shared) and the command.
"""
import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from benchmarks.common import REPO, default_data_dir

HERE = Path(__file__).resolve().parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def summary(values: list[float]) -> dict:
    return {"runs": [round(v, 3) for v in values], "median": round(statistics.median(values), 3),
            "min": round(min(values), 3)}


def alternate(run, folder: Path, repeats: int, uncached_repeats: int) -> dict[str, list[dict]]:
    """`run(cache_dir)` cold (a new empty folder each time) and warm (the first folder again), in
    turns, then without a cache; checks the statuses and that every run's result is the same."""
    runs: dict[str, list[dict]] = {"uncached": [], "cold": [], "warm": []}
    for r in range(repeats):
        runs["cold"].append(run(folder / f"cold{r}"))
        runs["warm"].append(run(folder / "cold0"))
    for _ in range(uncached_repeats):
        runs["uncached"].append(run(None))
    statuses = {mode: sorted({r["status"] for r in rs}) for mode, rs in runs.items() if rs}
    assert statuses["cold"] == ["built"] and statuses["warm"] == ["reused"], statuses
    assert all(r["result"] == runs["cold"][0]["result"] for rs in runs.values() for r in rs), "results differ"
    return runs


def seconds(runs: dict[str, list[dict]], parts: tuple[str, ...]) -> dict:
    return {mode: {part: summary([r[part] for r in rs]) for part in parts} for mode, rs in runs.items() if rs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "paper" / "resnet32_dense.yaml"))
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--images", type=int, default=None,
                        help="evaluation.corruption_images of the stage with the model (default: the config's)")
    parser.add_argument("--sets-images", type=int, default=None,
                        help="images of the sets-only measure (default: --images; 0: skip it)")
    parser.add_argument("--repeats", type=int, default=3, help="cold and warm runs each")
    parser.add_argument("--uncached-repeats", type=int, default=1, help="runs without the cache (0: none)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--alone", action="store_true", help="the machine ran nothing else (else noted as shared)")
    parser.add_argument("--out", default=str(HERE / "eval_set_cache.json"))
    args = parser.parse_args()

    from lottery_core import models, robustness
    from lottery_core.data import load_data
    from lottery_core.robustness.corruption_cache import CachedSets
    from lottery_core.robustness.corruption_sets import corrupted_sets
    from pipelines.config import load_config
    from pipelines.evaluation import _subset

    torch.set_num_threads(args.threads)
    overrides = [f"evaluation.corruption_images={args.images}"] if args.images is not None else []
    cfg = load_config(args.config, overrides=overrides)
    ev, device, seed = cfg.evaluation, torch.device(args.device), cfg.data.test_seed
    data = load_data(cfg.data.name, args.data_dir, test_seed=seed, device=device)
    images, labels = _subset(SimpleNamespace(data=data, cfg=cfg), ev.corruption_images)
    names = robustness.CORRUPTIONS if "all" in ev.corruptions else tuple(ev.corruptions)
    jobs = [(n, s) for n in names for s in ev.severities]
    torch.manual_seed(cfg.seed)
    model = models.build(cfg.model.name, num_classes=data.num_classes, **cfg.model.builder_options()).to(device)
    load_before = os.getloadavg()

    def stage(cache_dir) -> dict:
        start = time.perf_counter()
        report = robustness.corruption_accuracy(model, images, labels, data.mean, data.std, names=names,
                                                severities=ev.severities, seed=seed, cache_dir=cache_dir)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
        status = report["cache"]["status"] if report["cache"] else "uncached"
        print(f"stage {status}: {wall:.1f} s (corrupt {report['seconds']['corrupt']:.1f}, "
              f"evaluate {report['seconds']['evaluate']:.1f})", flush=True)
        return {"wall": wall, **report["seconds"], "status": status, "key": (report["cache"] or {}).get("key"),
                "result": {k: report[k] for k in ("mean", "per_severity", "skipped")}}

    n_sets = len(images) if args.sets_images is None else min(args.sets_images, len(data.test_images))
    set_images = _subset(SimpleNamespace(data=data, cfg=cfg), n_sets)[0] if n_sets else None

    def sets_only(cache_dir) -> dict:
        """The corrupted sets alone, made or read (no model): what the cache changes."""
        start = time.perf_counter()
        source = CachedSets(set_images, jobs, seed, cache_dir) if cache_dir else corrupted_sets(set_images, jobs,
                                                                                              seed, 0)
        digest = hashlib.sha256()
        for _, out, _ in source:
            digest.update(b"skipped" if isinstance(out, Exception) else out.cpu().numpy().tobytes())
        wall = time.perf_counter() - start
        status = source.status if cache_dir else "uncached"
        print(f"sets {status}: {wall:.1f} s", flush=True)
        return {"wall": wall, "status": status, "result": digest.hexdigest()}

    with tempfile.TemporaryDirectory(prefix="eval-set-cache-") as tmp:
        stage_runs = alternate(stage, Path(tmp) / "stage", args.repeats, args.uncached_repeats)
        key = stage_runs["cold"][0]["key"]
        stored = sum(f.stat().st_size for f in (Path(tmp) / "stage" / "cold0").glob(f"{key}.*"))
        set_runs = alternate(sets_only, Path(tmp) / "sets", args.repeats, args.uncached_repeats) if n_sets else None
    load_after = os.getloadavg()

    def median_saving(runs) -> float:
        return round(statistics.median(r["wall"] for r in runs["cold"])
                     - statistics.median(r["wall"] for r in runs["warm"]), 3)

    results = {
        "what": "one run's corruption evaluation (corruption_accuracy as pipelines.evaluation._robustness "
                "calls it) with the corrupted sets made without the cache (uncached), built into an empty "
                "cache (cold) or read from it (warm); and the sets alone, without the model",
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python -m benchmarks.eval_set_cache", *sys.argv[1:]]),
        "settings": {"config": os.path.relpath(args.config, REPO), "model": cfg.model.name,
                     "shortcut": cfg.model.shortcut, "corruptions": len(names),
                     "severities": list(ev.severities), "sets": len(jobs), "test_seed": seed,
                     "device": str(device), "skipped": stage_runs["cold"][0]["result"]["skipped"]},
        "stage": {"images": len(images), "seconds": seconds(stage_runs, ("wall", "corrupt", "evaluate")),
                  "saved_per_run_s": median_saving(stage_runs), "accuracies_identical": True,
                  "mean_corruption_acc": stage_runs["cold"][0]["result"]["mean"],
                  "cache_key": key[:12], "stored_bytes": stored},
        "sets_only": None if set_runs is None else {
            "images": n_sets, "seconds": seconds(set_runs, ("wall",)), "saved_per_run_s": median_saving(set_runs),
            "bytes_identical": True},
        "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "torch_threads": args.threads,
                    "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
                    "conditions": "machine to itself" if args.alone else "machine shared with other jobs",
                    "torch": torch.__version__, "python": platform.python_version()},
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("stage", "sets_only")}, indent=1))


if __name__ == "__main__":
    main()
