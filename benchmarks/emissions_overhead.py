"""What measuring energy costs a run: codecarbon's start and stop, and its sampling during the work.

    .venv/bin/python -m benchmarks.emissions_overhead [--work-s 5] [--out benchmarks/emissions_overhead.json]

In this (fresh) process: a fixed CPU workload (float32 matrix products, 2 threads, about
`--work-s` seconds) is timed bare, then inside an `EmissionsMeter` (offline, country FRA),
alternating, three times each. Reported, in seconds: the first meter's start + stop (it pays
codecarbon's one-time hardware probe), the later meters' start + stop (`Emissions.overhead_s`),
and the median extra wall time of the metered workload over the bare one (start, stop and the
background sampling together). Target: <= 2 s per run.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lottery_core.emissions import EmissionsMeter

HERE = Path(__file__).resolve().parent


def workload(n_products: int) -> float:
    """Seconds of `n_products` 1024x1024 float32 matrix products."""
    a = torch.randn(1024, 1024)
    start = time.perf_counter()
    for _ in range(n_products):
        a = torch.tanh(a @ a / 32)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-s", type=float, default=5.0, help="seconds of the fixed workload")
    parser.add_argument("--out", default=str(HERE / "emissions_overhead.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    per_product = workload(20) / 20
    n = max(1, round(args.work_s / per_product))
    bare, metered, overheads = [], [], []
    for _ in range(3):
        start = time.perf_counter()
        workload(n)
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        with EmissionsMeter(country_iso_code="FRA") as meter:
            workload(n)
        metered.append(time.perf_counter() - start)
        overheads.append(meter.result.overhead_s)
    extra = [m - b for m, b in zip(metered, bare, strict=True)]
    results = {"work_s": round(statistics.median(bare), 3), "products": n,
               "first_meter_start_stop_s": round(overheads[0], 3),
               "later_meters_start_stop_s": [round(o, 3) for o in overheads[1:]],
               "extra_wall_s": [round(e, 3) for e in extra], "extra_wall_median_s": round(statistics.median(extra), 3),
               "energy_known": meter.result.known, "target_s": 2.0,
               "target_met": max(overheads[0], statistics.median(extra)) <= 2.0}
    for key, value in results.items():
        print(f"{key}: {value}")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
