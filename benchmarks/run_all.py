"""`just bench`: run every benchmark in benchmarks/, merge their JSON into results.json and results.md.

Each benchmark is a module `benchmarks.<name>` that accepts `--out PATH` and writes a JSON object.
They run one after another (they measure speed: nothing else should run meanwhile).
"""
import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("criteria_cost", "engine_step", "engine_throughput", "ticket_speedup", "latency", "sweep_overhead",
              "emissions_overhead")


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available(), "platform": platform.platform()}


def flatten(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"Measured {results['date']} on {m['cpu']} ({m['cores']} threads), torch {m['torch']}, "
             f"CUDA {'yes' if m['cuda'] else 'no'}.", ""]
    for name, data in results["benchmarks"].items():
        lines += [f"### {name}", "", "| measure | value |", "|---|---|"]
        for key, value in flatten(data).items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"| {key} | {shown} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=list(BENCHMARKS), choices=BENCHMARKS)
    parser.add_argument("--collect", action="store_true", help="only merge the existing <name>.json files")
    args = parser.parse_args(argv)
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "benchmarks": {}}
    previous = HERE / "results.json"
    if previous.exists():
        results["benchmarks"] = json.loads(previous.read_text()).get("benchmarks", {})
    failed = []
    for name in args.only:
        out = HERE / f"{name}.json"
        if args.collect:
            if out.exists():
                results["benchmarks"][name] = json.loads(out.read_text())
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}", "--out", str(out)], cwd=HERE.parent)
        if code != 0 or not out.exists():
            failed.append(name)
            continue
        results["benchmarks"][name] = json.loads(out.read_text())
        results["benchmarks"][name]["benchmark_wall_s"] = round(time.perf_counter() - started, 1)
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    (HERE / "results.md").write_text(markdown(results))
    print(markdown(results))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
