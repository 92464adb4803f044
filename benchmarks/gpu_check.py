"""The GPU path, proven by one prepared script (at most ~5 minutes on one GPU).

    python -m benchmarks.pack_cifar                      # here: packs benchmarks/gpu/cifar10_subset.npz
    python -m benchmarks.gpu_check [--data PACK] [--out JSON] [--budget-s 270]   # there (`just gpu-check`)
    python -m benchmarks.gpu_check --table JSON          # the markdown table of a result

Needs only PyTorch, torchvision and numpy (no Ray, MLflow, codecarbon, Torch-Pruning or
torchattacks: the GPU machine has none). Steps, each written to the JSON as soon as it ends, so a
run cut off early still reports what it did:

1. throughput: training images/s of dense ResNet20/32/56 (engine `train()`, channels_last) at
   batch 128 and 512, fp32 (TF32 convolutions, torch's default) and bf16 autocast; the best of
   epochs 2-3 (epoch 1 includes cudnn's autotuning).
2. sharing: aggregate images/s of 1, 2 and 4 ResNet20 batch-128 training processes on the one
   GPU at once (what `gpu: 0.25` Ray trials do; no MPS), timed after a common barrier.
3. tickets: epoch-time speed-up of ResNet56 without 12 blocks (the 12 earliest removable; four
   per stage) against its MACs ratio (`benchmarks.ticket_speedup.networks`), bf16, batch 128.
4. accuracy: dense ResNet32 versus its GraSP ticket (p = 3, planned at θ₀), quick recipe, a few
   epochs on the packed subset, seeds 0-2.
5. resume: ResNet20 stopped after epoch 1 and resumed from its checkpoint against an
   uninterrupted run; and a second uninterrupted run for the run-to-run floor (cudnn autotuning
   may pick non-deterministic kernels). Holds when the resumed weights differ from the
   uninterrupted ones by no more than that floor (bit-identical when the floor is 0).
6. compile: `torch.compile` of ResNet56, bf16, batch 512, in a child process with a deadline:
   first-epoch time (compilation included) and steady images/s against eager.

On a CPU (or with --smoke) the same steps run at a tiny size as a smoke test (the test suite
calls it); compile is skipped there (tens of seconds of compilation on a CPU).
"""
import argparse
import copy
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
QUICK = {"lr": 0.1, "weight_decay": 5e-4, "nesterov": True, "schedule": "onecycle"}


def sizes(smoke: bool) -> dict:
    """What each step runs: the GPU sizes, or a tiny CPU smoke run."""
    if smoke:
        return {"models": ["resnet20"], "batches": [16], "epochs": 2, "processes": [1, 2], "share_epochs": 2,
                "share_images": 64, "ticket_rounds": 1, "ticket_epochs": 1, "accuracy_epochs": 1, "seeds": [0],
                "resume_epochs": 2}
    return {"models": ["resnet20", "resnet32", "resnet56"], "batches": [128, 512], "epochs": 3,
            "processes": [1, 2, 4], "share_epochs": 4, "share_images": 10000, "ticket_rounds": 2,
            "ticket_epochs": 2, "accuracy_epochs": 15, "seeds": [0, 1, 2], "resume_epochs": 3}


def throughput(ctx) -> dict:
    from lottery_core import models
    from lottery_core.train import TrainSettings, train

    out = {}
    for name in ctx["sizes"]["models"]:
        for batch in ctx["sizes"]["batches"]:
            for amp in (False, True):
                torch.manual_seed(0)
                model = models.build(name, num_classes=ctx["data"].num_classes)
                settings = TrainSettings(epochs=ctx["sizes"]["epochs"], batch_size=batch, amp=amp,
                                         eval_every=ctx["sizes"]["epochs"])
                history = train(model, ctx["data"], settings, device=ctx["device"]).history
                rate = max(m["images_per_s"] for m in history[1:]) if len(history) > 1 else history[0]["images_per_s"]
                key = f"{name}/b{batch}/{'bf16' if amp else 'fp32'}"
                out[key] = round(rate, 1)
                ctx["log"](f"throughput {key}: {rate:,.0f} images/s")
    return out


def _share_worker(barrier, results, index: int, device: str, images: int, epochs: int) -> None:
    """One ResNet20 batch-128 training process: an epoch of warm-up, the barrier, then timed epochs."""
    from lottery_core import models
    from lottery_core.data import ImageData
    from lottery_core.train import TrainSettings, train

    gen = torch.Generator().manual_seed(index)
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (images,), generator=gen)
    empty = torch.zeros(0, 3, 32, 32, dtype=torch.uint8)
    data = ImageData(x, y, empty, torch.zeros(0, dtype=torch.int64), x[:256], y[:256], num_classes=10,
                     classes=tuple(map(str, range(10))), mean=(0.5,) * 3, std=(0.25,) * 3, name="noise",
                     source="memory").to(device)

    class Barrier:
        def on_epoch_end(self, epoch, metrics, state):
            if epoch == 0:
                barrier.wait()

    torch.manual_seed(index)
    model = models.build("resnet20")
    history = train(model, data, TrainSettings(epochs=epochs, batch_size=128, eval_every=epochs), device=device,
                    hooks=[Barrier()]).history
    results.put(statistics.mean(m["images_per_s"] for m in history[1:]))


def _collect(results, procs, timeout_s: float = 240.0) -> list[float]:
    """One result per process; raises as soon as one of them died without giving its result."""
    import queue

    rates, began = [], time.perf_counter()
    while len(rates) < len(procs):
        try:
            rates.append(results.get(timeout=2))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.perf_counter() - began > timeout_s:
                for p in procs:
                    p.kill()
                raise RuntimeError(f"a sharing process failed (exit codes {dead}) or timed out") from None
    for p in procs:
        p.join()
    return rates


def sharing(ctx) -> dict:
    spawn = mp.get_context("spawn")
    out = {}
    for n in ctx["sizes"]["processes"]:
        barrier, results = spawn.Barrier(n), spawn.Queue()
        procs = [spawn.Process(target=_share_worker, args=(barrier, results, i, str(ctx["device"]),
                                                          ctx["sizes"]["share_images"], ctx["sizes"]["share_epochs"]))
                 for i in range(n)]
        for p in procs:
            p.start()
        rates = _collect(results, procs)
        out[f"{n}_processes"] = {"aggregate_images_per_s": round(sum(rates), 1),
                                 "per_process": [round(r, 1) for r in rates]}
        ctx["log"](f"sharing {n}: {sum(rates):,.0f} images/s in all")
    one = out["1_processes"]["aggregate_images_per_s"]
    for n in ctx["sizes"]["processes"][1:]:
        out[f"{n}_processes"]["vs_one"] = round(out[f"{n}_processes"]["aggregate_images_per_s"] / one, 3)
    return out


def tickets(ctx) -> dict:
    from benchmarks.ticket_speedup import networks
    from lottery_core import accounting
    from lottery_core.train import TrainSettings, train

    nets = networks("resnet56", 12, ctx["data"].num_classes)
    settings = TrainSettings(epochs=ctx["sizes"]["ticket_epochs"], batch_size=128 if not ctx["smoke"] else 16,
                             eval_every=ctx["sizes"]["ticket_epochs"])
    times = {k: [] for k in nets}
    for _ in range(ctx["sizes"]["ticket_rounds"]):
        for k, (model, _) in nets.items():
            history = train(copy.deepcopy(model), ctx["data"], settings, device=ctx["device"]).history
            times[k].append(history[-1]["train_time_s"])
    dense_macs = accounting.count_macs(nets["dense"][0])
    out = {"dense_epoch_s": round(statistics.median(times["dense"]), 3)}
    for k in ("first", "spread"):
        model, removed = nets[k]
        speedup = statistics.median(times["dense"]) / statistics.median(times[k])
        ideal = dense_macs / accounting.count_macs(model)
        out[k] = {"removed": removed, "epoch_s": round(statistics.median(times[k]), 3),
                  "speedup": round(speedup, 3), "macs_ratio": round(ideal, 3), "of_ideal": round(speedup / ideal, 3)}
        ctx["log"](f"ticket {k}: {speedup:.2f}x vs MACs ratio {ideal:.2f}x")
    return out


def accuracy(ctx) -> dict:
    from lottery_core import criteria, models, surgery
    from lottery_core.criteria import scoring_batches
    from lottery_core.train import TrainSettings, train

    data, epochs = ctx["data"], ctx["sizes"]["accuracy_epochs"]
    settings = TrainSettings(epochs=epochs, batch_size=128 if not ctx["smoke"] else 16, eval_every=epochs, **QUICK)
    runs = {"dense": [], "grasp_p3": []}
    removed = []
    for seed in ctx["sizes"]["seeds"]:
        torch.manual_seed(seed)
        dense = models.build("resnet32", num_classes=data.num_classes, init="torch").to(ctx["device"])
        batches = scoring_batches(data.train_images, data.train_labels, 2 if ctx["smoke"] else 10, seed,
                                  data.mean, data.std, device=ctx["device"])
        plan = criteria.select_blocks(criteria.score_blocks(dense, "grasp", batches), 3, dense)
        ticket = surgery.remove_blocks(dense, plan.removed)
        removed.append(list(plan.removed))
        for key, model in (("dense", dense), ("grasp_p3", ticket)):
            runs[key].append(train(model, data, settings, seed=seed, device=ctx["device"]).final["test_acc"])
        ctx["log"](f"accuracy seed {seed}: dense {runs['dense'][-1]:.2f}, GraSP ticket {runs['grasp_p3'][-1]:.2f}")
    return {"epochs": epochs, "train_images": len(data.train_labels), "test_images": len(data.test_labels),
            "seeds": ctx["sizes"]["seeds"], "removed": removed, **{k: v for k, v in runs.items()},
            "mean_delta": round(statistics.mean(t - d for t, d in zip(runs["grasp_p3"], runs["dense"], strict=True)),
                                3)}


class _Stop(Exception):
    pass


def resume(ctx) -> dict:
    import tempfile

    from lottery_core import models
    from lottery_core.train import TrainSettings, train

    class StopAfter:
        def on_epoch_end(self, epoch, metrics, state):
            if epoch == 0:
                raise _Stop

    epochs = ctx["sizes"]["resume_epochs"]
    settings = TrainSettings(epochs=epochs, batch_size=128 if not ctx["smoke"] else 16, **QUICK)

    def fresh():
        torch.manual_seed(0)
        return models.build("resnet20", num_classes=ctx["data"].num_classes)

    finals = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in ("a", "b"):
            model = fresh()
            train(model, ctx["data"], settings, seed=1, device=ctx["device"], checkpoint_dir=f"{tmp}/{run}")
            finals.append({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
        try:
            train(fresh(), ctx["data"], settings, seed=1, device=ctx["device"], checkpoint_dir=f"{tmp}/c",
                  hooks=[StopAfter()])
        except _Stop:
            pass
        model = fresh()
        result = train(model, ctx["data"], settings, seed=1, device=ctx["device"], checkpoint_dir=f"{tmp}/c")
        resumed = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}

    def max_diff(x, y):
        return max(float((x[k] - y[k]).abs().max()) for k in x)

    floor, diff = max_diff(finals[0], finals[1]), max_diff(finals[0], resumed)
    out = {"resumed_from_epoch": result.resumed_from_epoch, "max_abs_weight_diff_resumed": diff,
           "max_abs_weight_diff_run_to_run": floor, "bit_identical": diff == 0.0,
           "tolerance": "resumed vs uninterrupted <= run-to-run floor", "holds": diff <= floor}
    ctx["log"](f"resume: diff {diff:.3g}, run-to-run {floor:.3g}, holds {out['holds']}")
    return out


def _compile_child(results, data_path: str, device: str, epochs: int) -> None:
    from benchmarks.pack_cifar import unpack
    from lottery_core import models
    from lottery_core.train import TrainSettings, train

    data = unpack(data_path, device)
    torch.manual_seed(0)
    model = models.build("resnet56", num_classes=data.num_classes)
    history = train(model, data, TrainSettings(epochs=epochs, batch_size=512, compile=True, eval_every=epochs),
                    device=device).history
    results.put({"first_epoch_s": history[0]["train_time_s"],
                 "images_per_s": max(m["images_per_s"] for m in history[1:])})


def compiled(ctx) -> dict:
    if ctx["smoke"]:
        return {"skipped": "smoke run: torch.compile is measured on a GPU only (tens of seconds to compile on a CPU)"}
    deadline = max(30.0, ctx["left"]() - 15)
    spawn = mp.get_context("spawn")
    results = spawn.Queue()
    child = spawn.Process(target=_compile_child, args=(results, ctx["data_path"], str(ctx["device"]), 3))
    child.start()
    child.join(deadline)
    if child.is_alive():
        child.kill()
        return {"timed_out_after_s": round(deadline, 1)}
    if results.empty():
        return {"error": f"the compile child exited with {child.exitcode}"}
    r = results.get()
    eager = ctx["results"].get("throughput", {}).get("resnet56/b512/bf16")
    return {"model": "resnet56", "batch": 512, "precision": "bf16", "first_epoch_s": round(r["first_epoch_s"], 1),
            "images_per_s": round(r["images_per_s"], 1), "eager_images_per_s": eager,
            "vs_eager": round(r["images_per_s"] / eager, 3) if eager else None}


STEPS = {"throughput": throughput, "sharing": sharing, "tickets": tickets, "accuracy": accuracy,
         "resume": resume, "compile": compiled}


def environment(device: torch.device, smoke: bool) -> dict:
    import platform

    env = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device), "smoke": smoke,
           "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), tf32_conv=torch.backends.cudnn.allow_tf32)
    return env


def run(data_path: str, out: Path, smoke: bool, budget_s: float, steps=tuple(STEPS)) -> dict:
    from benchmarks.pack_cifar import unpack

    began = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() and not smoke else "cpu")
    smoke = smoke or device.type == "cpu"
    results = {"environment": environment(device, smoke), "budget_s": budget_s}
    ctx = {"device": device, "smoke": smoke, "sizes": sizes(smoke), "data": unpack(data_path, device),
           "data_path": data_path, "results": results, "left": lambda: budget_s - (time.perf_counter() - began),
           "log": lambda msg: print(f"[{time.perf_counter() - began:6.1f} s] {msg}", flush=True)}
    for name in steps:
        if ctx["left"]() < 20:
            results[name] = {"skipped": f"time budget of {budget_s:.0f} s spent"}
        else:
            tick = time.perf_counter()
            try:
                results[name] = STEPS[name](ctx)
            except Exception as err:  # a failed step is reported, the next ones still run
                results[name] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(limit=5)}
            results[name]["step_s"] = round(time.perf_counter() - tick, 1)
        results["wall_s"] = round(time.perf_counter() - began, 1)
        _write(out, results)
    return results


def _write(out: Path, results: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)


def table(results: dict) -> str:
    """Markdown tables of a gpu_check JSON."""
    env = results["environment"]
    lines = [f"GPU check on {env.get('gpu', env['device'])} (torch {env['torch']}, Python {env['python']}, "
             f"{env['date']}{', smoke run' if env['smoke'] else ''}); wall {results.get('wall_s')} s.", ""]
    t = results.get("throughput", {})
    if "error" not in t and "skipped" not in t:
        lines += ["| model | batch | fp32 images/s | bf16 images/s | bf16 / fp32 |", "|---|---|---|---|---|"]
        for key in sorted({k.rsplit("/", 1)[0] for k in t if "/" in k}):
            name, batch = key.split("/")
            fp32, bf16 = t.get(f"{key}/fp32"), t.get(f"{key}/bf16")
            ratio = f"{bf16 / fp32:.2f}" if fp32 and bf16 else "—"
            lines.append(f"| {name} | {batch[1:]} | {fp32:,.0f} | {bf16:,.0f} | {ratio} |")
        lines.append("")
    s = results.get("sharing", {})
    if "1_processes" in s:
        lines += ["| ResNet20 processes | aggregate images/s | vs one |", "|---|---|---|"]
        for k, v in s.items():
            if k.endswith("_processes"):
                lines.append(f"| {k.split('_')[0]} | {v['aggregate_images_per_s']:,.0f} | {v.get('vs_one', 1.0)} |")
        lines.append("")
    tk = results.get("tickets", {})
    if "first" in tk:
        lines += ["| ResNet56 − 12 blocks | epoch s | speed-up | MACs ratio | of ideal |", "|---|---|---|---|---|",
                  f"| dense | {tk['dense_epoch_s']} | 1 | 1 | — |"]
        for k in ("first", "spread"):
            v = tk[k]
            lines.append(f"| {k} | {v['epoch_s']} | {v['speedup']} | {v['macs_ratio']} | {v['of_ideal']} |")
        lines.append("")
    for key in ("accuracy", "resume", "compile"):
        if key in results:
            shown = {k: v for k, v in results[key].items() if k != "traceback"}
            lines.append(f"- {key}: `{json.dumps(shown)}`")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(HERE / "gpu" / "cifar10_subset.npz"), help="a benchmarks.pack_cifar file")
    default_out = Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else HERE / "gpu" / "gpu_check.json"
    parser.add_argument("--out", default=str(default_out))
    parser.add_argument("--budget-s", type=float, default=270.0, help="seconds before the remaining steps are skipped")
    parser.add_argument("--smoke", action="store_true", help="the tiny CPU-sized run, even on a GPU")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--table", metavar="JSON", help="print the markdown table of a result and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())), end="")
        return 0
    if not Path(args.data).exists():
        print(f"gpu_check: no data file {args.data}; pack one here with `python -m benchmarks.pack_cifar`",
              file=sys.stderr)
        return 2
    results = run(args.data, Path(args.out), args.smoke, args.budget_s, tuple(args.steps))
    print(table(results), end="")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
