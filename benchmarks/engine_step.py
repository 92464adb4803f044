"""One whole training step (data, forward, backward, optimizer) of the engine against its fp32 past
and against a plain loop, and the share of this machine's convolution peak that a step reaches.

    .venv/bin/python -m benchmarks.engine_step [--rounds 5] [--models resnet20 resnet56] [--compile]

Variants, batch 128, on the same real CIFAR-10 images (2,560 class-balanced), interleaved round by
round (the median over rounds is reported, so that load from other work hits every variant):
- engine: `train()` with today's defaults (channels_last, bf16 autocast where the CPU has native bf16);
- engine_fp32: the same engine with amp=False, i.e. the engine before bf16 on the CPU;
- plain: `benchmarks.plain_loop` (fp32, NCHW, batch-wise augmentation written the obvious way);
- with --compile, engine_compile(_fp32): torch.compile of the model, whose first epoch (the
  compilation) is reported apart from its steady step time. Inductor keeps compiled kernels in
  an on-disk cache (TORCHINDUCTOR_CACHE_DIR, /tmp/torchinductor_$USER by default): the first
  epoch is cold only on the first run of an architecture on a machine.
A step's time is an epoch's training time / its steps (evaluation and checkpoints excluded).

Peak: forward + backward of one 3x3 convolution (stride 1, padding 1, channels_last) at the three
CIFAR stage shapes (16x32x32, 32x16x16, 64x8x8), batch 128, in fp32 and bf16 (autocast). FLOPs
counted: forward 2*B*C*C*9*H*W, and twice that for the backward (input and weight gradients).
A step's FLOPs come from torch.utils.flop_counter (forward + backward, multiply-add = 2).
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn

from benchmarks.common import BATCH, default_data_dir, gflops, step_flops
from benchmarks.plain_loop import train_plain
from lottery_core import models
from lottery_core.data import load_data
from lottery_core.train import TrainSettings, cpu_has_native_bf16, cpus_given, train

HERE = Path(__file__).resolve().parent
STAGES = {"16x32x32": (16, 32), "32x16x16": (32, 16), "64x8x8": (64, 8)}


def conv_peak(repeats: int = 10) -> dict:
    """GFLOP/s of forward + backward 3x3 convolutions at the CIFAR stage shapes, fp32 and bf16."""
    out = {}
    for precision in ("fp32", "bf16"):
        for name, (c, s) in STAGES.items():
            conv = nn.Conv2d(c, c, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
            x = torch.randn(BATCH, c, s, s).to(memory_format=torch.channels_last).requires_grad_()
            flops = 3 * 2 * BATCH * c * c * 9 * s * s

            def step(conv=conv, x=x, bf16=precision == "bf16"):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    y = conv(x)
                y.float().sum().backward()

            out[f"{precision}/{name}"] = gflops(step, flops, repeats, warmup=3)
        out[f"{precision}/peak"] = max(v for k, v in out.items() if k.startswith(precision + "/"))
    return out


def engine_step(name: str, data, amp: bool, compile: bool = False) -> dict:
    torch.manual_seed(0)
    model = models.build(name, num_classes=data.num_classes)
    epochs = 2 if compile else 1
    settings = TrainSettings(epochs=epochs, batch_size=BATCH, amp=amp, compile=compile, eval_every=epochs)
    history = train(model, data, settings, seed=0).history
    out = {"step_s": history[-1]["train_time_s"] / history[-1]["steps"]}
    if compile:
        out["first_epoch_s"] = history[0]["train_time_s"]
    return out


def plain_step(name: str, data) -> dict:
    torch.manual_seed(0)
    model = models.build(name, num_classes=data.num_classes, init="torch")
    return {"step_s": train_plain(model, data, epochs=1, seed=0)["step_s"]}


def measure(name: str, data, rounds: int, compile: bool) -> dict:
    variants = {"engine": lambda: engine_step(name, data, amp=True),
                "engine_fp32": lambda: engine_step(name, data, amp=False),
                "plain": lambda: plain_step(name, data)}
    if compile:
        variants["engine_compile"] = lambda: engine_step(name, data, amp=True, compile=True)
        variants["engine_compile_fp32"] = lambda: engine_step(name, data, amp=False, compile=True)
    seen = {k: [] for k in variants}
    for r in range(rounds):
        for k, fn in variants.items():
            if k.startswith("engine_compile") and r > 0:
                continue   # one compiled run each: its first epoch compiles, the second is the step
            seen[k].append(fn())
            print(f"  {name} round {r + 1} {k:20s} {1000 * seen[k][-1]['step_s']:7.1f} ms/step", flush=True)
    out = {k: {"step_ms": round(1000 * statistics.median(x["step_s"] for x in v), 1), "runs": len(v)}
           for k, v in seen.items()}
    for k in ("engine_compile", "engine_compile_fp32"):
        if seen.get(k):
            out[k]["first_epoch_s"] = round(seen[k][0]["first_epoch_s"], 1)
    ratio = [f["step_s"] / e["step_s"] for f, e in zip(seen["engine_fp32"], seen["engine"], strict=True)]
    out["speedup_vs_fp32_engine"] = round(statistics.median(ratio), 3)
    ratio = [p["step_s"] / e["step_s"] for p, e in zip(seen["plain"], seen["engine"], strict=True)]
    out["speedup_vs_plain"] = round(statistics.median(ratio), 3)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    parser.add_argument("--train-size", type=int, default=2560)
    parser.add_argument("--compile", action="store_true", help="also torch.compile (fp32 and bf16), once each")
    parser.add_argument("--out", default=str(HERE / "engine_step.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(cpus_given())
    began = time.perf_counter()
    data = load_data("cifar10", args.data_dir, train_size=args.train_size, test_size=500)
    results = {"batch": BATCH, "train_images": args.train_size, "threads": torch.get_num_threads(),
               "cpu_native_bf16": cpu_has_native_bf16(), "peak_gflops": conv_peak()}
    print(f"peak (fwd+bwd 3x3 conv): {results['peak_gflops']}", flush=True)
    for name in args.models:
        r = measure(name, data, args.rounds, args.compile)
        flops = step_flops(name, data.num_classes)
        r["step_gflop"] = round(flops / 1e9, 3)
        for k, precision in (("engine", "bf16" if results["cpu_native_bf16"] else "fp32"), ("engine_fp32", "fp32"),
                             ("plain", "fp32")):
            rate = flops / (r[k]["step_ms"] / 1000) / 1e9
            r[k]["gflops_per_s"] = round(rate, 1)
            r[k]["share_of_peak"] = round(rate / results["peak_gflops"][f"{precision}/peak"], 3)
            r[k]["peak_used"] = precision
        results[name] = r
    results["wall_s"] = round(time.perf_counter() - began, 1)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
