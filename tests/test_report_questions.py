"""Declared questions: validation, families with Holm's adjustment, exploratory labels, prose by rule.

Runs with known accuracies in a temporary SQLite store. Dense seeds 0, 1, 2 are at 90, 92, 91 %;
every ticket configuration's Δ is its base plus −0.1, 0, +0.1 by seed (sd 0.1), so its 90 %
interval is base ± t(0.95, 2) · 0.1/√3 = base ± 0.169 points.
"""
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import logged_run
from mlflow.tracking import MlflowClient
from scipy import stats as scipy_stats

from lottery_core.errors import LotteryError
from pipelines.cli import main
from pipelines.report import write_report
from pipelines.report.questions import answer, read_questions
from pipelines.report.runs import load_runs, paired

DENSE = {0: 90.0, 1: 92.0, 2: 91.0}
SPREAD = {0: -0.1, 1: 0.0, 2: 0.1}
QUESTIONS = {"margin": 0.5, "questions": [
    {"id": "Q1", "ask": "Do GraSP tickets win?", "compare": "ticket_vs_dense",
     "select": {"pipeline": "ticket_init", "control": "none", "criterion": "grasp"}},
    {"id": "Q2", "ask": "Does GraSP beat random blocks?", "compare": "criterion_vs_control",
     "select": {"criterion": "grasp"}, "controls": ["random"]},
]}


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("questions_store")
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=(tmp / "a").as_uri())
    for seed, acc in DENSE.items():
        logged_run(client, exp, {"pipeline": "dense", "criterion": "none", "p": "0", "seed": str(seed),
                           "identity": f"d{seed}", "dense_identity": f"d{seed}"}, {"acc": acc, "macs": 100.0})
    # grasp p=1: +1 (better); p=2: 0 (matches); p=3: −2 (worse); snip p=1: −0.3 (outside Q1: exploratory)
    for criterion, p, base in (("grasp", 1, 1.0), ("grasp", 2, 0.0), ("grasp", 3, -2.0), ("snip", 1, -0.3),
                               ("random", 1, -1.0)):
        for seed in DENSE:
            logged_run(client, exp, {"pipeline": "ticket_init", "criterion": criterion, "p": str(p), "seed": str(seed),
                               "identity": f"{criterion}{p}{seed}", "dense_identity": f"d{seed}"},
                 {"acc": DENSE[seed] + base + SPREAD[seed], "macs": 100.0 - 10 * p})
    return uri


def test_a_family_gets_verdicts_holm_and_prose_from_the_rule(uri):
    runs = load_runs(uri, "e")
    q1 = read_questions(QUESTIONS)[0]
    a = answer(q1, runs, paired(runs, 0.5))
    table = a.table()
    assert list(table.comparison) == ["ticket_init grasp p=1 − dense", "ticket_init grasp p=2 − dense",
                                      "ticket_init grasp p=3 − dense"]
    assert list(table.verdict) == ["better", "matches", "worse"]
    assert list(table["90% interval"]) == ["[+0.83, +1.17]", "[-0.17, +0.17]", "[-2.17, -1.83]"]
    assert a.m == 3
    assert a.adjusted_verdicts() == ["better", "matches", "worse"]   # far past every bound: Holm keeps them
    # the tickets' seed offsets s = −0.1, 0, +0.1 are what the additive fit cannot explain: doubly
    # centred, they leave −0.75 s on the dense row and +0.25 s on each ticket row, SS = 0.02 · 0.75
    # on (4 − 1)(3 − 1) = 6 df, residual SD √0.0025 = 0.05 points
    assert (a.residual_sd, a.residual_df) == (pytest.approx(0.05), 6)
    prose = a.prose()
    assert prose.startswith("**Q1. Do GraSP tickets win?** (3 comparison(s) of ticket − dense, endpoint `acc`, "
                            "margin ξ = 0.5 points, Holm over the 3 with an interval): 1 better, 1 matches, 1 worse.")
    assert "Decided after adjustment: ticket_init grasp p=1 − dense better (+1.00 [+0.83, +1.17]" in prose


def test_the_report_opens_with_the_questions_and_labels_the_rest_exploratory(uri, tmp_path):
    files = write_report(uri, "e", tmp_path / "r", questions=QUESTIONS)
    text = files.markdown.read_text()
    assert text.index("## Declared questions") < text.index("## Summary")
    assert "**Q2. Does GraSP beat random blocks?** (1 comparison(s) of criterion − control" in text
    summary = pd.read_csv(tmp_path / "r" / "summary.csv", keep_default_na=False, dtype=str)
    rows = {(r["criterion"], r["p"]): r for r in summary.to_dict("records") if r["pipeline"] == "ticket_init"}
    assert (rows[("grasp", "1")]["question"], rows[("grasp", "1")]["adjusted verdict"]) == ("Q1", "better")
    assert rows[("snip", "1")]["question"] == "exploratory" and rows[("snip", "1")]["verdict"] == "matches"
    controls = pd.read_csv(tmp_path / "r" / "controls.csv", keep_default_na=False, dtype=str)
    grasp = controls[(controls.criterion == "grasp") & (controls.p == "1")].iloc[0]
    assert (grasp["criterion − control"], grasp["verdict"], grasp["question"]) == ("+2.00", "better", "Q2")
    assert set(pd.read_csv(tmp_path / "r" / "questions.csv").question) == {"Q1", "Q2"}


def test_the_questions_figure_draws_each_interval_with_its_adjusted_verdict(uri, tmp_path):
    runs = load_runs(uri, "e")
    q1 = read_questions(QUESTIONS)[0]
    rows = answer(q1, runs, paired(runs, 0.5)).intervals()
    assert list(rows.comparison) == ["ticket_init grasp p=1 − dense", "ticket_init grasp p=2 − dense",
                                     "ticket_init grasp p=3 − dense"]
    assert list(rows["adjusted verdict"]) == ["better", "matches", "worse"]
    assert rows[["mean", "low", "high"]].round(2).values.tolist() == [[1.0, 0.83, 1.17], [0.0, -0.17, 0.17],
                                                                      [-2.0, -2.17, -1.83]]
    assert set(rows.question) == {"Q1"} and set(rows.margin) == {0.5} and set(rows.n) == {3}
    files = write_report(uri, "e", tmp_path / "r", questions=QUESTIONS)
    assert tmp_path / "r" / "questions.png" in files.png
    text = files.markdown.read_text()
    assert text.index("![questions](questions.png)") < text.index("## Summary")
    assert not (tmp_path / "n").exists()
    write_report(uri, "e", tmp_path / "n", questions=())
    assert not (tmp_path / "n" / "questions.png").exists()     # nothing declared: no figure


def test_a_report_of_some_seeds_uses_only_theirs_and_says_so(uri, tmp_path):
    """Seeds 1 and 2 alone: GraSP p=1 − dense is +1 + s = +1.0 and +1.1 (mean +1.05), n = 2."""
    files = write_report(uri, "e", tmp_path / "r", questions=QUESTIONS, seeds=[1, 2])
    text = files.markdown.read_text()
    assert "seeds 1, 2 only (asked for; left out: seed 0)." in text
    q1 = pd.read_csv(tmp_path / "r" / "questions.csv", dtype=str).query("question == 'Q1'").iloc[0]
    assert (q1["comparison"], q1["n"], q1["mean"]) == ("ticket_init grasp p=1 − dense", "2", "+1.05")
    with pytest.raises(LotteryError, match=r"^--seeds: no finished run has seed 7; the runs' seeds are 0, 1, 2$"):
        write_report(uri, "e", tmp_path / "x", questions=QUESTIONS, seeds=[1, 7])
    assert not (tmp_path / "x").exists()                        # refused before anything is written


def test_lottery_report_refuses_seeds_it_cannot_use_in_one_line(uri, tmp_path, capsys):
    results = uri.removeprefix("sqlite:///").removesuffix("/mlflow.db")
    assert _exit_code(["report", "--seeds", "3", "x"]) == 2
    assert _exit_code(["report", "--experiment", "e", "--results-dir", results, "--seeds", "9",
                       "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--seeds: invalid int value: 'x'" in err[0]
    assert err[1] == "lottery report: error: --seeds: no finished run has seed 9; the runs' seeds are 0, 1, 2"


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def test_a_raw_decision_that_does_not_survive_holm_is_called_exploratory():
    """One comparison at p = 0.008 among 17 (the docs/results iterative case): raw 'better', Holm
    p = 0.14, so the prose lists it as exploratory and counts it inconclusive."""
    from pipelines.report import stats
    from pipelines.report.questions import Answer, Comparison

    q = read_questions({"questions": [{"id": "Q2", "ask": "Does the choice matter?",
                                       "compare": "criterion_vs_control", "controls": ["random"]}]})[0]
    diffs = [[0.3, 1.8, 0.8, 1.6, 0.95]] + [[1.0, -1.0, 0.2, -0.4, 0.3]] * 16
    comparisons = [Comparison({"comparison": f"c{i}"}, pd.Series(d), pd.DataFrame(columns=["config", "seed", "value"]))
                   for i, d in enumerate(diffs)]
    estimates = [stats.estimate(d, "difference", 0.5) for d in diffs]
    a = Answer(q, comparisons, estimates, stats.adjust(estimates))
    assert estimates[0].verdict == "better" and a.adjusted_verdicts()[0] == "inconclusive"
    prose = a.prose()
    assert ": 17 inconclusive." in prose
    assert "Decided only before adjustment, so exploratory: c0 better unadjusted (+1.09 [+0.51, +1.67], p 0.008)" in prose
    assert "too few seeds or configurations for a planning SD" in prose
    # what the 17 inconclusive comparisons exclude: bounds one-sided at α/17 (Bonferroni), the lowest
    # lower (a c1..c16 difference) and the highest upper (c0), each d̄ ∓ t(1 − α/17, 4)·s/√5
    t = scipy_stats.t.ppf(1 - 0.05 / 17, 4)
    low = np.mean(diffs[1]) - t * np.std(diffs[1], ddof=1) / np.sqrt(5)
    high = np.mean(diffs[0]) + t * np.std(diffs[0], ddof=1) / np.sqrt(5)
    assert f"Together they exclude a difference below {low:+.2f} or above {high:+.2f} points (each bound " \
           "one-sided at α/m = 0.0029, Bonferroni: all bounds of the question hold at once with at least 90 % " \
           "confidence)." in prose
    assert (round(low, 2), round(high, 2)) == (-1.79, 2.55)     # t(1 − 0.0029, 4) = 5.35; se 0.338 and 0.273


def test_comparisons_of_one_seed_are_counted_without_a_verdict():
    """A question whose budget reached one seed (docs/results/full-cifar10's S3): no interval, no
    verdict, nothing decided and nothing excluded, said so in the tally."""
    from pipelines.report import stats
    from pipelines.report.questions import Answer, Comparison

    q = read_questions({"questions": [{"id": "S3", "ask": "Do p = 3 tickets win?", "compare": "ticket_vs_dense"}]})[0]
    diffs = [[-0.61], [-0.35]]
    comparisons = [Comparison({"comparison": f"c{i}"}, pd.Series(d), pd.DataFrame(columns=["config", "seed", "value"]))
                   for i, d in enumerate(diffs)]
    estimates = [stats.estimate(d, "vs_dense", 0.5) for d in diffs]
    a = Answer(q, comparisons, estimates, stats.adjust(estimates))
    assert a.adjusted_verdicts() == ["1 seed", "1 seed"]
    assert a.prose().endswith("Holm over the 0 with an interval): 2 with 1 seed (no interval, no verdict).")


def test_no_questions_means_every_verdict_is_exploratory(uri, tmp_path):
    text = write_report(uri, "e", tmp_path / "r", questions=()).markdown.read_text()
    assert "No questions were declared for these runs" in text
    assert "Smallest winning ticket: not named" in text


@pytest.mark.parametrize(("raw", "message"), [
    ({"questions": []}, "questions.questions: a non-empty list of questions"),
    ({"margin": -1, "questions": [{}]}, "questions.margin: a margin ξ in accuracy points, a number ≥ 0, got -1"),
    ({"questions": [{"id": "Q", "ask": "a?", "compare": "ticket_vs_hype"}]},
     "questions.questions[0].compare: 'ticket_vs_hype' is not a comparison; allowed: ticket_vs_dense"),
    ({"questions": [{"id": "Q", "ask": "a?", "compare": ["ticket_vs_dense", "filter_vs_block"]}]},
     "are tested differently"),
    ({"questions": [{"id": "Q", "ask": "a?", "compare": "ticket_vs_dense", "endpoint": "epoch_test_acc"}]},
     "'epoch_test_acc' is not a final accuracy"),
    ({"questions": [{"id": "Q", "ask": "a?", "compare": "criterion_vs_control"}]},
     "criterion_vs_control needs the controls"),
    ({"questions": [{"id": "Q", "ask": "a?", "compare": "ticket_vs_dense", "select": {"seed": 1}}]},
     "select: unknown column 'seed'"),
    ({"questions": [{"id": "Q", "ask": "a?", "compare": "ticket_vs_dense"},
                    {"id": "Q", "ask": "b?", "compare": "ticket_vs_dense"}]}, "'Q' is declared twice"),
    ({"questions": [{"id": "Q", "ask": "a?", "compare": "ticket_vs_dense", "why": 1}]}, "unknown key 'why'"),
])
def test_bad_declarations_are_one_line(raw, message):
    with pytest.raises(LotteryError, match=None) as err:
        read_questions(raw)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_lottery_report_refuses_a_bad_questions_file_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "q.yaml"
    bad.write_text(yaml.safe_dump({"questions": [{"id": "Q", "ask": "a?", "compare": "vibes"}]}))
    code = main(["report", "--questions", str(bad), "--results-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("lottery report: error: q.yaml.questions[0].compare: 'vibes' is not a comparison")


def test_a_sweep_file_declares_its_questions(tmp_path):
    from tune.sweep_file import Sweep, load_sweep

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"base": {"model": {"name": "resnet20"}},
                                    "grid": [{"pipeline": "ticket_init", "pruning.criterion": "grasp"}],
                                    "questions": QUESTIONS}))
    sweep = load_sweep(path)
    assert [q["id"] for q in sweep.questions["questions"]] == ["Q1", "Q2"]
    assert Sweep.from_dict(sweep.to_dict()).questions == sweep.questions
    assert read_questions(sweep.questions)[1].controls == ("random",)
    path.write_text(yaml.safe_dump({"base": {}, "grid": [{"pipeline": "dense"}],
                                    "questions": {"questions": [{"id": "Q"}]}}))
    with pytest.raises(LotteryError, match=r"s.yaml: questions.questions\[0\].ask: required"):
        load_sweep(path)


def test_the_criterion_is_placed_among_random_draws_of_its_shape(tmp_path):
    """Q2 of the full-CIFAR-10 study: GraSP against four same_stage_random draws per seed. Seed 0's
    GraSP beats all four draws (100 %), seed 1's two of four (50 %), seed 2's none (0 %): mean 50 %,
    90 % interval 50 ± t(0.95, 2) · 50/√3 = 50 ± 84.3, clipped to [0, 100]. With one draw a seed
    there is no distribution to place it in, only the paired comparison."""
    from pipelines.report import stats
    from pipelines.report.questions import among_draws

    assert stats.percentile_among(80.0, [70.0, 75.0, 85.0, 90.0]) == 50.0
    assert stats.percentile_among(2.0, [1.0, 2.0, 3.0]) == 50.0           # a tie counts half
    assert stats.percentile_interval([50.0]) == pytest.approx((50.0, float("nan"), float("nan")), nan_ok=True)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    grasp = {0: 80.0, 1: 80.0, 2: 80.0}
    draws = {0: [70.0, 71.0, 72.0, 73.0], 1: [70.0, 75.0, 85.0, 90.0], 2: [81.0, 82.0, 83.0, 84.0]}
    for seed in grasp:
        logged_run(client, exp, {"pipeline": "dense", "criterion": "none", "p": "0", "seed": str(seed),
                                 "identity": f"d{seed}", "dense_identity": f"d{seed}"}, {"acc": 90.0})
        logged_run(client, exp, {"pipeline": "ticket_init", "criterion": "grasp", "p": "5", "seed": str(seed),
                                 "identity": f"g{seed}", "dense_identity": f"d{seed}"}, {"acc": grasp[seed]})
        for draw, acc in enumerate(draws[seed]):
            logged_run(client, exp, {"pipeline": "ticket_init", "criterion": "grasp", "p": "5", "seed": str(seed),
                                     "control": "same_stage_random", "draw": str(draw),
                                     "identity": f"r{seed}{draw}", "dense_identity": f"d{seed}"}, {"acc": acc})
    q = read_questions({"questions": [{"id": "Q2", "ask": "Does GraSP beat random blocks of its shape?",
                                       "compare": "criterion_vs_control", "controls": ["same_stage_random"]}]})[0]
    runs = load_runs(uri, "e")
    table = answer(q, runs, paired(runs, 0.5)).table()
    assert table["percentile among draws"].tolist() == ["50 [0, 100] % (3 seeds × 4 draws)"]
    assert table["n"].tolist() == [3]     # the paired comparison is against each seed's mean draw
    one_draw = runs[(runs.control != "same_stage_random") | (runs.draw.astype(str) == "0")]
    assert among_draws(one_draw[one_draw.control == "none"], one_draw[one_draw.control == "same_stage_random"],
                       "acc") == {}


def test_two_criteria_are_compared_seed_by_seed(tmp_path):
    """GraSP − SNIP at p = 5 (the full-CIFAR-10 study's secondary question): per-seed differences
    0.1, 0.2, 0.3 points, so Δ = +0.2 with the 90 % interval 0.2 ± t(0.95, 2) · 0.1/√3 = [+0.03, +0.37]:
    L > 0, GraSP is better. A criterion at another p is not paired with them."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    accs = {("grasp", 5): [91.0, 91.2, 91.4], ("snip", 5): [90.9, 91.0, 91.1], ("snip", 3): [95.0, 95.0, 95.0]}
    for seed in range(3):
        logged_run(client, exp, {"pipeline": "dense", "criterion": "none", "p": "0", "seed": str(seed),
                                 "identity": f"d{seed}", "dense_identity": f"d{seed}"}, {"acc": 92.0})
        for (criterion, p), acc in accs.items():
            logged_run(client, exp, {"pipeline": "ticket_init", "criterion": criterion, "p": str(p), "seed": str(seed),
                                     "identity": f"{criterion}{p}{seed}", "dense_identity": f"d{seed}"},
                       {"acc": acc[seed]})
    q = read_questions({"questions": [{"id": "S4", "ask": "GraSP or SNIP?", "compare": "criterion_vs_criterion",
                                       "select": {"criterion": ["grasp", "snip"]}}]})[0]
    runs = load_runs(uri, "e")
    table = answer(q, runs, paired(runs, 0.5)).table()
    assert table.comparison.tolist() == ["ticket_init grasp p=5 − ticket_init snip p=5"]
    assert table["90% interval"].tolist() == ["[+0.03, +0.37]"]
    assert table.verdict.tolist() == ["better"]
