"""The short-budget recipe, chosen by measurement: engine variants beside the plain loop, same seeds.

    .venv/bin/python -m benchmarks.recipe [--variants plain quick ...] [--seeds 0 1 2] [--epochs 10]
    .venv/bin/python -m benchmarks.recipe --model resnet32 --subset-per-seed --variants plain quick

ResNet20 (option A) on 5,000 class-balanced CIFAR-10 training images (data seed 0), batch 128,
lr 0.1, weight decay 5e-4, evaluated once at the end on the whole test split (10,000 images).
Seed s sets θ₀ (torch.manual_seed(s) before the model is built) and the data order. Every run
is stored in benchmarks/recipe.json under "<variant>/<seed>/<epochs>" as it finishes, so an
interrupted run resumes where it stopped; benchmarks/recipe.md is rewritten from all of them.
The paired difference to the plain loop (same seeds) has a Student-t 95 % interval. Step times are
recorded in the JSON but not tabulated: they are only comparable on a quiet machine
(benchmarks/engine_step.py measures them).

`--model` measures another CIFAR ResNet (results in recipe_<model>.json/.md); `--subset-per-seed`
draws seed s's 5,000 images with seed s, as `lottery run` does, so that the plain loop of seed s is
the yardstick of the pipeline's dense run of seed s on the same images (the reproduction's check).
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from scipy import stats

from benchmarks.common import default_data_dir
from benchmarks.plain_loop import train_plain
from lottery_core import models
from lottery_core.data import load_data
from lottery_core.train import TrainSettings, cpus_given, train
from lottery_core.train.precision import precision

HERE = Path(__file__).resolve().parent
COMMON = {"batch_size": 128, "lr": 0.1, "weight_decay": 5e-4, "nesterov": True}
# name -> (model init, TrainSettings overrides); "plain" is benchmarks/plain_loop.py
VARIANTS = {
    "plain": ("torch", None),
    "engine_before": ("kaiming", {"schedule": "cosine", "warmup_epochs": 1}),
    "cosine_torch_init": ("torch", {"schedule": "cosine", "warmup_epochs": 1}),
    "onecycle_kaiming": ("kaiming", {"schedule": "onecycle"}),
    "quick": ("torch", {"schedule": "onecycle"}),
    "quick_m95": ("torch", {"schedule": "onecycle", "momentum": 0.95}),
    "quick_fp32": ("torch", {"schedule": "onecycle", "amp": False}),
    "quick_smooth": ("torch", {"schedule": "onecycle", "label_smoothing": 0.1}),
    "step_torch_init": ("torch", {"schedule": "step", "milestones": (0.5, 0.75)}),
}


def run_one(variant: str, seed: int, epochs: int, data, model_name: str = "resnet20") -> dict:
    init, overrides = VARIANTS[variant]
    torch.manual_seed(seed)
    model = models.build(model_name, num_classes=data.num_classes, init=init)
    began = time.perf_counter()
    if overrides is None:
        out = train_plain(model, data, epochs=epochs, seed=seed, **{k: COMMON[k] for k in ("batch_size", "lr",
                                                                                          "weight_decay")})
        out["precision"] = "fp32"
    else:
        settings = TrainSettings(epochs=epochs, eval_every=epochs, **COMMON, **overrides)
        final = train(model, data, settings, seed=seed).final
        out = {"test_acc": final["test_acc"], "step_s": final["train_time_s"] / final["steps"],
               "precision": precision("cpu", settings.amp)}
    out["wall_s"] = round(time.perf_counter() - began, 1)
    return out


def summarize(results: dict, epochs: int, model_name: str = "resnet20", subset_per_seed: bool = False) -> list[str]:
    by = {}
    for key, r in results.items():
        variant, seed, ep = key.split("/")
        if int(ep) == epochs:
            by.setdefault(variant, {})[int(seed)] = r
    subset = "drawn with the run's seed" if subset_per_seed else "data seed 0"
    lines = [f"{model_name} option A, 5,000 class-balanced CIFAR-10 images ({subset}), {epochs} epochs, batch 128, lr 0.1, "
             "wd 5e-4, Nesterov; test accuracy on the whole test split (10,000 images); "
             f"`python -m benchmarks.recipe` on {torch.get_num_threads()} CPU threads.", "",
             "| variant | init | schedule | precision | seeds | test acc % (mean ± sd) | per seed | "
             "Δ vs plain (paired, 95 % CI) |", "|---|---|---|---|---|---|---|---|"]
    plain = by.get("plain", {})
    for variant in VARIANTS:
        runs = by.get(variant)
        if not runs:
            continue
        init, overrides = VARIANTS[variant]
        accs = [runs[s]["test_acc"] for s in sorted(runs)]
        sd = statistics.stdev(accs) if len(accs) > 1 else float("nan")
        schedule = "onecycle (torch)" if overrides is None else _schedule(overrides)
        shared = sorted(set(runs) & set(plain))
        delta = "—"
        if variant != "plain" and len(shared) >= 2:
            d = [runs[s]["test_acc"] - plain[s]["test_acc"] for s in shared]
            m, se = statistics.mean(d), statistics.stdev(d) / len(d) ** 0.5
            half = stats.t.ppf(0.975, len(d) - 1) * se
            delta = f"{m:+.2f} [{m - half:+.2f}, {m + half:+.2f}]"
        lines.append(f"| {variant} | {init} | {schedule} | {runs[min(runs)]['precision']} | "
                     f"{','.join(map(str, sorted(runs)))} | {statistics.mean(accs):.2f} ± {sd:.2f} | "
                     f"{' '.join(f'{a:.2f}' for a in accs)} | {delta} |")
    return lines


def _schedule(overrides: dict) -> str:
    s = overrides.get("schedule", "step")
    extra = [f"warm-up {overrides['warmup_epochs']}"] if overrides.get("warmup_epochs") else []
    if overrides.get("label_smoothing"):
        extra.append(f"label smoothing {overrides['label_smoothing']}")
    return s + (f" ({', '.join(extra)})" if extra else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--model", default="resnet20", help="CIFAR ResNet (option A) to train")
    parser.add_argument("--subset-per-seed", action="store_true",
                        help="draw the 5,000 images with the run's seed (as `lottery run` does), not with seed 0")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the CPUs given)")
    parser.add_argument("--out", default=None, help="results JSON (default recipe.json, recipe_<model>.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or cpus_given())
    default_out = "recipe.json" if args.model == "resnet20" else f"recipe_{args.model}.json"
    out = Path(args.out or HERE / default_out)
    results = json.loads(out.read_text()) if out.exists() else {}
    data = load_data("cifar10", args.data_dir, train_size=5000)
    for seed in args.seeds:            # seeds outermost: every variant gets seed 0 before any gets seed 1
        if args.subset_per_seed:
            data = load_data("cifar10", args.data_dir, train_size=5000, seed=seed)
        for variant in args.variants:
            key = f"{variant}/{seed}/{args.epochs}"
            if key in results:
                continue
            results[key] = run_one(variant, seed, args.epochs, data, args.model)
            print(f"{key}: {results[key]}", flush=True)
            out.write_text(json.dumps(results, indent=2, sort_keys=True))
    table = summarize(results, args.epochs, args.model, args.subset_per_seed)
    out.with_suffix(".md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
