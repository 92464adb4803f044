"""A results folder answers its questions by rule: the report regenerated from the committed
records gives the committed question tables, and the folder's README quotes each generated answer."""
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
    fresh = pd.read_csv(tmp_path / "report" / "questions.csv", dtype=str, keep_default_na=False)
    committed = pd.read_csv(folder / "questions.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(fresh, committed)
