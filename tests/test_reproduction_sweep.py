"""The reproduction (docs/results) is a sweep file: tune/sweeps/reproduction.yaml expands to exactly
the runs of the committed records, identity for identity, so that `lottery sweep` over imported
records finds every run finished, and `lottery resume` finishes an interrupted one.

Nothing is read or trained: the sweep file names its data by fingerprint, and the identities hold
the machine the records were trained on (a CPU with native bf16), pinned here."""
import collections
import json
from pathlib import Path

import pytest

import lottery_core.train.precision as precision_rule
from pipelines.report.questions import load_questions
from tune.sweep_file import load_sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "tune" / "sweeps" / "reproduction.yaml"
RECORDS = ROOT / "docs" / "results" / "records"


@pytest.fixture(autouse=True)
def the_records_machine(monkeypatch):
    """A CPU with native bf16, as the records' identities say (tag precision=bf16), and no data
    folder from the environment (the sweep file's fingerprint names the data)."""
    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: True)
    monkeypatch.delenv("LOTTERY_DATA_DIR", raising=False)


def recorded() -> dict[str, dict]:
    """identity -> tags of the committed records' top-level runs (an iterative run's rounds left out)."""
    records = [json.loads(path.read_text()) for path in RECORDS.glob("*.json")]
    top = {r["tags"]["identity"]: r["tags"] for r in records if r["parent"] is None}
    assert all(r["key"] == r["tags"]["identity"] for r in records if r["parent"] is None)
    return top


def test_the_reproduction_sweep_is_exactly_the_recorded_study():
    from tune.trial import trial_config

    sweep = load_sweep(SWEEP)
    configs = [trial_config({"run": point}) for point in sweep.points]
    identities = [cfg.identity() for cfg in configs]
    runs = recorded()
    assert len(runs) == 144 and len(identities) == len(set(identities)) == 144
    assert set(identities) == set(runs)
    pipelines = collections.Counter(cfg.pipeline for cfg in configs)
    assert pipelines == {"dense": 5, "ticket_init": 110, "ticket_rewind": 12, "reinit": 6, "filter_ticket": 6,
                         "iterative": 5}
    assert [len(phase) for phase in sweep.phases()] == [126, 18]   # rewind tickets and reinit after their dense run
    assert (sweep.resources, sweep.max_concurrent) == ({"cpu": 1, "gpu": 0}, 2)
    assert all(cfg.data.test_size is None for cfg in configs)   # the whole test split, the same for every seed


def test_the_sweep_file_is_the_home_of_the_studys_questions():
    sweep = load_sweep(SWEEP)
    questions = load_questions(SWEEP)   # what `lottery report --questions tune/sweeps/reproduction.yaml` reads
    assert [q.id for q in questions] == ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "Q7"]
    assert sweep.questions == {"questions": [q.to_dict() for q in questions]}
    assert {q.margin for q in questions} == {0.5}
    assert [q.endpoint for q in questions] == ["acc"] * 5 + ["corruption_acc", "adv_acc.pgd.eps2"]   # Q6, Q7: robustness


def test_a_dry_run_lists_every_recorded_run_and_starts_nothing(tmp_path, capsys):
    from pipelines.cli import main

    assert main(["sweep", str(SWEEP), "--dry-run", "--name", "dry", "--results-dir", str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sweep dry: 144 trials (5 dense baselines first, 18 tickets after them); "
                               "1 CPU, 0 GPU per trial, at most 2 at once")
    assert {line.split()[0] for line in lines[1:]} == set(recorded())
    assert not (tmp_path / "runs").exists()


def test_questions_from_a_sweep_file_that_declares_none_are_refused_in_one_line():
    from lottery_core.errors import LotteryError

    with pytest.raises(LotteryError, match=r"^controls.yaml: this sweep file declares no questions"):
        load_questions(ROOT / "tune" / "sweeps" / "controls.yaml")
