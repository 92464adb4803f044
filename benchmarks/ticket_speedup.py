"""Realized training speed-up of a ResNet56 block ticket (12 blocks removed) versus dense ResNet56.

    .venv/bin/python -m benchmarks.ticket_speedup [--data-dir DIR] [--train-size 2560] [--out PATH]

The ticket is `surgery.remove_blocks(model, surgery.removable_blocks(model)[:12])`. Both networks
train one epoch each with lottery_core.train on the same CIFAR-10 images (same batches), in
alternating rounds; the speed-up is dense training time / ticket training time (SGD steps only,
evaluation and checkpoint excluded), compared with the MACs ratio from
`accounting.count_macs` (the ideal speed-up if time followed MACs). Target: >= 0.95 x ideal.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from benchmarks.engine_throughput import BATCH, default_data_dir
from lottery_core import accounting, models, surgery
from lottery_core.data import load_data
from lottery_core.train import TrainSettings, cpus_given, train

HERE = Path(__file__).resolve().parent


def networks(name: str, removed: int, num_classes: int):
    torch.manual_seed(0)
    dense = models.build(name, num_classes=num_classes)
    names = surgery.removable_blocks(dense)[:removed]
    return dense, surgery.remove_blocks(dense, names), names


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
    dense, ticket, removed = networks(args.model, args.removed, data.num_classes)
    macs_dense, macs_ticket = accounting.count_macs(dense), accounting.count_macs(ticket)
    ideal = macs_dense / macs_ticket
    times = {"dense": [], "ticket": []}
    for r in range(args.rounds):
        for kind in times:
            model = networks(args.model, args.removed, data.num_classes)[0 if kind == "dense" else 1]
            times[kind].append(epoch_time(model, data))
            print(f"  round {r + 1} {kind:6s} {times[kind][-1]:7.2f} s per epoch of {args.train_size} images", flush=True)
    speedups = [d / t for d, t in zip(times["dense"], times["ticket"], strict=True)]
    realized = statistics.median(speedups)
    results = {
        "model": args.model, "removed_blocks": removed, "train_images": args.train_size, "batch_size": BATCH,
        "threads": torch.get_num_threads(), "macs_dense": macs_dense, "macs_ticket": macs_ticket,
        "macs_reduction_pct": round(100 * (1 - macs_ticket / macs_dense), 2),
        "ideal_speedup": round(ideal, 3),
        "dense_epoch_s": round(statistics.median(times["dense"]), 2),
        "ticket_epoch_s": round(statistics.median(times["ticket"]), 2),
        "realized_speedup": round(realized, 3), "realized_over_ideal": round(realized / ideal, 3),
        "rounds": {"dense_s": [round(t, 2) for t in times["dense"]], "ticket_s": [round(t, 2) for t in times["ticket"]]},
        "target_met": realized >= 0.95 * ideal, "wall_s": round(time.perf_counter() - began, 1),
    }
    print(f"\n{args.model}: dense vs ticket without {args.removed} blocks ({', '.join(removed)})")
    print(f"{'':8s} {'MACs':>12s} {'epoch s':>8s}")
    print(f"{'dense':8s} {macs_dense:12,d} {results['dense_epoch_s']:8.2f}")
    print(f"{'ticket':8s} {macs_ticket:12,d} {results['ticket_epoch_s']:8.2f}")
    print(f"speed-up realized {realized:.3f}x, MACs ratio {ideal:.3f}x -> {realized / ideal:.3f} of ideal "
          f"(target >= 0.95: {'met' if results['target_met'] else 'missed'})")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
