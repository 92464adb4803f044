"""Realized training speed-up of a ResNet56 block ticket (12 blocks removed) versus dense ResNet56.

    .venv/bin/python -m benchmarks.ticket_speedup [--data-dir DIR] [--train-size 2560] [--out PATH]

The ticket "first" removes the earliest removable blocks that min_blocks_per_stage=2 allows (for
ResNet56: seven of layer1 and five of layer2, where GraSP's choices fall); a second ticket of equal MACs takes
four blocks from every stage ("spread"), because early, narrow stages run fewer FLOP/s on a CPU
and removing them flatters the figure. The networks train one epoch each with
lottery_core.train on the same CIFAR-10 images (same batches), in alternating rounds; the speed-up is dense training time / ticket training time (SGD steps only,
evaluation and checkpoint excluded), compared with the MACs ratio from
`accounting.count_macs` (the ideal speed-up if time followed MACs). Target: >= 0.95 x ideal.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import BATCH, default_data_dir
from lottery_core import accounting, criteria, models, surgery
from lottery_core.data import load_data
from lottery_core.train import TrainSettings, cpus_given, train

HERE = Path(__file__).resolve().parent


def networks(name: str, removed: int, num_classes: int) -> dict:
    """The dense network and two tickets of `removed` blocks with equal MACs: "first" takes the
    earliest removable blocks each stage's budget allows, "spread" takes the
    same number from every stage (the last blocks of each), keeping >= 2 blocks per stage."""
    torch.manual_seed(0)
    dense = models.build(name, num_classes=num_classes)
    removable = surgery.removable_blocks(dense)
    spread = criteria.uniform_blocks(dense, removed)
    first = criteria.select_blocks({n: i for i, n in enumerate(removable)}, removed, model=dense).removed
    return {"dense": (dense, []),
            "first": (surgery.remove_blocks(dense, first), first),
            "spread": (surgery.remove_blocks(dense, spread), spread)}


def epoch_time(model, data) -> float:
    settings = TrainSettings(epochs=1, batch_size=BATCH, lr=0.1)
    return train(model, data, settings, seed=0).final["train_time_s"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=default_data_dir(), help="CIFAR-10 ImageFolder copy")
    parser.add_argument("--train-size", type=int, default=2560, help="class-balanced training images per epoch")
    parser.add_argument("--model", default="resnet56")
    parser.add_argument("--removed", type=int, default=12, help="blocks removed (the first of removable_blocks)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median reported)")
    parser.add_argument("--out", default=str(HERE / "ticket_speedup.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(cpus_given())
    began = time.perf_counter()
    data = load_data("cifar10", args.data_dir, train_size=args.train_size, test_size=200)
    nets = networks(args.model, args.removed, data.num_classes)
    macs = {kind: accounting.count_macs(model) for kind, (model, _) in nets.items()}
    times = {kind: [] for kind in nets}
    for r in range(args.rounds):
        for kind in nets:
            model = networks(args.model, args.removed, data.num_classes)[kind][0]
            times[kind].append(epoch_time(model, data))
            print(f"  round {r + 1} {kind:6s} {times[kind][-1]:7.2f} s per epoch of {args.train_size} images", flush=True)
    results = {"model": args.model, "train_images": args.train_size, "batch_size": BATCH,
               "threads": torch.get_num_threads(), "macs_dense": macs["dense"],
               "dense_epoch_s": round(statistics.median(times["dense"]), 2), "tickets": {}}
    for kind in ("first", "spread"):
        ideal = macs["dense"] / macs[kind]
        realized = statistics.median(d / t for d, t in zip(times["dense"], times[kind], strict=True))
        results["tickets"][kind] = {
            "removed_blocks": nets[kind][1], "macs": macs[kind],
            "macs_reduction_pct": round(100 * (1 - macs[kind] / macs["dense"]), 2),
            "epoch_s": round(statistics.median(times[kind]), 2), "rounds_s": [round(t, 2) for t in times[kind]],
            "ideal_speedup": round(ideal, 3), "realized_speedup": round(realized, 3),
            "realized_over_ideal": round(realized / ideal, 3), "target_met": realized >= 0.95 * ideal}
    results["rounds_dense_s"] = [round(t, 2) for t in times["dense"]]
    first = results["tickets"]["first"]
    results.update({k: first[k] for k in ("ideal_speedup", "realized_speedup", "realized_over_ideal", "target_met")})
    results["wall_s"] = round(time.perf_counter() - began, 1)
    print(f"\n{args.model}: training epoch, dense vs tickets without {args.removed} blocks (equal MACs)")
    print(f"{'network':8s} {'MACs':>12s} {'epoch s':>8s} {'speed-up':>9s} {'MACs ratio':>11s} {'of ideal':>9s}  removed")
    print(f"{'dense':8s} {macs['dense']:12,d} {results['dense_epoch_s']:8.2f}")
    for kind, t in results["tickets"].items():
        print(f"{kind:8s} {t['macs']:12,d} {t['epoch_s']:8.2f} {t['realized_speedup']:8.3f}x {t['ideal_speedup']:10.3f}x "
              f"{t['realized_over_ideal']:9.3f}  {', '.join(t['removed_blocks'])}")
    print(f"target (first ticket, as specified) realized >= 0.95 x MACs ratio: "
          f"{'met' if results['target_met'] else 'missed'}")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
