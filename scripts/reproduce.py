"""Run a reproduction grid one run after another on this machine (no Ray), then write its report.

    python -m scripts.reproduce configs/quick/reproduction.yaml --data-dir ../shared/data/cifar10

The grid file has `base` (a config), `seeds` and `runs` (each a mapping of dotted fields to a value
or a list; lists expand as a cartesian product). Runs go in file order (dense first), all seeds of a
point together, so that a partial reproduction is balanced across seeds. Finished runs are found by identity and never
trained twice: rerunning the command continues where it stopped.
"""
import argparse
import itertools
import sys
import time
from pathlib import Path

from lottery_core.errors import LotteryError
from pipelines import yaml_strict
from pipelines.cli import lottery_command
from pipelines.config import load_config
from pipelines.progress import EpochPrinter
from pipelines.runner import run
from pipelines.tracking import prepare_store


def expand(grid: dict) -> list[list[str]]:
    """Every run as a list of `key=value` overrides, dense first, seeds interleaved."""
    points = []
    for spec in grid["runs"]:
        keys = list(spec)
        values = [v if isinstance(v, list) else [v] for v in spec.values()]
        for combo in itertools.product(*values):
            points.append([f"{k}={v}" for k, v in zip(keys, combo, strict=True)])
    return [point + [f"seed={seed}"] for point in points for seed in grid.get("seeds", [0])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("grid")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--results-dir", default="lottery-runs")
    parser.add_argument("--report-dir", default="docs/results")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th config from the i-th (parallel workers)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run")
    args = parser.parse_args(argv)
    grid = yaml_strict.read_mapping(args.grid, "grid", "a mapping with base, seeds and runs, got {got}")
    common = [f"data.root={Path(args.data_dir).resolve()}", f"tracking.results_dir={Path(args.results_dir).resolve()}"]
    if args.threads:
        common.append(f"threads={args.threads}")
    configs = [load_config(grid["base"], point + common) for point in expand(grid)]  # validate all first
    index, count = map(int, args.shard.split("/"))
    prepare_store(configs[0])  # create the store once, before parallel workers touch it
    configs = configs[index::count]
    started = time.time()
    log = []
    for k, cfg in enumerate(configs, 1):
        tick = time.time()
        print(f"[{k}/{len(configs)}] {cfg.describe()} ({time.strftime('%H:%M:%S')})", flush=True)
        outcome = run(cfg, hooks=[EpochPrinter(cfg.training.epochs)])
        log.append((cfg.describe(), outcome.status, time.time() - tick, outcome.metrics.get("acc")))
        print(f"    {outcome.status} in {time.time() - tick:.0f} s, acc {outcome.metrics.get('acc', float('nan')):.2f}", flush=True)
    total = time.time() - started
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / f"durations-{index}of{count}.md").write_text(
        "| run | status | seconds | acc |\n|---|---|---|---|\n"
        + "".join(f"| {d} | {s} | {t:.0f} | {a:.2f} |\n" for d, s, t, a in log)
        + f"\nTotal {total / 60:.1f} min for {len(configs)} runs (shard {args.shard}).\n")
    if count > 1:  # the report covers every shard: write it once all are done
        print(f"shard {args.shard} done; when every shard is, write the report with:\n  {lottery_command()} report "
              f"--experiment {configs[0].tracking.experiment} --results-dir {args.results_dir} --out {args.report_dir}")
        return 0
    from pipelines.report import write_report

    uri, _ = prepare_store(configs[0])
    files = write_report(uri, configs[0].tracking.experiment, report_dir.resolve())
    print(files.main_table)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LotteryError as err:
        print(f"reproduce: error: {err}", file=sys.stderr)
        sys.exit(2)
