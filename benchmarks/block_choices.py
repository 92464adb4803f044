"""Which blocks each criterion removes: ResNet20 and ResNet56 (option A), at θ_0 and after a short
training, p = 3, as a Markdown table.

    .venv/bin/python -m benchmarks.block_choices [--data-dir DIR] [--epochs 5] [--train-size 5000] [--out PATH]

θ_0 is seed 0. "trained" is θ_0 trained `--epochs` epochs (SGD, lr 0.1, one warm-up epoch then
cosine, batch 128, augmentation) on a class-balanced subset of `--train-size` CIFAR-10 training
images: not a converged network, but one whose BatchNorm running statistics and weights have
moved off their placeholders. Every criterion scores on the same `--images-per-class` x 10
class-balanced training images (seed 0).

"before" rows are this project's behaviour before the criteria were fixed: hrank/expectabs/pls on the
block output (target="output", the paper's literal reading) and every data-driven "eval"
criterion in eval mode even at θ_0, where BatchNorm holds placeholder statistics. "after" rows
are today's defaults: the residual branch, train-mode BatchNorm while the statistics are
placeholders. Criteria the fix did not touch appear once. `uniform` (the last blocks of each
stage) is the plain-shallower-network control. CPU, torch threads = 2; about five minutes.
"""
import argparse
import copy
import time
from pathlib import Path

import torch

from benchmarks.common import default_data_dir
from lottery_core import criteria, models
from lottery_core.data import load_data
from lottery_core.errors import LotteryError
from lottery_core.train import TrainSettings, train

HERE = Path(__file__).resolve().parent
BEFORE = {"target": "output", "bn_mode": "eval"}
ROWS = [(name, options) for name in ("hrank", "expectabs", "pls") for options in (BEFORE, {})]
ROWS += [(name, options) for name in ("kl", "cka") for options in ({"bn_mode": "eval"}, {})]
ROWS += [("snip", {}), ("grasp", {}), ("synflow", {}), ("magnitude", {})]
CHANGED = {"hrank", "expectabs", "pls", "kl", "cka"}
NETS = ("resnet20", "resnet56")


def short(removed: list[str]) -> str:
    """'layer1.0', 'layer3.2' -> '1.0 3.2' (forward order)."""
    return " ".join(sorted((n.removeprefix("layer") for n in removed), key=lambda s: tuple(map(int, s.split(".")))))


def label(name: str, options: dict) -> str:
    """'hrank, before (output, eval)', 'hrank, after (defaults)', or the name of an unchanged criterion."""
    if name not in CHANGED:
        return name
    if not options:
        return f"{name}, after (defaults)"
    return f"{name}, before ({', '.join(str(v) for v in options.values())})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=default_data_dir(), help="CIFAR-10 ImageFolder tree")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--images-per-class", type=int, default=10, help="scoring images per class")
    parser.add_argument("--p", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "block_choices.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    began = time.perf_counter()
    data = load_data("cifar10", args.data_dir, train_size=args.train_size, test_size=args.test_size, seed=0)
    batches = criteria.scoring_batches(data.train_images, data.train_labels, args.images_per_class, 0,
                                       data.mean, data.std)
    settings = TrainSettings(epochs=args.epochs, batch_size=128, lr=0.1, schedule="cosine", warmup_epochs=1,
                             threads=2,
                             eval_every=args.epochs)
    columns, notes, choices = [], [], {}
    for net in NETS:
        torch.manual_seed(0)
        theta0 = models.build(net, shortcut="A")
        trained = copy.deepcopy(theta0)
        result = train(trained, data, settings, seed=0)
        notes.append(f"{net} trained: test accuracy {result.history[-1]['test_acc']:.1f}% on "
                     f"{len(data.test_labels)} test images after {result.total_time_s:.0f} s")
        for state, model in (("θ0", theta0), (f"{args.epochs} epoch{'s' * (args.epochs > 1)}", trained)):
            column = f"{net} {state}"
            columns.append(column)
            for name, options in ROWS:
                tick = time.perf_counter()
                try:
                    scores = criteria.score_blocks(model, name, batches, **options)
                except LotteryError as err:   # degenerate scores (e.g. branch HRank at θ0): no ranking to show
                    choices[(label(name, options), column)] = "refused"
                    print(f"  {column:<22} {label(name, options):<20} refused: {err}", flush=True)
                    continue
                plan = criteria.select_blocks(scores, args.p, model=model, criterion=name)
                choices[(label(name, options), column)] = short(plan.removed)
                print(f"  {column:<22} {label(name, options):<20} {short(plan.removed):<16} "
                      f"({time.perf_counter() - tick:.1f} s)", flush=True)
            choices[("uniform (control)", column)] = short(criteria.uniform_blocks(model, args.p))
    rows = [label(n, o) for n, o in ROWS] + ["uniform (control)"]
    lines = [f"Blocks removed at p = {args.p} (X.Y = layerX.Y; option-A shortcuts; seed 0; "
             f"scoring on {sum(len(y) for _, y in batches)} CIFAR-10 training images; "
             f"trained = {args.epochs} epochs on {len(data.train_labels)} images, lr 0.1, 1 warm-up "
             "epoch, cosine).", "",
             "| criterion | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {row} | " + " | ".join(choices[(row, c)] for c in columns) + " |" for row in rows]
    lines += ["", *[f"- {n}" for n in notes],
              "- before: target=output (activation criteria) and eval-mode BatchNorm, also at θ0 where the "
              "running statistics are placeholders (mean 0, variance 1); after: the defaults (branch; "
              "train-mode BatchNorm while the statistics are placeholders, eval after training; "
              "snip/grasp always train, synflow eval).",
              f"- `python -m benchmarks.block_choices` on 2 CPU threads: {time.perf_counter() - began:.0f} s."]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
