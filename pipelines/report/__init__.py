"""`lottery report`: the declared questions' answers, the paper-style tables (Markdown + CSV) and
plots (PNG) of an experiment or sweep.

    files = write_report(tracking_uri, "block-tickets", out_dir, sweep="demo-...",
                         questions=load_questions("questions.yaml"))
    print(files.main_table)

The report opens with the study's declared questions (`questions`): for each, the answer in words
generated from its Holm-adjusted verdicts, its table of comparisons and its planning SD. The
paper's tables follow; a comparison that no question declares is labelled exploratory there.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from pipelines.report import figures, paper, pareto, stats, tables, timing
from pipelines.report.questions import (
    DEFAULT_MARGIN,
    Question,
    answer_all,
    load_questions,
    membership,
    read_questions,
)
from pipelines.report.runs import load_rounds, load_runs, paired


@dataclass(frozen=True)
class ReportInputs:
    """What every table is built from: the finished runs, ticket–dense pairs, the margin ξ (points),
    the declared questions' labels, the iterative rounds."""

    runs: pd.DataFrame
    pairs: pd.DataFrame
    xi: float
    labels: dict
    rounds: pd.DataFrame


@dataclass(frozen=True)
class ReportTable:
    """One section of the report: its CSV name, title, note ({xi}, {timing} filled in) and builder
    (None or an empty frame: "No runs of this kind"). A new table is a function plus one line here."""

    key: str
    title: str
    note: str
    build: Callable[[ReportInputs], pd.DataFrame | None]


# the report's tables, in order
TABLES = (
    ReportTable("summary", "Summary: every configuration", "Test accuracy (`acc`: the final fp32 evaluation on the test split; "
                "%, mean ± std over seeds) and Δ = ticket − dense accuracy in points, paired by seed, with its 90 % interval and "
                "raw verdict at ξ = {xi:g} points; `question` names the declared question the row answers (its adjusted verdict "
                "beside it), else the row is exploratory.",
                lambda d: tables.summary(d.runs, d.pairs, d.xi, d.labels)),
    ReportTable("controls", "Controls: does the criterion find the blocks, or would a control do as well?",
                "Each criterion against each control at the same p, d = acc(criterion) − acc(control) paired by seed, 90 % "
                "interval, raw verdict at ξ = {xi:g} points (better / worse / equivalent / inconclusive): random blocks "
                "(criterion random), random blocks with the criterion's per-stage counts, the plain shallower network "
                "(uniform), the inverted criterion, scores on shuffled labels or noise images, and reinit (the ticket's "
                "architecture, fresh weights).",
                lambda d: tables.controls(d.runs, d.xi, d.labels)),
    ReportTable("table1_rewind", "Table 1 analogue: block tickets after training, Δ by criterion × rewind point θᵢ",
                "Δ accuracy in points, mean [90 % interval] (n) raw verdict (Algorithm 1); the reinit column is the "
                "Liu et al. control: the ticket's architecture with fresh weights, trained n epochs.",
                lambda d: tables.table1_rewind(d.pairs, d.xi)),
    ReportTable("table2_init", "Table 2 analogue: block tickets at initialization, Δ by p × criterion",
                "Δ accuracy in points, mean [90 % interval] (n) raw verdict (Algorithm 2); p = blocks removed.",
                lambda d: tables.table2_init(d.pairs, d.xi)),
    ReportTable("paper_table2", "Against the paper: its Table 2 beside these runs",
                "The paper's Δ (ResNet32 with 1×1-convolution shortcuts, CIFAR-10, its full training budget, one number "
                "per cell) beside the Δ of these runs for the same criterion and p (ResNet32 on CIFAR-10; points, mean over "
                "seeds, 90 % interval). \"inside\": these runs cannot tell their mean from the paper's number; \"above\" "
                "or \"below\": the paper's number lies outside their interval, a disagreement in these runs' regime "
                "(model variant, data, epochs), not a verdict on the paper. Each interval is unadjusted for the number of cells: "
                "at 90 %, about one cell in ten falls outside by chance alone.",
                lambda d: paper.table2(d.pairs, d.xi)),
    ReportTable("table3_filter_vs_block", "Table 3 analogue: filter tickets vs block tickets of the same size",
                "Each side's Δ against dense, and filter − block accuracy paired by seed (points, 90 % interval, raw verdict at "
                "ξ = {xi:g}). `matched`: the filter ticket is pruned to the block ticket's filter count (filters) or to its "
                "MACs (macs); the MACs columns show how different \"the same size\" can be.",
                lambda d: tables.table3_filter_vs_block(d.runs, d.pairs, d.xi, d.labels)),
    ReportTable("table4_cost", "Table 4 analogue: cost reductions and training speed-up",
                "Reductions versus dense in %; energy and CO₂ are codecarbon's estimates (where the CPU exposes no RAPL "
                "counters it models power as constant, so they restate the run's duration, shared cores included); "
                "speed-up = dense / ticket SGD time per epoch (×) as the runs measured it while they trained "
                "(meaningless when runs shared the cores), beside the MACs ratio. Inference and training-step speed-ups are "
                "in the speed-up table, from one interleaved timing pass.",
                lambda d: tables.table4_cost(d.pairs)),
    ReportTable("speedups_by_size", "Speed-ups from one interleaved timing pass, by ticket size",
                "{timing} This table pools the per-round speed-ups of every architecture of one kind and MACs ratio; the "
                "next gives each architecture.",
                lambda d: timing.speedup_by_size(d.runs)),
    ReportTable("speedups", "Speed-ups from one interleaved timing pass, per architecture",
                "One row per distinct architecture (identical architectures are one measurement), dense first.",
                lambda d: timing.speedup_table(d.runs)),
    ReportTable("pareto", "Pareto front: accuracy against MACs",
                "One row per ticket configuration (mean over seeds; accuracy = validation accuracy when every ticket reports "
                "it, else test accuracy), the dense network first; on_front: no other ticket is as accurate and cheaper. A "
                "front found on one seed is a shortlist: rerun it with several seeds and read the summary's verdicts.",
                lambda d: pareto.table(d.runs)),
    ReportTable("iterative", "Iterative tickets round by round, against one-shot tickets of the same p",
                "Each round of the iterative runs (k blocks a round) by blocks removed: MACs left, test accuracy of the round's "
                "ticket (at θ₀ only the last round is trained unless pruning.stop_xi judged every round) and of the one-shot "
                "ticket (ticket_init, or ticket_rewind at the same θᵢ) with the same criterion, seed and dense run; "
                "iterative − one-shot in points, paired by seed, 90 % interval, raw verdict at ξ = {xi:g}.",
                lambda d: tables.iterative(d.rounds, d.runs, d.xi)),
    ReportTable("table5_robustness", "Table 5 analogue: robustness, Δ ticket − dense",
                "Points of accuracy on generated CIFAR-10-C corruptions (mean of 15 × 5 severities), shifted sets when "
                "given, and FGSM/PGD adversarial examples (ε = k/255). The first row is the dense networks' own accuracy on "
                "each set (mean ± sd), the level each Δ sits on; \"at floor\" marks sets where ticket and dense are both "
                "≤ 0.5 % on every seed (the attack broke both: no verdict).",
                lambda d: tables.table5_robustness(d.pairs, d.xi)),
)


@dataclass
class ReportFiles:
    """What `write_report` wrote: the Markdown report, CSVs, PNGs, and the main table as Markdown."""

    markdown: Path
    csv: list[Path] = field(default_factory=list)
    png: list[Path] = field(default_factory=list)
    main_table: str = ""


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of `df` (index included when it is named)."""
    if any(n is not None for n in df.index.names):
        df = df.reset_index()
    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _cell(value) -> str:
    """A table cell: a missing number is blank, a whole number has no decimals (MACs, p), any other
    number two (accuracy in %); the CSV beside it keeps the full values."""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else f"{value:.2f}"
    return str(value)


def write_report(tracking_uri: str, experiment: str, out_dir, sweep: str | None = None, xi: float | None = None,
                 log_to_mlflow_run: str | None = None, questions=None, seeds=None) -> ReportFiles:
    """Build every table and plot from the finished runs and write them to `out_dir`.

    `questions`: the study's declared questions (`Question`s, a raw `questions:` mapping, or a YAML
    path); None reads them from the sweep's record when `sweep` names one. `xi`: the margin
    (points) of the raw verdicts in the paper's tables; None: the questions' common margin, else
    `DEFAULT_MARGIN`. `seeds`: only the runs of these seeds (a sensitivity analysis), None: all."""
    runs = load_runs(tracking_uri, experiment, sweep)
    runs, subset = _only_seeds(runs, seeds)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    declared = _questions(questions, tracking_uri, experiment, sweep)
    if xi is None:
        margins = {q.margin for q in declared}
        xi = margins.pop() if len(margins) == 1 else DEFAULT_MARGIN
    pairs = paired(runs, xi)
    answers = answer_all(declared, runs, pairs)
    labels = membership(answers)
    rounds = load_rounds(tracking_uri, runs)
    rounds = rounds.assign(oneshot=tables.oneshot_acc(rounds, runs))
    inputs = ReportInputs(runs, pairs, xi, labels, rounds)
    built = {t.key: t.build(inputs) for t in TABLES}
    present = sorted(runs.seed.unique())
    question_lines, question_png = _question_lines(answers, out)
    lines = [f"# Report: {sweep or experiment}", "",
             f"{len(runs)} finished runs (experiment `{experiment}`{f', sweep `{sweep}`' if sweep else ''}); "
             f"seeds {', '.join(map(str, present))}{subset}.", "",
             tables.test_set(runs), "", tables.compute(runs), "",
             f"Verdict rule: {stats.VERDICT_RULE}.", "",
             *question_lines, pareto.smallest_winner(pairs, xi, labels), ""]
    files = ReportFiles(markdown=out / "report.md", png=[question_png] if question_png else [])
    for t in TABLES:
        key, note, table = t.key, t.note, built[t.key]
        lines += [f"## {t.title}", ""]
        if table is None or not len(table):
            lines += ["No runs of this kind in this report.", ""]
            continue
        lines += [note.format(xi=xi, timing=timing.timing_note(runs)), "", markdown_table(table), ""]
        csv = out / f"{key}.csv"
        table.to_csv(csv)
        files.csv.append(csv)
        if key == "summary":
            files.main_table = markdown_table(table)
    missing = tables.missing(pairs)
    if len(missing):
        lines += ["## Tickets without a dense run", "", "Their comparisons are missing, not zero.", "",
                  markdown_table(missing), ""]
    for name, draw, source in (("delta_vs_p", figures.delta_vs_p, pairs), ("acc_vs_macs", figures.acc_vs_macs, runs),
                               ("pareto_front", figures.pareto_front, built["pareto"]),
                               ("speedup_vs_p", figures.speedup_vs_p, pairs),
                               ("latency_vs_macs", figures.latency_vs_macs, pairs),
                               ("accuracy_per_corruption", figures.accuracy_per_corruption, runs),
                               ("iterative_rounds", figures.iterative_rounds, rounds)):
        png = draw(source, out / f"{name}.png")
        if png is not None:
            files.png.append(png)
            lines += [f"![{name}]({png.name})", ""]
    files.markdown.write_text("\n".join(lines))
    if log_to_mlflow_run:
        MlflowClient(tracking_uri).log_artifacts(log_to_mlflow_run, str(out), "report")
    return files


def _only_seeds(runs: pd.DataFrame, seeds) -> tuple[pd.DataFrame, str]:
    """The runs of `seeds` (None: all) and the words the report's header adds for a subset."""
    if seeds is None:
        return runs, ""
    have = sorted(runs.seed.unique())
    missing = sorted(set(seeds) - set(have))
    if missing:
        raise LotteryError(f"--seeds: no finished run has seed {', '.join(map(str, missing))}; the runs' seeds are "
                           f"{', '.join(map(str, have))}")
    left_out = [s for s in have if s not in seeds]
    return runs[runs.seed.isin(seeds)], (f" only (asked for; left out: seed {', '.join(map(str, left_out))})"
                                         if left_out else "")


def _questions(questions, tracking_uri: str, experiment: str, sweep: str | None) -> tuple[Question, ...]:
    """The declared questions: as given, read from a path or mapping, else the sweep's record."""
    if questions is None:
        return sweep_questions(tracking_uri, experiment, sweep) if sweep else ()
    if isinstance(questions, str | Path):
        return load_questions(questions)
    if isinstance(questions, dict | list):
        return read_questions(questions)
    return tuple(questions)


def sweep_questions(tracking_uri: str, experiment: str, sweep: str) -> tuple[Question, ...]:
    """The questions a sweep declared (its parent run's `sweep.json`: sweep.questions), or ()."""
    import json
    import tempfile

    from pipelines.tracking import experiment_runs

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return ()
    parents = [r for r in experiment_runs(client, exp.experiment_id, sweep) if r.data.tags.get("sweep_parent")]
    for parent in parents:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                meta = json.loads(Path(client.download_artifacts(parent.info.run_id, "sweep.json", tmp)).read_text())
            except Exception:   # no record (a sweep from before questions): nothing declared
                continue
        raw = (meta.get("sweep") or {}).get("questions")
        if raw:
            return read_questions(raw, f"sweep {sweep}: questions")
    return ()


def _question_lines(answers, out: Path) -> tuple[list[str], Path | None]:
    """The report's first section: each declared question's answer in words and its table (also
    `questions.csv`), their intervals' figure (`questions.png`, also returned), or the line that
    says none was declared."""
    if not answers:
        return ["## Declared questions", "",
                "No questions were declared for these runs (a sweep file's `questions:` key, or `lottery report "
                "--questions FILE`): every verdict below is exploratory, unadjusted for the number of comparisons.",
                ""], None
    lines = ["## Declared questions", ""]
    frames = []
    for a in answers:
        lines += [a.prose(), ""]
        table = a.table()
        if len(table):
            lines += [markdown_table(table), ""]
            frames.append(table.assign(question=a.question.id))
    if frames:
        pd.concat(frames).to_csv(out / "questions.csv", index=False)
    intervals = [rows for rows in (a.intervals() for a in answers) if len(rows)]
    png = figures.question_intervals(pd.concat(intervals), out / "questions.png") if intervals else None
    if png is not None:
        lines += [f"![questions]({png.name})", ""]
    return lines, png


__all__ = ["ReportFiles", "load_rounds", "load_runs", "markdown_table", "paired", "sweep_questions", "write_report"]
