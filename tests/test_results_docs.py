"""docs/results answers its questions by rule: the report regenerated from the committed records
gives the committed question tables, and the results README quotes each generated answer."""
from pathlib import Path

import pandas as pd
import pytest

from pipelines.records import import_records
from pipelines.report import write_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


@pytest.mark.slow   # imports the 169 committed records (about a minute)
def test_the_results_readme_quotes_the_answers_the_report_generates(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    import_records(RESULTS / "records", uri)
    study = ROOT / "tune" / "sweeps" / "reproduction.yaml"     # the study's sweep file: its questions
    files = write_report(uri, "reproduction", tmp_path / "report", questions=study)
    answers = [line for line in files.markdown.read_text().splitlines() if line.startswith("**Q")]
    assert len(answers) == 7
    readme = (RESULTS / "README.md").read_text()
    for answer in answers:
        assert answer in readme, f"docs/results/README.md does not quote the generated answer: {answer[:80]}"
    fresh = pd.read_csv(tmp_path / "report" / "questions.csv", dtype=str, keep_default_na=False)
    committed = pd.read_csv(RESULTS / "questions.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(fresh, committed)
