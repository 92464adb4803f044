"""The table `lottery sweep` prints at the end: the report's summary, only the columns that have a
value in some row, no wider than a 100-column terminal, the verdict in words."""
import pandas as pd

from pipelines.report import tables
from pipelines.report.console import read_summary, terminal_table


def demo_like(seeds=(0,)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs and pairs as `pipelines.report.runs` gives them: a dense ResNet20 and the demo's tickets."""
    dense = [{"pipeline": "dense", "model": "resnet20", "criterion": "none", "control": "none", "reinit_of": "",
              "p": 0, "planned_stage_counts": "", "rewind_epoch": 0, "iterative": "", "seed": s, "acc": 42.0 + s,
              "identity": f"d{s}", "dense_identity": f"d{s}"} for s in seeds]
    tickets = []
    for pipeline, criterion, p, delta in [("filter_ticket", "snip", 1, -2.0), ("ticket_init", "grasp", 1, 1.5),
                                          ("ticket_init", "snip", 2, -0.5), ("ticket_init", "random", 2, -1.0)]:
        for s in seeds:
            tickets.append({**dense[0], "pipeline": pipeline, "criterion": criterion, "p": p, "seed": s,
                            "acc": 42.0 + s + delta + 0.1 * s, "identity": f"{criterion}{p}{s}",
                            "dense_identity": f"d{s}", "dense_missing": "", "dense_acc": 42.0 + s,
                            "delta_acc": delta + 0.1 * s, "winning": float(delta >= 0),
                            "macs_reduction_pct": 11.1 * p, "speedup": 1.0 + 0.1 * p,
                            "stage_counts": "1,0,0" if p == 1 else "1,1,0"})
    return pd.DataFrame(dense + tickets), pd.DataFrame(tickets)


def test_one_seed_shows_only_the_columns_with_a_value_and_says_there_is_no_verdict():
    runs, pairs = demo_like()
    summary = tables.summary(runs, pairs)
    text = terminal_table(summary, width=100)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    header = [h.strip() for h in lines[rule - 1].split("  ") if h.strip()]
    # no run has a control, a rewind point, rounds, an interval or a power figure: those columns go
    for gone in ("control", "rewind", "rounds", "90% interval", "adjusted verdict"):
        assert gone not in header
    for kept in ("pipeline", "criterion", "p", "acc %", "Δ", "verdict", "MACs −%"):
        assert kept in header
    body = lines[rule + 1:]
    assert len(body) == 5
    assert body[0].startswith("dense") and "reference (dense)" in body[0]
    assert all("1 seed: no verdict" in line for line in body[1:])
    assert "(n=1)" not in text               # the n column says it once per row


def test_several_seeds_give_intervals_and_verdicts_in_words():
    runs, pairs = demo_like(seeds=(0, 1, 2))
    text = terminal_table(tables.summary(runs, pairs, 0.5), width=100)
    assert max(map(len, text.splitlines())) <= 100
    assert "better" in text and "worse" in text and "1 seed" not in text
    assert "±" in text                       # acc %: mean ± sd over the seeds


def test_a_table_too_wide_says_what_it_left_out():
    runs, pairs = demo_like(seeds=(0, 1, 2))
    summary = tables.summary(runs, pairs)
    wide = terminal_table(summary, width=200)
    narrow = terminal_table(summary, width=70)
    assert max(map(len, wide.splitlines())) <= 200 and "not shown" not in wide
    assert max(map(len, narrow.splitlines())) <= 70
    assert "every row: model = resnet20, n = 3" in narrow and "not shown here (see report.md):" in narrow
    assert "verdict" in narrow.splitlines()[-7] and "acc %" in narrow   # the key columns stay longest


def test_the_summary_csv_of_a_report_reads_back_as_text(tmp_path):
    runs, pairs = demo_like()
    summary = tables.summary(runs, pairs)
    summary.to_csv(tmp_path / "summary.csv")          # as write_report writes it
    back = read_summary(tmp_path)
    assert terminal_table(back) == terminal_table(summary)
    assert read_summary(tmp_path / "missing") is None and read_summary(None) is None


def test_the_sweep_ends_with_the_table_then_one_line_on_the_ui(tmp_path, capsys):
    from types import SimpleNamespace

    from tune.commands import print_outcome

    runs, pairs = demo_like()
    (tmp_path / "report").mkdir()
    tables.summary(runs, pairs).to_csv(tmp_path / "report" / "summary.csv")
    outcome = SimpleNamespace(main_table="| markdown |", report_dir=tmp_path / "report", latency="", errors=[],
                              reused=0, ok=True, interrupted=False, name="demo-1", trials=5, wall_time_s=240.0,
                              parent_run_id="abc", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="demo")
    print_outcome(outcome, "lottery resume demo-1")
    out = capsys.readouterr().out
    assert "| markdown |" not in out and "1 seed: no verdict" in out
    table = out.split("report:")[0]
    assert max(map(len, table.splitlines())) <= 100
    last = out.strip().splitlines()[-1]
    assert f"ui --results-dir {tmp_path} --experiment demo --sweep demo-1" in last
    assert "view 'sweep demo-1'" in last and "verdict" in last
