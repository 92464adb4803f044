"""Training throughput of lottery_core.train versus a loop written the common way, side by side.

    .venv/bin/python -m benchmarks.engine_throughput [--data-dir DIR] [--train-size 2560] [--out PATH]

On real CIFAR-10 (an ImageFolder copy; default $LOTTERY_DATA_DIR, else ../shared/data/cifar10):
- engine: `train()` on uint8 images held in memory, batch-wise augmentation, channels_last (and
  the same engine forced to NCHW, to show what channels_last is worth on this CPU);
- reference: torchvision ImageFolder + RandomCrop(32, padding=4) / RandomHorizontalFlip /
  ToTensor / Normalize, DataLoader(batch_size=128, shuffle=True, num_workers=2), NCHW, a plain
  loop with `loss.item()` per step; same model, same initial weights, same images, same SGD.
Rounds alternate engine and reference so that load from other work on the machine hits both.
Also: the data path alone (augment + normalize batches of 128), checkpointing as a share of
epoch time, and the share of the machine's peak (3x3 conv forward, measured here) that a
training step reaches (step FLOPs from torch.utils.flop_counter, forward + backward).
"""
import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from benchmarks.common import BATCH, default_data_dir, gflops, step_flops
from lottery_core import models
from lottery_core.data import balanced_subsets, load_data, train_batches
from lottery_core.train import TrainSettings, cpus_given, train

HERE = Path(__file__).resolve().parent


def data_path(data, epochs: int = 2) -> dict:
    """Images/s of augment + normalize (+ channels_last layout) in batches of 128, no model."""
    out = {}
    for channels_last in (True, False):
        best = 0.0
        for epoch in range(epochs):
            start, n = time.perf_counter(), 0
            for x, _ in train_batches(data, BATCH, seed=0, epoch=epoch, channels_last=channels_last):
                n += len(x)
            best = max(best, n / (time.perf_counter() - start))
        out["channels_last" if channels_last else "nchw"] = round(best)
    out["images"] = len(data.train_labels)
    return out


def conv_peak(repeats: int = 10) -> dict:
    """GFLOP/s of 3x3 conv forwards (batch 128, CIFAR stage shapes, fp32, channels_last) and of
    an fp32 matmul: the machine's practical peak, measured in the same run."""
    shapes = {"16x32x32": (16, 32), "32x16x16": (32, 16), "64x8x8": (64, 8)}
    out = {}
    with torch.no_grad():
        for name, (c, s) in shapes.items():
            conv = nn.Conv2d(c, c, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
            x = torch.randn(BATCH, c, s, s).to(memory_format=torch.channels_last)
            flops = 2 * BATCH * c * c * 9 * s * s
            out[f"conv_{name}"] = gflops(lambda conv=conv, x=x: conv(x), flops, repeats)
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        out["matmul_2048"] = gflops(lambda: a @ b, 2 * 2048**3, repeats)
    out["conv_peak"] = max(v for k, v in out.items() if k.startswith("conv_"))
    return out


def reference_loader(data_dir: str, indices: torch.Tensor, mean, std):
    """The common way: ImageFolder (PIL decode per image) + transforms + DataLoader(num_workers=2)."""
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    dataset = ImageFolder(os.path.join(data_dir, "train"), transform=transform)
    subset = torch.utils.data.Subset(dataset, indices.tolist())
    loader = torch.utils.data.DataLoader(subset, batch_size=BATCH, shuffle=True, num_workers=2)
    return dataset, loader


def reference_epoch(model: nn.Module, loader, lr: float = 0.1) -> dict:
    """One epoch of the plain loop; returns images/s (worker start-up included, as it happens)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    criterion = nn.CrossEntropyLoss()
    model.train()
    start, n, running, correct = time.perf_counter(), 0, 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        out = model(x)
        loss = criterion(out, y)
        loss.backward()
        optimizer.step()
        running += loss.item()
        correct += (out.argmax(1) == y).sum().item()
        n += len(y)
    seconds = time.perf_counter() - start
    return {"images_per_s": n / seconds, "seconds": seconds}


def engine_epoch(model: nn.Module, data, channels_last: bool | None, checkpoint_dir=None) -> dict:
    settings = TrainSettings(epochs=1, batch_size=BATCH, lr=0.1, channels_last=channels_last)
    m = train(model, data, settings, seed=0, checkpoint_dir=checkpoint_dir).final
    return {"images_per_s": m["images_per_s"], "seconds": m["train_time_s"],
            "checkpoint_share": m["checkpoint_time_s"] / m["epoch_time_s"] if checkpoint_dir else None,
            "checkpoint_s": m["checkpoint_time_s"]}


def compare(name: str, data, data_dir: str, indices: torch.Tensor, rounds: int) -> dict:
    _, loader = reference_loader(data_dir, indices, data.mean, data.std)
    variants = {"engine": [], "engine_nchw": [], "reference": []}
    checkpoint = []
    for r in range(rounds):
        for variant in variants:
            torch.manual_seed(0)
            model = models.build(name, num_classes=data.num_classes)
            if variant == "reference":
                result = reference_epoch(model, loader)
            elif variant == "engine_nchw":
                if name != "resnet20":
                    continue
                result = engine_epoch(model, data, channels_last=False)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    result = engine_epoch(model, data, channels_last=None, checkpoint_dir=tmp)
                checkpoint.append(result["checkpoint_share"])
            variants[variant].append(result["images_per_s"])
            print(f"  {name} round {r + 1} {variant:12s} {result['images_per_s']:8.1f} images/s", flush=True)
    out = {k: round(statistics.median(v), 1) for k, v in variants.items() if v}
    out["speedup_vs_reference"] = round(statistics.median(
        e / ref for e, ref in zip(variants["engine"], variants["reference"], strict=True)), 3)
    if variants["engine_nchw"]:
        out["channels_last_gain"] = round(statistics.median(
            e / n for e, n in zip(variants["engine"], variants["engine_nchw"], strict=True)), 3)
    out["checkpoint_share_of_epoch"] = round(statistics.median(checkpoint), 5)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=default_data_dir(), help="CIFAR-10 ImageFolder copy")
    parser.add_argument("--train-size", type=int, default=2560, help="class-balanced training images per epoch")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per variant (median reported)")
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    parser.add_argument("--out", default=str(HERE / "engine_throughput.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(cpus_given())

    began = time.perf_counter()
    full = load_data("cifar10", args.data_dir, test_size=500)
    data = load_data("cifar10", args.data_dir, train_size=args.train_size, test_size=500)
    _, indices = balanced_subsets(full.train_labels, full.classes, [0, args.train_size], 0, "train")
    assert torch.equal(full.train_images[indices], data.train_images)  # the reference reads these files
    results = {"train_images": args.train_size, "batch_size": BATCH, "threads": torch.get_num_threads(),
               "data_path_images_per_s": data_path(full), "peak_gflops": conv_peak()}
    print(f"data path: {results['data_path_images_per_s']}  peak: {results['peak_gflops']}", flush=True)
    for name in args.models:
        res = compare(name, data, args.data_dir, indices, args.rounds)
        flops = step_flops(name, data.num_classes)
        step_s = BATCH / res["engine"]
        res["step_gflop"] = round(flops / 1e9, 2)
        res["step_gflops_per_s"] = round(flops / step_s / 1e9, 1)
        res["fraction_of_conv_peak"] = round(flops / step_s / 1e9 / results["peak_gflops"]["conv_peak"], 3)
        results[name] = res
    results["wall_s"] = round(time.perf_counter() - began, 1)
    _print_table(results, args.models)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


def _print_table(results: dict, names) -> None:
    print(f"\nengine vs reference loop, batch {BATCH}, {results['train_images']} CIFAR-10 images, "
          f"{results['threads']} threads")
    print(f"{'model':10s} {'engine img/s':>13s} {'reference':>10s} {'speed-up':>9s} {'NCHW engine':>12s} "
          f"{'ckpt % epoch':>13s} {'step GFLOP/s':>13s} {'of peak':>8s}")
    for name in names:
        r = results[name]
        print(f"{name:10s} {r['engine']:13.1f} {r['reference']:10.1f} {r['speedup_vs_reference']:8.2f}x "
              f"{r.get('engine_nchw', float('nan')):12.1f} {100 * r['checkpoint_share_of_epoch']:12.2f}% "
              f"{r['step_gflops_per_s']:13.1f} {r['fraction_of_conv_peak']:8.2f}")
    d, p = results["data_path_images_per_s"], results["peak_gflops"]
    print(f"data path alone (augment + normalize, batches of {BATCH}): {d['channels_last']:,} images/s "
          f"channels_last, {d['nchw']:,} NCHW, over {d['images']:,} images")
    print(f"peak: 3x3 conv forward {p['conv_peak']} GFLOP/s, fp32 matmul {p['matmul_2048']} GFLOP/s")


if __name__ == "__main__":
    raise SystemExit(main())
