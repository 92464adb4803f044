"""A results folder answers its questions by rule: the report regenerated from the committed
records gives the committed question table, paper comparison and speed-ups, and the folder's README quotes
each generated answer."""
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipelines.records import import_records
from pipelines.report import write_report

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Study:
    """A results folder: its experiment, the record folders it was reported from, its sweep file
    (the declared questions) and how many answers its report gives."""

    folder: str
    experiment: str
    records: tuple[str, ...]
    sweep: str
    answers: int


STUDIES = [
    # the 5,000-image reproduction: 169 records, about a minute to import
    Study("docs/results", "reproduction", ("records",), "tune/sweeps/reproduction.yaml", 7),
    # all of CIFAR-10: records/pilot, exported before the timing pass, and records/study, which holds
    # the pilot's 15 runs again with that pass's metrics (their import completes them)
    Study("docs/results/full-cifar10", "full-cifar10", ("records/pilot", "records/study"),
          "tune/sweeps/full_cifar10.yaml", 5),
]


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.experiment)
def test_the_results_readme_quotes_the_answers_the_report_generates(study, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    folder = ROOT / study.folder
    for part in study.records:
        import_records(folder / part, uri, experiment=study.experiment)
    files = write_report(uri, study.experiment, tmp_path / "report", questions=ROOT / study.sweep)
    answers = [line for line in files.markdown.read_text().splitlines() if line.startswith(("**Q", "**S"))]
    assert len(answers) == study.answers
    readme = (folder / "README.md").read_text()
    for answer in answers:
        assert answer in readme, f"{study.folder}/README.md does not quote the generated answer: {answer[:80]}"
    for table in ("questions.csv", "paper_table2.csv", "speedups_by_size.csv"):
        fresh = pd.read_csv(tmp_path / "report" / table, dtype=str, keep_default_na=False)
        committed = pd.read_csv(folder / table, dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(fresh, committed, obj=f"{study.folder}/{table}")


def test_the_readme_headline_table_is_the_committed_question_table():
    """The README's headline rows (question, comparison, Δ [interval], verdict) are rows of the
    full CIFAR-10 study's generated questions.csv, with its adjusted verdict, not a retelling."""
    committed = pd.read_csv(ROOT / "docs/results/full-cifar10/questions.csv", dtype=str, keep_default_na=False)
    generated = {(r["question"], r["comparison"], f'{r["mean"]} {r["90% interval"]}', r["adjusted verdict"])
                 for _, r in committed.iterrows()}
    section = (ROOT / "README.md").read_text().split("## Result\n", 1)[1].split("\n## ", 1)[0]
    rows = [tuple(cell.strip() for cell in line.strip("|").split("|"))
            for line in section.splitlines() if line.startswith("| Q") or line.startswith("| S")]
    assert rows, "README.md's ## Result section has no question rows"
    for row in rows:
        assert row in generated, f"README.md's headline row {row} is not in the committed questions.csv"
