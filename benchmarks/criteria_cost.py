"""What scoring costs: every criterion on ResNet56 as a share of one training epoch, growth with depth,
and block removal time.

    .venv/bin/python -m benchmarks.criteria_cost [--data-dir DIR] [--images-per-class 10] [--out PATH]

One run, CPU, torch threads = 2. A training step (forward + backward + SGD step, batch 128,
channels_last) is timed on ResNet56; one epoch = ceil(50,000 / 128) = 391 steps. Each criterion
scores ResNet56's removable blocks on `images-per-class` x 10 CIFAR-10 images (real ones from
`--data-dir` when it exists, else random uint8 images) with its default BatchNorm mode, and its
time is divided by the epoch time of a step measured right beside it (the machine is shared:
contention slows both alike); the median over repeats is reported. Targets: SNIP <= 1%, GraSP <= 2%, SynFlow <= 1%,
activation criteria (hrank, expectabs, kl, pls, cka) <= 3%. SNIP and GraSP are also timed on
ResNet20/32/56/110 (cost should grow linearly with depth), and `surgery.remove_blocks` on
ResNet110 (target <= 100 ms).
"""
import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import default_data_dir
from lottery_core import criteria, models, surgery
from lottery_core.criteria import registry
from lottery_core.normalize import CIFAR10_MEAN, CIFAR10_STD

HERE = Path(__file__).resolve().parent
EPOCH_IMAGES, BATCH = 50_000, 128
TARGETS = {"snip": 0.01, "grasp": 0.02, "synflow": 0.01,
           "hrank": 0.03, "expectabs": 0.03, "kl": 0.03, "pls": 0.03, "cka": 0.03}
DEPTHS = ("resnet20", "resnet32", "resnet56", "resnet110")


def scoring_images(data_dir: Path | None, per_class: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """`per_class` images of each CIFAR-10 class from an ImageFolder train split, else random ones."""
    train = data_dir / "train" if data_dir else None
    if train is not None and train.is_dir():
        from PIL import Image

        images, labels = [], []
        for label, folder in enumerate(sorted(p for p in train.iterdir() if p.is_dir())):
            for path in sorted(folder.iterdir())[:per_class]:
                images.append(torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1))
                labels.append(label)
        return torch.stack(images), torch.tensor(labels), f"CIFAR-10 ({train})"
    gen = torch.Generator().manual_seed(0)
    n = per_class * 10
    return (torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen),
            torch.arange(n) % 10, "random uint8")


class Trainer:
    """ResNet56 SGD steps at batch 128, channels_last: the yardstick, re-measured beside every scoring."""

    def __init__(self, name: str = "resnet56"):
        torch.manual_seed(0)
        self.model = models.build(name).to(memory_format=torch.channels_last).train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        self.x = torch.randn(BATCH, 3, 32, 32).to(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (BATCH,))
        self.steps(2)  # warm-up

    def steps(self, n: int) -> float:
        """Median seconds of `n` training steps (forward + backward + SGD step)."""
        times = []
        for _ in range(n):
            start = time.perf_counter()
            self.opt.zero_grad(set_to_none=True)
            F.cross_entropy(self.model(self.x), self.y).backward()
            self.opt.step()
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=default_data_dir(), help="CIFAR-10 ImageFolder (optional)")
    parser.add_argument("--images-per-class", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per criterion (median)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (median)")
    parser.add_argument("--out", default=str(HERE / "criteria_cost.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    load_before = os.getloadavg()[0]

    images, labels, source = scoring_images(Path(args.data_dir) if args.data_dir else None, args.images_per_class)
    batches = criteria.scoring_batches(images, labels, args.images_per_class, 0, CIFAR10_MEAN, CIFAR10_STD)
    trainer = Trainer()
    steps_per_epoch = math.ceil(EPOCH_IMAGES / BATCH)
    step = trainer.steps(args.steps)
    print(f"resnet56 train step (batch {BATCH}, channels_last): {step * 1e3:.0f} ms -> epoch "
          f"{step * steps_per_epoch:.0f} s; scoring on {len(labels)} images ({source})")

    torch.manual_seed(0)
    model = models.build("resnet56")
    criteria.score_blocks(model, "snip", batches)  # warm-up (allocator, lazy imports)
    rows, all_steps = {}, [step]
    print(f"\n{'criterion':<10} {'bn_mode':<8} {'median s':>9} {'% epoch':>8} {'target':>7}  ok")
    runs = [(name, name, None) for name in criteria.names("block")]
    runs += [("snip@eval", "snip", "eval"), ("grasp@eval", "grasp", "eval")]  # the pipeline config's default
    for label, name, mode in runs:
        seconds, fractions = [], []
        for _ in range(args.repeats):  # a step time beside every scoring: contention hits both alike
            beside = trainer.steps(2)
            start = time.perf_counter()
            criteria.score_blocks(model, name, batches, bn_mode=mode)
            seconds.append(time.perf_counter() - start)
            fractions.append(seconds[-1] / (beside * steps_per_epoch))
            all_steps.append(beside)
        fraction, target = statistics.median(fractions), TARGETS.get(name)
        bn_mode = mode or registry.get(name, "block").bn_mode
        rows[label] = {"seconds": round(statistics.median(seconds), 4), "min_seconds": round(min(seconds), 4),
                      "bn_mode": bn_mode, "epoch_fraction": round(fraction, 6), "target_fraction": target,
                      "meets_target": None if target is None else fraction <= target}
        shown = f"{100 * target:.0f}%" if target else "-"
        ok = "" if target is None else ("yes" if fraction <= target else "NO")
        print(f"{label:<10} {bn_mode or '-':<8} {statistics.median(seconds):>9.3f} {100 * fraction:>7.2f}% "
              f"{shown:>7}  {ok}")
    step = statistics.median(all_steps)
    epoch = step * steps_per_epoch

    depth = {}
    print(f"\n{'model':<10} {'blocks':>6} {'snip s':>8} {'grasp s':>8} {'grasp s/block':>14}   (min of repeats)")
    for name in DEPTHS:
        torch.manual_seed(0)
        net = models.build(name)
        n_blocks = len(surgery.residual_blocks(net))
        criteria.score_blocks(net, "grasp", batches)  # warm-up
        snip = min(timed(lambda net=net: criteria.score_blocks(net, "snip", batches), args.repeats))
        grasp = min(timed(lambda net=net: criteria.score_blocks(net, "grasp", batches), args.repeats))
        depth[name] = {"blocks": n_blocks, "snip_seconds": round(snip, 4), "grasp_seconds": round(grasp, 4),
                       "grasp_seconds_per_block": round(grasp / n_blocks, 5)}
        print(f"{name:<10} {n_blocks:>6} {snip:>8.3f} {grasp:>8.3f} {grasp / n_blocks:>14.4f}")
    blocks = [depth[n]["blocks"] for n in DEPTHS]
    for key in ("snip_seconds", "grasp_seconds"):
        slope, intercept = np.polyfit(blocks, [depth[n][key] for n in DEPTHS], 1)
        fitted = np.polyval([slope, intercept], blocks)
        r2 = 1 - np.sum((np.array([depth[n][key] for n in DEPTHS]) - fitted) ** 2) / np.var(
            [depth[n][key] for n in DEPTHS]) / len(DEPTHS)
        depth[f"{key}_linear_fit"] = {"per_block": round(float(slope), 5), "intercept": round(float(intercept), 4),
                                      "r2": round(float(r2), 4)}
        print(f"{key}: {slope * 1e3:.1f} ms per block + {intercept:.3f} s, R² = {r2:.4f}")

    torch.manual_seed(0)
    r110 = models.build("resnet110")
    plan = criteria.select_blocks(criteria.score_blocks(r110, "magnitude"), 12, model=r110)
    surgery.remove_blocks(r110, plan.removed)  # warm-up
    removals = timed(lambda: surgery.remove_blocks(r110, plan.removed), 7)
    removal = statistics.median(removals)
    print(f"\nsurgery.remove_blocks(resnet110, 12 blocks): median {removal * 1e3:.1f} ms, "
          f"min {min(removals) * 1e3:.1f} ms (target <= 100 ms)")

    load = (round(load_before, 2), round(os.getloadavg()[0], 2))
    print(f"1-minute load average before/after: {load[0]} / {load[1]} (2 cores; above ~2 the figures are contended)")
    results = {"threads": torch.get_num_threads(), "load_average_before_after": load, "scoring_images": len(labels), "scoring_data": source,
               "train_step_s": round(step, 4), "epoch_s": round(epoch, 2), "steps_per_epoch": steps_per_epoch, "resnet56": rows, "depth": depth,
               "remove_blocks_resnet110_ms": round(removal * 1e3, 2),
               "remove_blocks_resnet110_min_ms": round(min(removals) * 1e3, 2),
               "remove_blocks_meets_target": removal <= 0.1,
               "all_targets_met": all(r["meets_target"] is not False for r in rows.values()) and removal <= 0.1}
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
