"""The report from runs with known metrics, logged into a temporary SQLite store.

Seeds 0, 1, 2 have dense accuracies 90, 92, 91 and every configuration's Δ is its base plus
−0.1, 0, +0.1 by seed: sd 0.1, so the 90 % interval is base ± t(0.95, 2) · 0.1/√3 = base ± 0.169
(t(0.95, 2) = 2.920). The report's margin is 0.5 points unless a test says otherwise.
"""
import math

import pandas as pd
import pytest
from helpers import logged_run
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from pipelines.comparison import COMPARISON_KEYS, compare
from pipelines.evaluation import metric_problem
from pipelines.report import write_report
from pipelines.report.runs import load_runs, paired
from pipelines.report.tables import cell

DENSE = {0: 90.0, 1: 92.0, 2: 91.0}
SPREAD = {0: -0.1, 1: 0.0, 2: 0.1}


def log(client, exp, tags, metrics, status="FINISHED"):
    return logged_run(client, exp, {"sweep": "s1", **tags}, metrics, status)


def ticket(client, exp, name, base, p=1, seeds=(0, 1, 2), **tags):
    for seed in seeds:
        delta = base + SPREAD[seed]
        log(client, exp, {"pipeline": "ticket_init", "p": str(p), "seed": str(seed), "identity": f"{name}{p}{seed}",
                          "dense_identity": f"d{seed}", "stage_counts": "1/0/0", **tags},
            {"acc": DENSE[seed] + delta, "macs": 100.0 - 10 * p, "memory_bytes": 50.0 - 5 * p, "params": 9.0,
             "mean_epoch_train_time_s": 10.0 / (1 + 0.1 * p), "emissions_kg": 2.0 - 0.2 * p, "test_images": 10000.0,
             "corruption_acc": 71.0, "corruption_acc.fog": 62.0, "adv_acc.pgd.eps8": 4.0})


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    """The runs below in one SQLite store for the module (the tests only read it)."""
    tmp_path = tmp_path_factory.mktemp("report_store")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    for seed, acc in DENSE.items():
        log(client, exp, {"pipeline": "dense", "criterion": "none", "p": "0", "seed": str(seed),
                          "identity": f"d{seed}", "dense_identity": f"d{seed}"},
            {"acc": acc, "macs": 100.0, "memory_bytes": 50.0, "params": 10.0, "mean_epoch_train_time_s": 10.0,
             "emissions_kg": 2.0, "test_images": 10000.0, "corruption_acc": 70.0, "corruption_acc.fog": 60.0,
             "adv_acc.pgd.eps8": 5.0})
    for criterion, base in (("grasp", 1.0), ("snip", -1.0)):
        for p in (1, 2):
            ticket(client, exp, criterion, base - (p - 1), p, criterion=criterion)
    ticket(client, exp, "random", -1.0, 1, criterion="random")                   # the random control ...
    ticket(client, exp, "random-b", -2.0, 1, criterion="random", draw="1")       # ... a second draw per seed
    ticket(client, exp, "inv", 0.5, 1, criterion="grasp", control="inverted")
    ticket(client, exp, "uni", 1.0, 1, seeds=(0,), criterion="uniform", control="uniform")   # one seed only
    log(client, exp, {"pipeline": "filter_ticket", "criterion": "snip", "p": "1", "seed": "0", "identity": "f0",
                      "dense_identity": "d0"}, {"acc": 89.0, "macs": 95.0, "mean_epoch_train_time_s": 9.0})
    log(client, exp, {"pipeline": "ticket_init", "criterion": "grasp", "p": "1", "seed": "7", "identity": "g7",
                      "dense_identity": "d7"}, {"acc": 50.0, "macs": 90.0, "mean_epoch_train_time_s": 9.0})
    log(client, exp, {"pipeline": "ticket_init", "criterion": "grasp", "p": "3", "seed": "0", "identity": "r",
                      "dense_identity": "d0"}, {"acc": 1.0}, status="FAILED")
    # a finished run of another sweep that sweep s1 reused: it belongs to s1's report too
    log(client, exp, {"sweep": "older", "in_sweep.s1": "true", "pipeline": "ticket_init", "criterion": "kl",
                      "p": "1", "seed": "0", "identity": "kl0", "dense_identity": "d0"}, {"acc": 90.5})
    return uri


@pytest.fixture
def store(store_uri, tmp_path):
    """(the module's store, this test's own folder for what it writes)."""
    return store_uri, tmp_path


def test_pairs_deltas_reductions_and_speedup(store):
    uri, _ = store
    runs = load_runs(uri, "e", sweep="s1")
    assert len(runs) == 3 + 12 + 3 + 3 + 3 + 1 + 1 + 1 + 1  # the FAILED run is left out, the reused one is in
    assert "kl" in set(runs.criterion)
    pairs = paired(runs)
    g = pairs[(pairs.criterion == "grasp") & (pairs.p == 2) & (pairs.seed == 2) & (pairs.control == "none")].iloc[0]
    assert g.delta_acc == pytest.approx(0.1) and g.winning == 1.0
    assert g.macs_reduction_pct == pytest.approx(20.0) and g.memory_reduction_pct == pytest.approx(20.0)
    assert g.emissions_reduction_pct == pytest.approx(20.0)
    assert g.speedup == pytest.approx(1.2) and g.ideal_speedup == pytest.approx(1.25)
    assert g["delta_corruption_acc"] == pytest.approx(1.0) and g["delta_adv_acc.pgd.eps8"] == pytest.approx(-1.0)
    orphan = pairs[pairs.seed == 7].iloc[0]
    assert orphan.dense_missing == "no finished dense run with identity d7" and pd.isna(orphan.delta_acc)


def test_report_intervals_and_verdicts(store):
    uri, tmp = store
    files = write_report(uri, "e", tmp / "report", sweep="s1")
    table2 = pd.read_csv(tmp / "report" / "table2_init.csv", index_col=0)
    assert table2.loc[1, "grasp"] == "+1.00 [+0.83, +1.17] (n=3) better"
    assert table2.loc[2, "grasp"] == "+0.00 [-0.17, +0.17] (n=3) matches"     # inside ±0.5
    assert table2.loc[2, "snip"] == "-2.00 [-2.17, -1.83] (n=3) worse"        # below −0.5
    # two draws per seed are averaged first: Δ −1.5 ± spread, n counts seeds, not runs
    assert table2.loc[1, "random"] == "-1.50 [-1.67, -1.33] (n=3) worse"
    summary = pd.read_csv(tmp / "report" / "summary.csv", keep_default_na=False)
    rows = {(r["criterion"], r["control"], r["p"]): r for r in summary.to_dict("records")
            if r["pipeline"] == "ticket_init"}
    assert rows[("grasp", "none", 1)]["verdict"] == "better" and rows[("snip", "none", 1)]["verdict"] == "worse"
    matches = rows[("grasp", "none", 2)]
    assert matches["verdict"] == "matches" and matches["90% interval"] == "[-0.17, +0.17]"
    assert matches["question"] == "exploratory" and matches["adjusted verdict"] == ""   # the sweep declared none
    assert rows[("uniform", "uniform", 1)]["verdict"] == "1 seed"
    assert rows[("grasp", "none", 1)]["seeds won"] == "3/3" and rows[("grasp", "none", 1)]["stage counts"] == "1/0/0"
    text = files.markdown.read_text()
    assert "Test set: 10000 images (the same images for every seed); binomial standard error" in text
    assert "±0.29 points" in text                      # √(0.91 · 0.09 / 10000) at the dense mean 91 %
    assert "*wins* if L > −ξ (non-inferior)" in text and "No questions were declared for these runs" in text
    assert "Tickets without a dense run" in text and "no finished dense run with identity d7" in text
    assert "filter ticket Δ" in text
    assert {p.name for p in files.png} == {"delta_vs_p.png", "acc_vs_macs.png", "pareto_front.png", "speedup_vs_p.png",
                                           "accuracy_per_corruption.png"}
    assert files.main_table.startswith("| pipeline | model |")


def test_criterion_against_its_controls_paired_by_seed(store):
    uri, tmp = store
    write_report(uri, "e", tmp / "report", sweep="s1")
    controls = pd.read_csv(tmp / "report" / "controls.csv", keep_default_na=False, dtype=str)
    rows = controls.to_dict("records")
    grasp = {r["control"]: r for r in rows if r["criterion"] == "grasp" and r["p"] == "1"}
    assert set(grasp) == {"random", "uniform", "inverted"}
    # d = 1.0 − (−1.5) on every seed (both have the same seed offsets): sd 0, an interval of zero width
    assert grasp["random"]["criterion − control"] == "+2.50" and grasp["random"]["verdict"] == "better"
    assert grasp["random"]["90% interval"] == "[+2.50, +2.50]"
    assert grasp["inverted"]["criterion − control"] == "+0.50" and grasp["inverted"]["n"] == "3"
    assert grasp["uniform"]["verdict"] == "1 seed"      # the uniform control ran one seed
    snip = {r["control"]: r for r in rows if r["criterion"] == "snip" and r["p"] == "1"}
    assert snip["random"]["criterion − control"] == "+0.50" and snip["random"]["verdict"] == "better"


def test_xi_changes_the_verdict(store):
    uri, tmp = store
    write_report(uri, "e", tmp / "r2", sweep="s1", xi=2.5)
    summary = pd.read_csv(tmp / "r2" / "summary.csv")
    snip2 = summary[(summary.pipeline == "ticket_init") & (summary.criterion == "snip") & (summary.p == 2)].iloc[0]
    assert snip2.verdict == "matches"  # interval [−2.17, −1.83] inside ±2.5
    write_report(uri, "e", tmp / "r3", sweep="s1", xi=2.1)
    summary = pd.read_csv(tmp / "r3" / "summary.csv")
    snip2 = summary[(summary.pipeline == "ticket_init") & (summary.criterion == "snip") & (summary.p == 2)].iloc[0]
    assert snip2.verdict == "inconclusive"   # L = −2.17 < −2.1 < U = −1.83: neither non-inferior nor worse


def test_empty_sweep_is_one_clear_error(store):
    uri, tmp = store
    with pytest.raises(LotteryError, match=r"sweep 'nope' of experiment 'e' has no finished runs \(no runs at all\)"):
        write_report(uri, "e", tmp / "x", sweep="nope")
    with pytest.raises(LotteryError, match="no MLflow experiment 'zzz'"):
        write_report(uri, "zzz", tmp / "x")


def test_cell_format():
    assert cell([1.0, 3.0]) == "+2.00 ± 1.41 (n=2)" and cell([]) == "—" and cell([2.0], sign=False) == "2.00 (n=1)"


def test_the_papers_table2_is_set_beside_the_same_cells_only():
    from pipelines.report import paper

    def rows(criterion, p, deltas, **other):
        base = {"pipeline": "ticket_init", "model": "resnet32", "dataset": "cifar10", "control": "none",
                "planned_stage_counts": ""}
        return [{**base, "criterion": criterion, "p": p, "seed": seed, "delta_acc": d, **other}
                for seed, d in enumerate(deltas)]

    pairs = pd.DataFrame(
        rows("grasp", 5, [-1.6, -1.5, -1.4])                  # [-1.67, -1.33]: the paper's +0.12 is above
        + rows("snip", 5, [-1.1, -1.0, -0.9])                 # [-1.17, -0.83]: the paper's -1.00 is inside
        + rows("snip", 3, [0.4])                              # one seed: no interval
        + rows("grasp", 4, [9.0, 9.0], model="resnet56")      # not the paper's cells: another model,
        + rows("grasp", 4, [9.0, 9.0], dataset="cifar100")    # another data set,
        + rows("grasp", 4, [9.0, 9.0], control="same_stage_random")   # a control,
        + rows("grasp", 4, [9.0, 9.0], planned_stage_counts="2/0/2")  # chosen per-stage counts,
        + rows("snip", 6, [9.0, 9.0]))                        # a p the paper did not report
    table = paper.table2(pairs, 0.5)
    assert table.reset_index().to_dict("records") == [
        {"criterion": "snip", "p": 3, "paper Δ": "-0.50", "Δ here": "+0.40", "90% interval": "—", "n": 1,
         "paper's value": "no interval"},
        {"criterion": "snip", "p": 5, "paper Δ": "-1.00", "Δ here": "-1.00", "90% interval": "[-1.17, -0.83]", "n": 3,
         "paper's value": "inside"},
        {"criterion": "grasp", "p": 5, "paper Δ": "+0.12", "Δ here": "-1.50", "90% interval": "[-1.67, -1.33]", "n": 3,
         "paper's value": "above"}]
    assert paper.table2(pairs[pairs.model == "resnet56"], 0.5) is None


def test_the_training_time_line_sums_the_runs_and_gives_each_kinds_median():
    from pipelines.report.tables import compute

    runs = pd.DataFrame({"pipeline": ["dense", "dense", "ticket_init", "ticket_init", "ticket_init", "filter_ticket"],
                         "wall_time_s": [2400.0, 3000.0, 1200.0, 1800.0, 1500.0, float("nan")]})
    line = compute(runs)       # 9900 s = 2.75 h; medians 2700 s and 1500 s; the run without a time left out
    assert line.startswith("Training time: 2.8 h over 5 runs, each run's epochs summed, resumes included; "
                           "a run's median 45 min (dense, 2 runs) and 25 min (tickets, 3 runs).")
    assert compute(runs.drop(columns="wall_time_s")) == "Training time not recorded by these runs."


def test_one_comparison_one_key_set_missing_quantities_left_out():
    ticket = {"acc": 80.0, "macs": 8.0, "params": 6, "mean_epoch_train_time_s": 2.0, "filters": 30, "emissions_kg": math.nan,
              "corruption_acc": 51.0, "adv_acc.pgd.eps8": 9.0}
    dense = {"acc": 81.0, "macs": 10.0, "params": 8, "mean_epoch_train_time_s": 3.0, "filters": 40, "emissions_kg": 1.0,
             "corruption_acc": 50.0, "energy_kwh": 2.0}
    out = compare(ticket, dense, xi=1.0)
    assert out == pytest.approx({"delta_acc": -1.0, "winning": 1.0, "macs_reduction_pct": 20.0,
                                 "params_reduction_pct": 25.0, "filters_reduction_pct": 25.0, "speedup": 1.5,
                                 "ideal_speedup": 1.25, "delta_corruption_acc": 1.0})
    assert set(out) <= set(COMPARISON_KEYS) | {"delta_corruption_acc"}
    assert compare(ticket, dense, xi=0.5)["winning"] == 0.0
    # the evaluation stage logs this very function's keys (and an Optuna search may ask for them)
    assert all(metric_problem(k, "ticket_init", 0) is None for k in COMPARISON_KEYS)


def test_robustness_table_states_the_dense_level_and_flags_the_floor():
    """PGD-8 broke both networks (0 % on every seed): Δ = 0 with no spread is "at floor", not "wins";
    FGSM-2, where both still classify, keeps its interval and verdict; the dense row gives the level."""
    from pipelines.report.tables import table5_robustness
    rows = []
    for seed, (dense_fgsm, ticket_fgsm) in enumerate([(20.0, 22.0), (24.0, 25.0), (22.0, 25.0)]):
        rows.append({"pipeline": "ticket_init", "control": "none", "criterion": "grasp", "p": 3, "seed": seed,
                     "dense_identity": f"d{seed}", "dense_acc": 60.0, "delta_acc": -1.0,
                     "adv_acc.pgd.eps8": 0.0, "delta_adv_acc.pgd.eps8": 0.0,
                     "adv_acc.fgsm.eps2": ticket_fgsm, "delta_adv_acc.fgsm.eps2": ticket_fgsm - dense_fgsm})
    table = table5_robustness(pd.DataFrame(rows)).reset_index()
    dense, grasp = table.iloc[0], table.iloc[1]
    assert dense.criterion == "dense (acc %)" and dense["adv fgsm eps2 Δ"] == "22.00 ± 2.00 (n=3)"
    assert dense["adv pgd eps8 Δ"] == "0.00 ± 0.00 (n=3)"
    assert grasp["adv pgd eps8 Δ"].startswith("at floor") and "wins" not in grasp["adv pgd eps8 Δ"]
    assert grasp["adv fgsm eps2 Δ"] == "+2.00 [+0.31, +3.69] (n=3) better"   # sd 1: ± 2.920/√3
