"""The report from runs with known metrics, logged into a temporary SQLite store."""
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from lottery_core.errors import LotteryError
from pipelines.report import write_report
from pipelines.report.runs import load_runs, paired
from pipelines.report.tables import cell


def log(client, exp, tags, metrics, status="FINISHED"):
    run = client.create_run(exp, tags={"sweep": "s1", "model": "resnet32", "rewind_epoch": "0", **tags})
    for k, v in metrics.items():
        client.log_metric(run.info.run_id, k, v)
    client.set_terminated(run.info.run_id, status)


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    for seed, acc in ((0, 90.0), (1, 92.0)):
        log(client, exp, {"pipeline": "dense", "criterion": "none", "p": "0", "seed": str(seed),
                          "identity": f"d{seed}", "dense_identity": f"d{seed}"},
            {"acc": acc, "macs": 100.0, "memory_bytes": 50.0, "params": 10.0, "epoch_time_s": 10.0,
             "emissions_kg": 2.0, "corruption_acc": 70.0, "corruption_acc.fog": 60.0, "adv_acc.pgd.eps8": 5.0})
    for criterion, base in (("grasp", 1.0), ("snip", -1.0)):
        for p in (1, 2):
            for seed, dense_acc in ((0, 90.0), (1, 92.0)):
                delta = base + (0.5 if seed else -0.5) - (p - 1)
                log(client, exp, {"pipeline": "ticket_init", "criterion": criterion, "p": str(p), "seed": str(seed),
                                  "identity": f"{criterion}{p}{seed}", "dense_identity": f"d{seed}"},
                    {"acc": dense_acc + delta, "macs": 100.0 - 10 * p, "memory_bytes": 50.0 - 5 * p, "params": 9.0,
                     "epoch_time_s": 10.0 / (1 + 0.1 * p), "emissions_kg": 2.0 - 0.2 * p,
                     "corruption_acc": 71.0, "corruption_acc.fog": 62.0, "adv_acc.pgd.eps8": 4.0})
    log(client, exp, {"pipeline": "filter_ticket", "criterion": "snip", "p": "1", "seed": "0", "identity": "f0",
                      "dense_identity": "d0"}, {"acc": 89.0, "macs": 95.0, "epoch_time_s": 9.0})
    log(client, exp, {"pipeline": "ticket_init", "criterion": "grasp", "p": "1", "seed": "7", "identity": "g7",
                      "dense_identity": "d7"}, {"acc": 50.0, "macs": 90.0, "epoch_time_s": 9.0})
    log(client, exp, {"pipeline": "ticket_init", "criterion": "grasp", "p": "3", "seed": "0", "identity": "r",
                      "dense_identity": "d0"}, {"acc": 1.0}, status="FAILED")
    return uri, tmp_path


def test_pairs_deltas_reductions_and_speedup(store):
    uri, _ = store
    runs = load_runs(uri, "e", sweep="s1")
    assert len(runs) == 2 + 8 + 1 + 1  # the FAILED run is left out
    pairs = paired(runs)
    g = pairs[(pairs.criterion == "grasp") & (pairs.p == 2) & (pairs.seed == 1)].iloc[0]
    assert g.delta_acc == pytest.approx(0.5) and g.wins == 1.0
    assert g.macs_reduction_pct == pytest.approx(20.0) and g.memory_reduction_pct == pytest.approx(20.0)
    assert g.emissions_reduction_pct == pytest.approx(20.0)
    assert g.speedup == pytest.approx(1.2) and g.ideal_speedup == pytest.approx(1.25)
    assert g["delta_corruption_acc"] == pytest.approx(1.0) and g["delta_adv_acc.pgd.eps8"] == pytest.approx(-1.0)
    orphan = pairs[pairs.seed == 7].iloc[0]
    assert orphan.dense_missing == "no finished dense run with identity d7" and pd.isna(orphan.delta_acc)


def test_report_tables_verdicts_and_files(store):
    uri, tmp = store
    files = write_report(uri, "e", tmp / "report", sweep="s1")
    table2 = pd.read_csv(tmp / "report" / "table2_init.csv", index_col=0)
    assert table2.loc[1, "grasp"] == "+1.00 ± 0.71 (n=2)"   # deltas 0.5 and 1.5
    assert table2.loc[2, "snip"] == "-2.00 ± 0.71 (n=2)"
    summary = pd.read_csv(tmp / "report" / "summary.csv")
    verdicts = {(r.criterion, r.p): r.verdict for r in summary.itertuples() if r.pipeline == "ticket_init"}
    assert verdicts[("grasp", 1)] == "wins" and verdicts[("snip", 1)] == "loses" and verdicts[("grasp", 2)] == "wins"
    tickets = summary[summary.pipeline == "ticket_init"].set_index(["criterion", "p"])
    assert tickets.loc[("snip", 1), "seeds won"] == "0/2"   # Δ = -1.5 and -0.5
    assert tickets.loc[("grasp", 1), "seeds won"] == "2/2"  # seed 7 has no dense run: not counted
    text = files.markdown.read_text()
    assert "Tickets without a dense run" in text and "no finished dense run with identity d7" in text
    assert "filter ticket Δ" in text and "Verdict rule: a configuration wins when its mean Δ" in text
    assert {p.name for p in files.png} == {"delta_vs_p.png", "acc_vs_macs.png", "speedup_vs_p.png",
                                           "accuracy_per_corruption.png"}
    assert files.main_table.startswith("| pipeline | model |")


def test_xi_changes_the_verdict(store):
    uri, tmp = store
    write_report(uri, "e", tmp / "r2", sweep="s1", xi=2.5)
    summary = pd.read_csv(tmp / "r2" / "summary.csv")
    snip2 = summary[(summary.pipeline == "ticket_init") & (summary.criterion == "snip") & (summary.p == 2)].iloc[0]
    assert snip2.verdict == "wins"  # mean Δ = -2.0, + 2.5 >= 0


def test_empty_sweep_is_one_clear_error(store):
    uri, tmp = store
    with pytest.raises(LotteryError, match=r"sweep 'nope' of experiment 'e' has no finished runs \(no runs at all\)"):
        write_report(uri, "e", tmp / "x", sweep="nope")
    with pytest.raises(LotteryError, match="no MLflow experiment 'zzz'"):
        write_report(uri, "zzz", tmp / "x")


def test_cell_format():
    assert cell([1.0, 3.0]) == "+2.00 ± 1.41 (n=2)" and cell([]) == "—" and cell([2.0], sign=False) == "2.00 (n=1)"
