"""The `lottery` command: info | run | report | records | latency | ui, plus sweep | resume from the tune layer.

Bad input prints one line `lottery COMMAND: error: ...` and exits with status 2, no traceback.
Commands from other layers plug in through the entry-point group `lottery.commands` (a function
taking argparse subparsers), so this module never imports Ray.
"""
import argparse
import logging
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from lottery_core.errors import LotteryError


def lottery_command() -> str:
    """How to call `lottery` from this shell, for the hints we print: `lottery` when it is on PATH
    and is this environment's, else the path of this environment's script (e.g. `.venv/bin/lottery`
    after `pip install` into a venv that is not activated)."""
    script = Path(sys.prefix) / "bin" / "lottery"
    found = shutil.which("lottery")
    if not script.exists() or (found and Path(found).resolve() == script.resolve()):
        return "lottery"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _info(args: argparse.Namespace) -> None:
    if args.list:
        from pipelines.info import registered

        print("\n".join(f"{name:<20} {summary}" for name, summary in registered(args.list).items()))
        return
    if args.model is None:
        raise LotteryError("lottery info needs a model name (e.g. resnet56), or --list criteria|controls|pipelines")
    from pipelines.info import describe

    options = {"shortcut": args.shortcut} if args.shortcut else {}
    print(describe(args.model, num_classes=args.num_classes,
                   min_blocks_per_stage=args.min_blocks_per_stage, **options))


def _overrides(args: argparse.Namespace) -> list[str]:
    extra = list(args.set or [])
    if getattr(args, "data_dir", None):
        extra.append(f"data.root={Path(args.data_dir).resolve()}")
    if getattr(args, "results_dir", None):
        extra.append(f"tracking.results_dir={Path(args.results_dir).resolve()}")
    return extra


def _run(args: argparse.Namespace) -> None:
    from pipelines.config import load_config

    if args.fields:
        from pipelines.config import help_text

        print("\n".join(help_text()))
        return
    cfg = load_config(args.config, _overrides(args))   # validated before torch, MLflow or Ray is imported
    from lottery_core.train.device import resolve_device

    resolve_device(cfg.device)      # a GPU this machine lacks is reported before anything is created
    from pipelines.context import with_fingerprint
    from pipelines.progress import EpochPrinter
    from pipelines.runner import run
    from pipelines.tracking import prepare_store

    prepare_store(cfg)              # an unreachable store is reported before any data is read
    cfg = with_fingerprint(cfg)     # the data is in the identity
    print(f"{cfg.describe()}  identity {cfg.identity()}", flush=True)
    outcome = run(cfg, hooks=[EpochPrinter(cfg.training.epochs)], wait=args.wait)
    if outcome.status == "existing":
        print(f"already finished: run {outcome.run_id} (identity {outcome.identity}); nothing trained")
    keys = ("acc", "delta_acc", "macs", "macs_reduction_pct", "speedup", "winning", "corruption_acc")
    print("  ".join(f"{k}={outcome.metrics[k]:.4g}" for k in keys if k in outcome.metrics))
    print(f"run {outcome.run_id}; open the UI with: {lottery_command()} ui --results-dir {cfg.results_path()}")


def _report(args: argparse.Namespace) -> None:
    from pipelines import layout
    from pipelines.config import load_config
    from pipelines.report import write_report
    from pipelines.tracking import check_sweep_name, existing_store

    if args.name is not None:
        check_sweep_name(args.name)
    questions = None
    if args.questions:
        from pipelines.report.questions import load_questions

        questions = load_questions(args.questions)   # a bad declaration: one line, before any run is read
    cfg = load_config(None, _overrides(args) + [f"tracking.experiment={args.experiment}"])
    uri = existing_store(cfg)
    out = Path(args.out or layout.reports_dir(cfg.results_path(), args.name or args.experiment)).resolve()
    files = write_report(uri, args.experiment, out, sweep=args.name, xi=args.xi, questions=questions,
                         seeds=args.seeds)
    print(files.main_table)
    print(f"\nreport written to {out}")


def _records_export(args: argparse.Namespace) -> None:
    from pipelines.config import load_config
    from pipelines.records import export_records
    from pipelines.tracking import check_sweep_name, existing_store

    if args.sweep is not None:
        check_sweep_name(args.sweep)
    cfg = load_config(None, _overrides(args) + [f"tracking.experiment={args.experiment}"])
    uri = existing_store(cfg)
    out = Path(args.out).resolve()
    files = export_records(uri, args.experiment, out, sweep=args.sweep)
    rounds = sum("-round" in f.name for f in files)
    print(f"{len(files)} run records ({rounds} of them iterative rounds) written to {out}")


def _records_import(args: argparse.Namespace) -> None:
    from pipelines.config import load_config
    from pipelines.credentials import redact
    from pipelines.records import import_records, read_records, records_experiment
    from pipelines.tracking import prepare_store

    folder = Path(args.folder).resolve()
    records = read_records(folder)              # every record validated before a store is touched
    experiment = args.experiment or records_experiment(records, folder)
    cfg = load_config(None, _overrides(args) + [f"tracking.experiment={experiment}"])
    uri, _ = prepare_store(cfg)
    counts = import_records(folder, uri, experiment)
    print(f"imported {counts.imported} runs into experiment {experiment!r} of {redact(uri)}; "
          f"skipped {counts.skipped} already finished there"
          + (f", {counts.completed} of them completed with metrics or tags they lacked" if counts.completed else ""))


def _records_check(args: argparse.Namespace) -> None:
    from pipelines.audit import audit_experiment, summary
    from pipelines.config import load_config
    from pipelines.tracking import check_sweep_name, existing_store

    if args.sweep is not None:
        check_sweep_name(args.sweep)
    cfg = load_config(None, _overrides(args) + [f"tracking.experiment={args.experiment}"])
    audits = audit_experiment(existing_store(cfg), args.experiment, sweep=args.sweep)
    if not audits:
        raise LotteryError(f"experiment {args.experiment!r} has no runs in {cfg.results_path()}: nothing to check")
    print(summary(audits))
    if any(a.problems for a in audits):
        raise SystemExit(1)   # found something trained twice or lost (bad input is 2)


def _latency(args: argparse.Namespace) -> None:
    from pipelines.latency_settings import latency_settings

    settings = latency_settings({"batch_sizes": args.batch_sizes, "device": args.device, "threads": args.threads,
                                 "rounds": args.rounds, "repeats": args.repeats, "warmup": args.warmup,
                                 "train_batch": args.train_batch, "seed": args.seed})   # refused before torch loads
    from pipelines.config import load_config
    from pipelines.latency import measure_runs
    from pipelines.tracking import check_sweep_name, existing_store

    if args.sweep is not None:
        check_sweep_name(args.sweep)
    cfg = load_config(None, _overrides(args) + [f"tracking.experiment={args.experiment}"])
    outcome = measure_runs(existing_store(cfg), args.experiment, args.sweep, settings, force=args.force,
                           say=lambda line: print(line, flush=True) if args.verbose else None)
    print(outcome.summary())


LATENCY_HELP = """\
Time the inference (and with --train-batch one training step) of every finished run of an experiment
(or of one sweep) in one pass and log it into the run: metrics latency_b<n>_ms (median ms of one
forward pass of a batch of n, eval mode, float32) and train_step_b<n>_ms, and tags latency_device,
latency_threads, latency_torch, latency_method, latency_measured_at, latency_pass (the pass's id),
latency_network (a digest of the architecture) and latency_rounds (ms of every round). Each run's
network is rebuilt from its params and tags (block tickets: removed_blocks; filter tickets:
filter_plan.json), checked against its logged MACs and params, and timed once per distinct
architecture. Every network, the dense one included, is timed in the same rounds (at least 5), each
round visiting all of them in a fresh random order (--seed), so a slow moment of the machine falls on
all networks alike; `lottery report` reads each speed-up per round (dense / ticket) and shows its
median and interquartile range beside the MACs ratio. A pass times all the runs or none: when every
run has the metrics already, nothing is timed unless --force.

Run it with the machine as quiet as you can (after the sweep): interleaving protects the speed-ups
from a slow moment, not the milliseconds themselves."""


def _ui(args: argparse.Namespace) -> None:
    """The MLflow UI of the store on 127.0.0.1 only (never another interface: the UI can delete runs),
    announced with the direct link to the sweep's view (`pipelines.ui_view`: its runs with the key
    columns chosen, in the UI's machine-learning layout; a fresh browser opens MLflow 3's GenAI
    overview otherwise), or to the experiment's runs table when it has no sweep."""
    from pipelines import layout
    from pipelines.config import load_config
    from pipelines.credentials import without_credentials
    from pipelines.tracking import check_sweep_name, existing_store

    if not 1 <= args.port <= 65535:
        raise LotteryError(f"--port {args.port} is not a TCP port; give 1 to 65535 (default 5000)")
    if args.sweep is not None:
        check_sweep_name(args.sweep)
    experiment = [f"tracking.experiment={args.experiment}"] if args.experiment else []
    cfg = load_config(None, _overrides(args) + experiment)
    uri = existing_store(cfg)
    if uri.startswith("http"):
        page, view = _runs_page(without_credentials(uri), uri, cfg, args.sweep, args.xi)
        print(f"the tracking store is a server already: open {page}")
        if view:
            print(view)
        return
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(args.port)]
    if uri.startswith("sqlite:///"):
        command += ["--default-artifact-root", layout.artifacts_dir(cfg.results_path()).as_uri()]
    page, view = _runs_page(f"http://127.0.0.1:{args.port}", uri, cfg, args.sweep, args.xi)
    print(f"MLflow UI on {page} (store {uri}); Ctrl-C stops it", flush=True)
    if view:
        print(view, flush=True)
    subprocess.run(command, check=False)


def _runs_page(base: str, uri: str, cfg, sweep: str | None = None, xi: float = 0.0) -> tuple[str, str]:
    """(link, what it shows): the saved view of `sweep` (default: the experiment's newest sweep),
    written on the experiment with each run's verdict; the experiment's runs page when it has no
    sweep; `base` when the store lacks the experiment or cannot be written (e.g. a server that wants
    credentials: the UI's front page still helps)."""
    from mlflow.tracking import MlflowClient

    from pipelines import ui_view

    client = MlflowClient(uri)
    try:
        experiment = client.get_experiment_by_name(cfg.tracking.experiment)
    except Exception:
        experiment = None
    if experiment is None:
        if sweep:
            raise LotteryError(f"no MLflow experiment {cfg.tracking.experiment!r} at {uri}: give the sweep's "
                               f"--experiment (e.g. demo for `just demo`)")
        return base, ""
    eid = experiment.experiment_id
    try:
        found = ui_view.latest_sweep(client, eid) if sweep is None else \
            ((sweep, parent) if (parent := ui_view.sweep_parent(client, eid, sweep)) else None)
    except Exception:
        found = None
    if found is None:
        if sweep:
            raise LotteryError(f"experiment {cfg.tracking.experiment!r} has no sweep {sweep!r}")
        return ui_view.sweep_page(base, eid), ""
    name = found[0]
    try:
        tagged = ui_view.write_verdicts(client, uri, cfg.tracking.experiment, name, xi)
    except LotteryError:   # no finished run yet: the view still lists the runs
        tagged = 0
    except Exception:      # e.g. a server that refuses writes: the plain runs page
        return ui_view.sweep_page(base, eid), ""
    try:
        key = ui_view.write_view(client, eid, name)
    except Exception:
        return ui_view.sweep_page(base, eid), ""
    verdict = "its verdict over seeds (tag verdict)" if tagged else "verdict (none yet: no finished run)"
    return ui_view.sweep_page(base, eid, key), (
        f"the view 'sweep {name}' (Views menu): one row per run of the sweep with pipeline, criterion, p, seed, "
        f"acc, delta_acc (Δ vs dense, points), {verdict} and macs_reduction_pct; the report (tables, plots) "
        f"is in the parent run 'sweep {name}', Artifacts, report/")


def _add_results_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results-dir", default=os.environ.get("LOTTERY_RESULTS_DIR"),
                        help="results folder (SQLite store, artifacts, checkpoints); default ./lottery-runs")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line `lottery [COMMAND]: error: ...` (no usage block), status 2;
    subcommands' parsers are of the same class."""

    def error(self, message: str):
        hint = f" (see {self.prog} --help)" if "unrecognized" in message or "required" in message else ""
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lottery", description="Block tickets: prune whole residual blocks, "
                                     "train, compare with the dense network; runs tracked in MLflow.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="blocks, removable blocks, MACs, params, memory of a model; or "
                                            "what the registries hold (--list)")
    info.add_argument("model", nargs="?", help="a registered model name, e.g. resnet56")
    info.add_argument("--list", choices=["criteria", "controls", "pipelines"],
                      help="list the registered criteria, controls or pipelines with a line each")
    info.add_argument("--num-classes", type=int, default=10)
    info.add_argument("--shortcut", choices=["A", "B", "conv"], help="CIFAR ResNet shortcut variant")
    info.add_argument("--min-blocks-per-stage", type=int, default=2)
    info.set_defaults(handler=_info)

    run = commands.add_parser("run", help="one pipeline run on this machine, tracked in MLflow")
    run.add_argument("config", nargs="?", help="a YAML config (see configs/); omitted = all defaults")
    run.add_argument("--fields", action="store_true", help="list every config field with its default and help")
    run.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a field (repeatable)")
    run.add_argument("--data-dir", default=None, help="data directory (else $LOTTERY_DATA_DIR, else download)")
    run.add_argument("--wait", action="store_true", help="when another live process runs this config, wait "
                     "for it (then reuse its finished run) instead of refusing")
    _add_results_dir(run)
    run.set_defaults(handler=_run)

    report = commands.add_parser("report", help="paper-style tables and plots of a sweep or experiment")
    report.add_argument("name", nargs="?", help="sweep name (omit for every finished run of the experiment)")
    report.add_argument("--experiment", default="block-tickets", help="MLflow experiment")
    report.add_argument("--questions", metavar="FILE",
                        help="the study's declared questions (YAML: a `questions:` mapping, or a sweep file that declares "
                             "them, e.g. tune/sweeps/reproduction.yaml); "
                             "default: the sweep file's `questions:`; none: every verdict is exploratory")
    report.add_argument("--xi", type=float, default=None,
                        help="margin ξ (points) of the raw verdicts in the paper's tables (default: the questions' "
                             "margin, else 0.5); each question's verdicts use its own margin")
    report.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                        help="only the runs of these seeds (a sensitivity analysis; default: every seed)")
    report.add_argument("--out", help="output folder (default <results-dir>/reports/<name>)")
    report.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=argparse.SUPPRESS)
    _add_results_dir(report)
    report.set_defaults(handler=_report)

    records = commands.add_parser("records", help="finished runs as committed record files (no weights), and back")
    actions = records.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="one JSON record per FINISHED run of an experiment or sweep")
    export.add_argument("--experiment", default="block-tickets", help="MLflow experiment")
    export.add_argument("--sweep", default=None, help="only the runs of this sweep (default: every run)")
    export.add_argument("--out", required=True, help="the folder to write the records into (e.g. one in git)")
    export.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=argparse.SUPPRESS)
    _add_results_dir(export)
    export.set_defaults(handler=_records_export)
    restore = actions.add_parser("import", help="recreate the recorded runs in a store (a run already "
                                 "finished there only gets the metrics and tags it lacks)")
    restore.add_argument("folder", help="a folder of records written by `lottery records export`")
    restore.add_argument("--experiment", default=None, help="MLflow experiment (default: the records' own)")
    restore.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=argparse.SUPPRESS)
    _add_results_dir(restore)
    restore.set_defaults(handler=_records_import)
    check = actions.add_parser("check", help="was anything trained twice or lost? one run per identity, each "
                               "epoch logged once, no attempt retraining an epoch (exit 1 if so)")
    check.add_argument("--experiment", default="block-tickets", help="MLflow experiment")
    check.add_argument("--sweep", default=None, help="only the runs of this sweep (default: every run)")
    check.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=argparse.SUPPRESS)
    _add_results_dir(check)
    check.set_defaults(handler=_records_check)

    latency = commands.add_parser("latency", help="inference latency of every finished run, logged into it",
                                  description=LATENCY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    latency.add_argument("--experiment", default="block-tickets", help="MLflow experiment")
    latency.add_argument("--sweep", default=None, help="only the runs of this sweep")
    latency.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 128], metavar="N",
                         help="batch sizes to time (default 1 128)")
    latency.add_argument("--train-batch", type=int, default=None, metavar="N",
                         help="also time one SGD training step of a batch of N (metric train_step_b<N>_ms): the "
                         "training speed-up of runs that shared the cores, measured in isolation")
    latency.add_argument("--threads", type=int, default=None, help="torch threads (default: every CPU given)")
    latency.add_argument("--device", default="cpu", help="cpu, cuda, or auto (cuda when there is a GPU; default cpu)")
    latency.add_argument("--rounds", type=int, default=5, help="rounds, each visiting every network in a fresh "
                         "random order; a latency is the median over them (at least 5; default 5)")
    latency.add_argument("--repeats", type=int, default=10,
                         help="timed passes per network, batch size and round (default 10)")
    latency.add_argument("--warmup", type=int, default=2,
                         help="untimed passes before them (default 2)")
    latency.add_argument("--seed", type=int, default=None,
                         help="seed of the rounds' visiting orders (default: drawn; recorded in latency_method)")
    latency.add_argument("--verbose", action="store_true", help="a line per round and per network timed")
    latency.add_argument("--force", action="store_true", help="measure runs that have the metrics already")
    latency.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=argparse.SUPPRESS)
    _add_results_dir(latency)
    latency.set_defaults(handler=_latency)

    ui = commands.add_parser("ui", help="the MLflow UI of the configured store on 127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--experiment", default=None,
                    help="the experiment whose runs page the printed link opens (default tracking.experiment)")
    ui.add_argument("--sweep", default=None,
                    help="the sweep whose runs the link's view shows (default: the experiment's newest sweep)")
    ui.add_argument("--xi", type=float, default=None,
                    help="the raw verdicts' margin, as in `lottery report --xi` (points; default: the sweep's "
                         "questions' margin, else 0.5)")
    ui.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=argparse.SUPPRESS)
    _add_results_dir(ui)
    ui.set_defaults(handler=_ui)

    for plugin in entry_points(group="lottery.commands"):
        try:
            plugin.load()(commands)
        except ImportError as err:  # a broken plugin must not take `lottery info` down with it
            print(f"lottery: commands from {plugin.value} are unavailable: {err}", file=sys.stderr)
    return parser


def _process_defaults() -> None:
    """MLflow and alembic announce database migrations at INFO on stderr, and MLflow draws a progress
    bar per artifact download: keep the CLI's output ours.
    MLflow sets its own loggers' level when imported, from $MLFLOW_LOGGING_LEVEL (a user's setting wins)."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from pipelines.tracking_env import HTTP_RETRY_BUDGET, QUIET_DOWNLOADS

    for name, value in {**HTTP_RETRY_BUDGET, **QUIET_DOWNLOADS}.items():
        os.environ.setdefault(name, value)
    for name in ("mlflow", "alembic", "codecarbon"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    _process_defaults()
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except LotteryError as err:
        from pipelines.credentials import redact

        print(f"lottery {args.command}: error: {redact(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lottery {args.command}: interrupted; the run is marked KILLED in MLflow and its "
              f"checkpoint kept: run the same command again to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
