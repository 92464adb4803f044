"""Inference latency of a dense ResNet56 and its block tickets, beside their MACs ratio.

    .venv/bin/python -m benchmarks.latency [--model resnet56] [--p 6 12 18] [--batches 1 128]
                                           [--rounds 3] [--out PATH] [--md PATH]

The tickets are `criteria.uniform_blocks` tickets (the last removable blocks of every stage, spread
evenly): ResNet56 without 6, 12 or 18 blocks is a ResNet44, ResNet32 or ResNet20. Latency does not
depend on the weights, so the networks are untrained (θ_0 of seed 0). Each network is timed at each
batch size with `accounting.latency` (eval mode, no grad, float32, NCHW: the median of `--repeats`
forward passes after warm-up; ten times as many at batch sizes up to 8) in PyTorch on the CPU with
every thread this process has, on the GPU as well when there is one, and in ONNX Runtime on the
CPU with the same threads (the file that `lottery_core.export.export_onnx` writes; its logits are
checked against PyTorch's first). The networks take turns in `--rounds` rounds; a latency is the
median over rounds, a speed-up the median over rounds of dense latency / ticket latency. The MACs
ratio (dense MACs / ticket MACs, `accounting.count_macs`) is the speed-up if time followed MACs.

Run it with the machine to itself: a latency taken while other work shares the cores means little.
Writes the JSON (`--out`) and a markdown table with the command and the machine (`--md`).
"""
import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.run_all import machine
from lottery_core import accounting, criteria, models, surgery
from lottery_core.train import cpus_given

HERE = Path(__file__).resolve().parent
SMALL_BATCH = 8    # batches up to this size get ten times the repeats (each pass is short)


def networks(name: str, ps: list[int], shortcut: str, num_classes: int = 10) -> dict[str, tuple]:
    """{"dense": (model, []), "p=6": (ticket, removed blocks), ...}: uniform tickets of the dense θ_0."""
    torch.manual_seed(0)
    dense = models.build(name, num_classes=num_classes, shortcut=shortcut)
    nets = {"dense": (dense.eval(), [])}
    for p in ps:
        removed = criteria.uniform_blocks(dense, p)
        nets[f"p={p}"] = (surgery.remove_blocks(dense, removed).eval(), removed)
    return nets


def onnx_engine(nets: dict, folder: Path) -> tuple[dict, dict]:
    """ONNX Runtime sessions of every network, and per network the max |logit difference| to
    PyTorch and the max |logit| (batch 4): untrained deep networks have large logits."""
    from lottery_core.export import export_onnx, onnx_predict, onnx_session

    sessions, diffs = {}, {}
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for kind, (model, _) in nets.items():
        sessions[kind] = onnx_session(export_onnx(model, folder / f"{kind.replace('=', '')}.onnx"))
        with torch.no_grad():
            expected = model(images)
        diffs[kind] = {"max_abs_diff": float((onnx_predict(sessions[kind], images) - expected).abs().max()),
                       "max_abs_logit": float(expected.abs().max())}
    return sessions, diffs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet56")
    parser.add_argument("--shortcut", default="A", choices=("A", "B", "conv"))
    parser.add_argument("--p", type=int, nargs="+", default=[6, 12, 18], help="blocks removed, one ticket each")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 128])
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which the networks take turns")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per round (x10 at batch <= 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads (default: all given)")
    parser.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--out", default=str(HERE / "latency.json"))
    parser.add_argument("--md", default=str(HERE / "latency.md"), help="markdown table ('' = none)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or cpus_given())
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    nets = networks(args.model, args.p, args.shortcut)
    macs = {kind: accounting.count_macs(model) for kind, (model, _) in nets.items()}
    engines = {"torch-cpu": {kind: model for kind, (model, _) in nets.items()}}
    if torch.cuda.is_available():
        engines["torch-cuda"] = {kind: copy.deepcopy(model).cuda() for kind, (model, _) in nets.items()}
    diffs = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_onnx:
            try:
                engines["onnxruntime-cpu"], diffs = onnx_engine(nets, Path(tmp))
            except ImportError as err:   # e.g. a GPU machine without onnx / onnxruntime
                print(f"ONNX Runtime skipped: {err}", file=sys.stderr)
        times = {(e, b, k): [] for e in engines for b in args.batches for k in nets}
        for r in range(args.rounds):
            for batch in args.batches:
                repeats = args.repeats * (10 if batch <= SMALL_BATCH else 1)
                for kind in nets:
                    for engine, instances in engines.items():
                        times[engine, batch, kind].append(_latency(engine, instances[kind], batch, repeats))
            print(f"  round {r + 1}/{args.rounds} done ({time.perf_counter() - began:.0f} s)", flush=True)
    results = {"model": args.model, "shortcut": args.shortcut, "threads": torch.get_num_threads(),
               "batches": args.batches, "rounds": args.rounds, "repeats": args.repeats, "engines": list(engines),
               "onnx_check": diffs, "networks": {}}
    for kind, (model, removed) in nets.items():
        results["networks"][kind] = {
            "removed_blocks": removed, "blocks": len(surgery.residual_blocks(model)), "macs": macs[kind],
            "macs_ratio": round(macs["dense"] / macs[kind], 3),
            "latency_ms": {e: {str(b): round(1000 * statistics.median(times[e, b, kind]), 3) for b in args.batches}
                           for e in engines},
            "speedup": {e: {str(b): round(statistics.median(d / t for d, t in zip(times[e, b, "dense"], times[e, b, kind],
                                                                                    strict=True)), 3)
                            for b in args.batches} for e in engines}}
    results["wall_s"] = round(time.perf_counter() - began, 1)
    # other work on the machine slows every pass: the 1-minute load average says whether there was any
    results["load_average_1min"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    results["machine"] = machine()
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = "python -m benchmarks.latency" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    text = markdown(results, command)
    print("\n" + text)
    Path(args.out).write_text(json.dumps(results, indent=2))
    if args.md:
        Path(args.md).write_text(text)
    print(f"wrote {args.out}" + (f" and {args.md}" if args.md else ""))
    return 0


def _latency(engine: str, instance, batch: int, repeats: int) -> float:
    if engine == "onnxruntime-cpu":
        from lottery_core.export import onnx_latency

        return onnx_latency(instance, batch_size=batch, repeats=repeats, warmup=2)
    return accounting.latency(instance, batch_size=batch, repeats=repeats, warmup=2)


ENGINE_NAMES = {"torch-cpu": "PyTorch CPU", "torch-cuda": "PyTorch GPU", "onnxruntime-cpu": "ONNX Runtime CPU"}


def markdown(results: dict, command: str) -> str:
    """The table: per network its blocks, MACs and MACs ratio, then latency (speed-up) per engine and batch."""
    m = results["machine"]
    lines = [f"# Inference latency: {results['model']} and its uniform block tickets", "",
             f"`{command}` — {results['date']}, {m['cpu']}, {results['threads']} thread{'s' * (results['threads'] != 1)}, torch {m['torch']}, "
             f"CUDA {'yes' if m['cuda'] else 'no'}; {results['rounds']} rounds, wall {results['wall_s']} s; "
             f"load average {results['load_average_1min']['before']} before, {results['load_average_1min']['after']} after.",
             "Latency: median ms of one forward pass of a batch (eval, float32); in brackets the speed-up "
             "versus dense (dense latency / ticket latency).", ""]
    columns = [(e, b) for e in results["engines"] for b in results["batches"]]
    lines.append("| network | blocks | MACs (M) | MACs ratio | "
                 + " | ".join(f"{ENGINE_NAMES.get(e, e)} batch {b}" for e, b in columns) + " |")
    lines.append("|---" * (4 + len(columns)) + "|")
    for kind, net in results["networks"].items():
        cells = []
        for e, b in columns:
            ms, x = net["latency_ms"][e][str(b)], net["speedup"][e][str(b)]
            cells.append(f"{ms:.1f} ms" if kind == "dense" else f"{ms:.1f} ms ({x:.2f}×)")
        name = kind if kind == "dense" else f"−{len(net['removed_blocks'])} blocks"
        lines.append(f"| {name} | {net['blocks']} | {net['macs'] / 1e6:.1f} | {net['macs_ratio']:.2f}× | "
                     + " | ".join(cells) + " |")
    if results["onnx_check"]:
        worst = max(c["max_abs_diff"] / c["max_abs_logit"] for c in results["onnx_check"].values())
        lines += ["", "ONNX Runtime's logits versus PyTorch's (batch 4 of random images, untrained networks): "
                  f"max |difference| / max |logit| {worst:.1e} over the networks ("
                  + ", ".join(f"{k}: {c['max_abs_diff']:.1e} of {c['max_abs_logit']:.3g}"
                              for k, c in results["onnx_check"].items()) + ")."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
