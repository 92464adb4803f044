"""`lottery sweep` and `lottery resume`, plugged into the `lottery` command through the entry-point
group `lottery.commands` (pyproject: `tune = "tune.commands:register_commands"`), so that `pipelines`
never imports Ray. Handlers raise LotteryError for bad input (one line, exit status 2)."""
import argparse
import os
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from pipelines.cli import lottery_command

SWEEP_HELP = """\
Run a sweep file (tune/sweeps/*.yaml): a base config and a grid (or an Optuna search), on a local
Ray sized to this machine, or on a cluster with --address (or RAY_ADDRESS). Dense baselines run
first, once per (model, data, training, seed). Every trial is an MLflow child run of the sweep's
parent run; the report goes to <storage>/<name>/report and to the parent run. Interrupted or
failed? `lottery resume NAME` finishes it.

on a cluster: --storage must be a cloud URI (s3://, gs://) or a path every node mounts (a task on
every node reads back a marker the driver wrote there first), and MLFLOW_TRACKING_URI an MLflow
server (http://head:5000). `resources: auto` (the default) sizes each trial's CPUs and GPU share
from the cluster so that trials spread over every GPU."""

RESUME_HELP = """\
Finish an interrupted (Ctrl-C, killed driver, lost node) or partly failed sweep with Ray Tune's
restore: finished trials are kept and never rerun; unfinished and errored trials continue from
their last checkpoint (--restart-errored: errored ones start over). Each trial keeps its one MLflow
run. Give the same --results-dir / --storage as the sweep."""


def _results_dir(args) -> str | None:
    return str(Path(args.results_dir).expanduser().resolve()) if args.results_dir else None


def print_outcome(outcome, resume_hint: str) -> None:
    """The report's summary as a terminal table (only the columns with a value, at most 100 wide,
    the verdict in words; the Markdown table when the summary cannot be read back), what failed,
    how to continue, and, last, how to open the UI and what to look at there."""
    from pipelines.report.console import read_summary, terminal_table

    summary = read_summary(outcome.report_dir)
    if summary is not None:
        print(f"\n{terminal_table(summary, width=100)}")
    elif outcome.main_table:
        print(outcome.main_table)
    if outcome.report_dir:
        print(f"\nreport: {outcome.report_dir / 'report.md'}")
    if outcome.latency:
        print(outcome.latency)
    for error in outcome.errors:
        print(f"failed: {error}")
    if outcome.reused:
        print(f"{outcome.reused} trial(s) found their config already finished in experiment "
              f"{outcome.experiment!r} and were not trained again (their runs keep their first sweep)")
    state = "finished" if outcome.ok else ("interrupted" if outcome.interrupted and not outcome.errors else
                                           f"{len(outcome.errors)} trial(s) failed")
    print(f"sweep {outcome.name}: {outcome.trials} trials, {state} in {outcome.wall_time_s:.0f} s; "
          f"MLflow parent run {outcome.parent_run_id}")
    if not outcome.ok:
        print(f"continue it with: {resume_hint}")
    uri = outcome.tracking_uri
    if uri.startswith("sqlite:///"):
        results = Path(uri.removeprefix("sqlite:///")).parent
        print(f"open the MLflow UI on these runs: {lottery_command()} ui --results-dir {shlex.quote(str(results))} "
              f"--experiment {shlex.quote(outcome.experiment)} --sweep {outcome.name}, then look at the view "
              f"'sweep {outcome.name}': a row per run, its acc, Δ vs dense, verdict and MACs reduction")
    else:
        print(f"watch the runs in the MLflow UI: {uri}")


def _quiet_ray(verbose: int) -> None:
    """Ray Tune logs where it wrote its state after every phase: keep the console to our lines."""
    import logging

    if verbose < 2:
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the new engine prints a header even when silent
        for name in ("ray.tune", "ray.train", "ray.air"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _sweep(args: argparse.Namespace) -> int:
    from lottery_core.errors import LotteryError
    from tune.sweep_file import check_name, load_sweep

    overrides = list(args.set or [])
    if args.data_dir:
        overrides.append(f"data.root={Path(args.data_dir).expanduser().resolve()}")
    results_dir = _results_dir(args)
    if results_dir:
        overrides.append(f"tracking.results_dir={results_dir}")
    sweep = load_sweep(args.file, overrides, name=args.name)   # refused before Ray is imported
    from tune.launch import launch

    if args.name is None:  # unique by default: the file's name (or its `name:`) and the time
        sweep.name = check_name(f"{sweep.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if not sweep.points and sweep.optuna is None:
        raise LotteryError("the sweep has no trials")
    asked = ("resources sized from the cluster (auto)" if sweep.resources == "auto" else
             f"{sweep.resources['cpu']:g} CPU, {sweep.resources['gpu']:g} GPU per trial")
    print(f"sweep {sweep.name}: {sweep.describe()}; {asked}, at most {sweep.max_concurrent or 'as many as fit'} "
          f"at once, {sweep.retries} retries", flush=True)
    if args.dry_run:
        for cfg in sweep.points:   # the trials' validated configs, as they will run
            print(f"  {cfg.identity()}  {cfg.describe()}")
        return 0
    hint = f"{lottery_command()} resume {sweep.name}" + (f" --results-dir {results_dir}" if results_dir else "") + \
        (f" --storage {args.storage}" if args.storage else "")
    _quiet_ray(args.verbose)
    with _interrupt_hint(hint):
        outcome = launch(sweep, results_dir=results_dir, address=args.address, storage=args.storage,
                         verbose=args.verbose)
    print_outcome(outcome, hint)
    return 0 if outcome.ok else 1


def _resume(args: argparse.Namespace) -> int:
    from pipelines.tracking import check_sweep_name
    from tune.launch import resume

    check_sweep_name(args.name)

    results_dir = _results_dir(args)
    hint = f"{lottery_command()} resume {args.name}" + (f" --results-dir {results_dir}" if results_dir else "") + \
        (f" --storage {args.storage}" if args.storage else "")
    _quiet_ray(args.verbose)
    with _interrupt_hint(hint):
        outcome = resume(args.name, results_dir=results_dir, address=args.address, storage=args.storage,
                         restart_errored=args.restart_errored, verbose=args.verbose)
    print_outcome(outcome, hint)
    return 0 if outcome.ok else 1


@contextmanager
def _interrupt_hint(hint: str):
    """A second Ctrl-C ends the driver at once (the first lets Ray Tune save its state and return):
    say how to continue, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"interrupted; Ray Tune's state and the checkpoints are kept: continue with {hint}", file=sys.stderr)
        raise SystemExit(130) from None


def _exit_with(handler):
    """argparse handlers return None on success in `lottery`; a sweep with failed trials exits 1."""
    def run(args):
        code = handler(args)
        if code:
            raise SystemExit(code)
    return run


def _common(parser: argparse.ArgumentParser, resume: bool = False) -> None:
    where = "the sweep's --results-dir" if resume else "the sweep's tracking.results_dir"
    parser.add_argument("--results-dir", default=os.environ.get("LOTTERY_RESULTS_DIR"),
                        help=f"results folder: MLflow store, checkpoints, and Ray's storage in <results-dir>/ray "
                             f"(default $LOTTERY_RESULTS_DIR, else {where}, else ./lottery-runs)")
    parser.add_argument("--address", default=None,
                        help="join a running Ray cluster, e.g. ray://head:10001 or head:6379 (default $RAY_ADDRESS, "
                             "else a local Ray sized to this machine)")
    parser.add_argument("--storage", default=None,
                        help="Ray Tune's storage: a cloud URI (s3://bucket/sweeps) or a shared path; "
                             "required on a cluster (default <results-dir>/ray)")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                        help="progress: 0 none, 1 a line per trial start, epoch and end (default), "
                             "2 Ray Tune's own tables and logs")


def register_commands(commands) -> None:
    """Add `sweep` and `resume` to the `lottery` subcommands (an argparse subparsers object)."""
    sweep = commands.add_parser("sweep", help="a Ray Tune sweep (local Ray by default, --address for a cluster)",
                                description=SWEEP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("file", help="a sweep file (see tune/sweeps/)")
    sweep.add_argument("--name", help="the sweep's name, new in its storage (default: the sweep's name + the time)")
    sweep.add_argument("--data-dir", default=os.environ.get("LOTTERY_DATA_DIR"),
                       help="data directory for every trial (default $LOTTERY_DATA_DIR, else torchvision's download)")
    sweep.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                       help="override a config field of every trial (repeatable)")
    sweep.add_argument("--dry-run", action="store_true", help="validate and list the trials; start nothing")
    _common(sweep)
    sweep.set_defaults(handler=_exit_with(_sweep))

    resume = commands.add_parser("resume", help="finish an interrupted or partly failed sweep",
                                 description=RESUME_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    resume.add_argument("name", help="the sweep's name (as printed by `lottery sweep`)")
    resume.add_argument("--restart-errored", action="store_true",
                        help="start errored trials over instead of continuing them from their last checkpoint")
    _common(resume, resume=True)
    resume.set_defaults(handler=_exit_with(_resume))
