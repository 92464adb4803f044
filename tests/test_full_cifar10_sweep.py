"""The full CIFAR-10 study (docs/results/full-cifar10) is a sweep file, tune/sweeps/full_cifar10.yaml,
declared before its main runs: its grid holds the pilot's 15 runs identity for identity (so that
`lottery sweep` over the imported pilot records trains them never again), it runs seed-major, and
it refuses a machine without native bf16 instead of training fp32 runs under other identities.

Nothing is read or trained: the sweep file names its data by fingerprint."""
import collections
import json
from pathlib import Path

import pytest

import lottery_core.train.precision as precision_rule
from lottery_core.errors import LotteryError
from pipelines.report.questions import load_questions
from tune.sweep_file import load_sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "tune" / "sweeps" / "full_cifar10.yaml"
PILOT = ROOT / "docs" / "results" / "full-cifar10" / "records" / "pilot"
SEEDS = list(range(6))


@pytest.fixture
def bf16_machine(monkeypatch):
    """A CPU with native bf16, as the study requires, and no data folder from the environment."""
    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: True)
    monkeypatch.delenv("LOTTERY_DATA_DIR", raising=False)


def test_the_study_holds_the_pilots_runs_and_runs_seed_major(bf16_machine):
    sweep = load_sweep(SWEEP)
    points = sweep.points
    identities = [p.identity() for p in points]
    assert len(identities) == len(set(identities))
    pilot = {json.loads(path.read_text())["key"] for path in PILOT.glob("*.json")}
    assert len(pilot) == 15 and pilot <= set(identities)     # the pilot's runs are seeds 0-2 at draw 0
    n = len(SEEDS)
    arms = collections.Counter((p.pipeline, p.pruning.control, p.pruning.p) for p in points)
    assert arms == {("dense", "none", 1): n,                    # (a) dense ...
                    ("ticket_init", "none", 5): 2 * n,          # ... GraSP and SNIP ...
                    ("ticket_init", "same_stage_random", 5): 4 * n,   # ... 2 draws each
                    ("ticket_init", "inverted", 5): 2 * n, ("ticket_init", "uniform", 5): n,   # (b)
                    ("ticket_init", "none", 3): 2 * n}          # (c)
    assert all(p.pipeline == "dense" for p in points[:n])        # the dense baselines start first
    primary = [p for p in points[n:] if p.pruning.p == 5 and p.pruning.control in ("none", "same_stage_random")]
    assert [p.seed for p in primary] == [s for s in SEEDS for _ in range(6)]   # then seed-major
    assert points[n:n + len(primary)] == primary                 # (a) before (b) and (c)
    assert {(p.training.require_precision, p.training.epochs, p.data.test_size) for p in points} == {("bf16", 10, None)}


def test_the_declared_questions_are_the_studys(bf16_machine):
    questions = load_questions(SWEEP)
    assert [q.id for q in questions] == ["Q1", "Q2", "S1", "S2", "S3"]
    assert {q.margin for q in questions} == {0.5} and {q.endpoint for q in questions} == {"acc"}


def test_a_machine_without_bf16_is_refused_in_one_line(cpu_without_bf16):
    with pytest.raises(LotteryError) as caught:
        load_sweep(SWEEP)
    text = str(caught.value)
    assert "training.require_precision=bf16, but this run would compute in fp32" in text
    assert text.count("require_precision=bf16") == 1 and "\n" not in text
