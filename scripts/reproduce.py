"""Run a reproduction grid one run after another on this machine (no Ray), then write its report.

    python -m scripts.reproduce configs/quick/reproduction.yaml --data-dir ../shared/data/cifar10
    python -m scripts.reproduce GRID --data-dir ... --shard 1 --worker 0/2 --threads 1   # and --worker 1/2

The grid file has `base` (a config), `seeds`, and either `runs` or `shards` (a mapping from a
shard's name to its runs). A run is a mapping of dotted fields to a value or a list; lists expand
as a cartesian product, and a run's own `seed` list replaces `seeds`. Shards are the pieces of a
long reproduction that one session runs and commits as records (`lottery records export`) before
the next starts, possibly on a fresh machine; `--shard NAME` picks one (default: all, in order).
`--worker i/n` splits the shard's unfinished runs among n parallel processes (started together). Runs go in file order (dense first), all
seeds of a point together, so that a partial reproduction is balanced across seeds. Finished runs
are found by identity and never trained twice: rerunning the command continues where it stopped.

On a fresh machine, a shard starts from the committed records of the shards before it (its tickets
need their dense runs, and the report needs every run); `--import-earlier DIR` imports those into
`--results-dir` and exits, before the workers start. The shard's own records and those of later
shards are left out, so that the shard trains again rather than finding its runs already there:

    python -m scripts.reproduce GRID --data-dir ... --shard 2 --import-earlier docs/results/records
"""
import argparse
import collections
import itertools
import sys
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from pipelines import yaml_strict
from pipelines.cli import lottery_command
from pipelines.config import load_config
from pipelines.context import with_fingerprint
from pipelines.progress import EpochPrinter
from pipelines.records import import_records, read_records
from pipelines.runner import run
from pipelines.tracking import finished_run, prepare_store, tracking_uri


def expand(grid: dict, shard: str | None = None) -> list[list[str]]:
    """Every run of `shard` (None: of every shard, in file order) as a list of `key=value` overrides."""
    if "shards" in grid:
        shards = {str(name): specs for name, specs in grid["shards"].items()}
        if shard is not None and shard not in shards:
            raise LotteryError(f"--shard {shard}: the grid has shards {', '.join(shards)}")
        specs = [spec for name, part in shards.items() if shard in (None, name) for spec in part]
    else:
        if shard is not None:
            raise LotteryError(f"--shard {shard}: the grid has no `shards`, only `runs`")
        specs = grid["runs"]
    runs = []
    for spec in specs:
        seeds = spec.get("seed", grid.get("seeds", [0]))
        fields = {k: v for k, v in spec.items() if k != "seed"}
        values = [v if isinstance(v, list) else [v] for v in fields.values()]
        for combo in itertools.product(*values):
            point = [f"{k}={v}" for k, v in zip(fields, combo, strict=True)]
            runs.extend(point + [f"seed={seed}"] for seed in (seeds if isinstance(seeds, list) else [seeds]))
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("grid")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--results-dir", default="lottery-runs")
    parser.add_argument("--report-dir", default="docs/results")
    parser.add_argument("--shard", default=None, help="the grid's shard to run (default: every shard, in order)")
    parser.add_argument("--worker", default="0/1", help="i/n: run every n-th config from the i-th (parallel workers)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run")
    parser.add_argument("--import-earlier", default=None, metavar="RECORDS",
                        help="import the records (a folder) of the shards before --shard into --results-dir, and exit")
    args = parser.parse_args(argv)
    grid = yaml_strict.read_mapping(args.grid, "grid", "a mapping with base, seeds and runs, got {got}")
    common = [f"data.root={Path(args.data_dir).resolve()}", f"tracking.results_dir={Path(args.results_dir).resolve()}"]
    if args.threads:
        common.append(f"threads={args.threads}")
    if args.import_earlier is not None:
        return _import_earlier(grid, args.shard, common, Path(args.import_earlier))
    configs = [load_config(grid["base"], point + common) for point in expand(grid, args.shard)]  # validate all first
    index, count = _worker(args.worker)
    configs = [with_fingerprint(c) for c in configs]  # the data is part of the identity (read once)
    uri, experiment_id = prepare_store(configs[0])  # create the store once, before parallel workers touch it
    dense_here = {c.identity() for c in configs if c.pipeline == "dense"}
    client = MlflowClient(uri)
    # split what is left, not the whole grid: restarted workers share the remaining runs evenly
    configs = [c for c in configs if finished_run(client, experiment_id, c.identity()) is None][index::count]
    waiting = _DenseWaiter(client, experiment_id, dense_here)
    started = time.time()
    name = f"durations-{'all' if args.shard is None else 'shard' + args.shard}-{index}of{count}.md"
    durations = Path(args.report_dir) / name
    durations.parent.mkdir(parents=True, exist_ok=True)
    log = []
    queue = collections.deque(configs)
    while queue:
        cfg = queue.popleft()
        if waiting.for_dense(cfg, others=queue):
            queue.append(cfg)
            continue
        tick = time.time()
        print(f"[{len(log) + 1}/{len(configs)}] {cfg.describe()} ({time.strftime('%H:%M:%S')})", flush=True)
        outcome = run(cfg, hooks=[EpochPrinter(cfg.training.epochs)])
        log.append((cfg.describe(), outcome.status, time.time() - tick, outcome.metrics.get("acc", float("nan"))))
        print(f"    {outcome.status} in {time.time() - tick:.0f} s, acc {log[-1][3]:.2f}", flush=True)
        durations.write_text(  # after every run: a cut-short shard keeps what it measured
            f"Wall seconds per run of worker {args.worker}, shard {args.shard or 'all'} "
            f"(a `finished` run was found by identity and not trained again).\n\n"
            "| run | status | seconds | acc |\n|---|---|---|---|\n"
            + "".join(f"| {d} | {s} | {t:.0f} | {a:.2f} |\n" for d, s, t, a in log)
            + f"\nTotal {(time.time() - started) / 60:.1f} min for {len(log)} of {len(configs)} runs.\n")
    report_dir = Path(args.report_dir)
    if count > 1:  # the report covers every shard: write it once all are done
        print(f"worker {args.worker} done; when every worker is, write the report with:\n  {lottery_command()} report "
              f"--experiment {configs[0].tracking.experiment} --results-dir {args.results_dir} --out {args.report_dir}")
        return 0
    from pipelines.report import write_report

    files = write_report(uri, configs[0].tracking.experiment, report_dir.resolve())
    print(files.main_table)
    return 0


def _import_earlier(grid: dict, shard: str | None, common: list[str], folder: Path) -> int:
    """Import the records in `folder` of every run of the shards before `shard` (found by identity);
    a run of those shards without a record is refused before anything is imported."""
    if shard is None or "shards" not in grid:
        raise LotteryError("--import-earlier needs --shard and a grid with `shards`: it imports the shards before it")
    expand(grid, shard)  # refuses an unknown shard
    names = [str(name) for name in grid["shards"]]
    earlier = names[:names.index(shard)]
    if not earlier:
        print(f"shard {shard} is the first: there is no earlier shard to import")
        return 0
    configs = [with_fingerprint(load_config(grid["base"], point + common))
               for name in earlier for point in expand(grid, name)]
    recorded = read_records(folder)
    missing = [c for c in configs if c.identity() not in recorded]
    if missing:
        raise LotteryError(f"shards {', '.join(earlier)}: {len(missing)} of their {len(configs)} runs have no record "
                           f"in {folder} (the first: {missing[0].describe()}); finish those shards and export "
                           "their records first")
    counts = import_records(folder, tracking_uri(configs[0]), configs[0].tracking.experiment,
                            only={c.identity() for c in configs})
    print(f"shards {', '.join(earlier)}: {counts.imported} runs imported from {folder} ({counts.skipped} were "
          f"already there); shard {shard} and later shards are left out, to train again")
    return 0


class _DenseWaiter:
    """Defers a ticket whose dense run another worker of this grid has not finished yet.

    Round-robin workers can reach a ticket (ticket_rewind needs the dense run's θ_i and θ_n) before
    the worker that trains its dense run is done. Such a ticket goes to the back of the queue; when
    only such tickets are left, the worker polls the store every `poll_s` seconds."""

    def __init__(self, client, experiment_id: str, dense_in_grid: set[str], poll_s: float = 30.0):
        self.client, self.experiment_id, self.dense_in_grid, self.poll_s = client, experiment_id, dense_in_grid, poll_s

    def for_dense(self, cfg, others) -> bool:
        if not self.waits(cfg):
            return False
        if all(self.waits(other) for other in others):
            print(f"    waiting for dense run {cfg.dense().identity()[:12]} (trained by another worker) for "
                  f"{cfg.describe()}", flush=True)
            time.sleep(self.poll_s)
        return True

    def waits(self, cfg) -> bool:
        return (cfg.pipeline != "dense" and cfg.dense().identity() in self.dense_in_grid
                and finished_run(self.client, self.experiment_id, cfg.dense().identity()) is None)


def _worker(text: str) -> tuple[int, int]:
    """`i/n` -> (i, n) with 0 <= i < n."""
    try:
        index, count = map(int, text.split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise LotteryError(f"--worker {text}: expected i/n with 0 <= i < n, e.g. 0/2")
    return index, count


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LotteryError as err:
        print(f"reproduce: error: {err}", file=sys.stderr)
        sys.exit(2)
