"""The accuracy/MACs front, per-stage removal counts, and the search space that samples them."""
import pandas as pd
import pytest
import torch

from lottery_core import criteria, models, surgery
from lottery_core.errors import LotteryError
from pipelines.config import load_config
from pipelines.config.loading import gather_stage_counts
from pipelines.report import pareto


def test_the_front_keeps_exactly_the_points_nothing_beats_on_both():
    points = pd.DataFrame({"acc": [90.0, 89.0, 91.0, 88.0, 89.0, 91.0],
                           "macs": [50.0, 40.0, 60.0, 45.0, 40.0, 70.0]})
    # 3 (88, 45) is beaten by 1 (89, 40); 5 (91, 70) by 2 (91, 60); 1 and 4 are equal: both stay
    assert pareto.front(points).tolist() == [True, True, True, False, True, False]


def test_the_table_reads_validation_accuracy_when_every_ticket_has_it():
    runs = pd.DataFrame([
        {"pipeline": "dense", "criterion": None, "control": "none", "planned_stage_counts": "", "p": 0, "seed": 0,
         "macs": 100.0, "acc": 92.0, "val_acc": 91.0},
        {"pipeline": "ticket_init", "criterion": "snip", "control": "none", "planned_stage_counts": "1/0/0", "p": 1, "seed": 0,
         "macs": 90.0, "acc": 99.0, "val_acc": 90.0},
        {"pipeline": "ticket_init", "criterion": "snip", "control": "none", "planned_stage_counts": "1/0/0", "p": 1, "seed": 1,
         "macs": 90.0, "acc": 99.0, "val_acc": 92.0},
        {"pipeline": "ticket_init", "criterion": "kl", "control": "none", "planned_stage_counts": "0/1/1", "p": 2, "seed": 0,
         "macs": 80.0, "acc": 10.0, "val_acc": 89.0},
    ])
    table = pareto.table(runs)
    assert table.attrs["accuracy"] == "val_acc"
    assert table.pipeline.tolist() == ["dense", "ticket_init", "ticket_init"]
    assert table.accuracy.tolist() == [91.0, 89.0, 91.0]        # snip: mean of 90 and 92 over 2 seeds
    assert table.on_front.tolist() == [False, True, True]
    assert table.seeds.tolist() == [1, 1, 2]
    assert pareto.accuracy_column(runs.drop(columns="val_acc")) == "acc"


def test_the_reports_markdown_shows_the_table_rounded_and_missing_numbers_blank():
    from pipelines.report import markdown_table

    table = pd.DataFrame({"pipeline": ["dense", "ticket_init"], "macs": [68862592.0, 45269632.0],
                          "accuracy": [84.05166666666666, 59.815999999999995], "criterion": [float("nan"), "grasp"],
                          "p": [float("nan"), 5.0], "on_front": [False, True]})
    assert markdown_table(table).splitlines()[2:] == ["| dense | 68862592 | 84.05 |  |  | False |",
                                                      "| ticket_init | 45269632 | 59.82 | grasp | 5 | True |"]


def test_stage_counts_remove_exactly_that_many_lowest_blocks_per_stage():
    torch.manual_seed(0)
    model = models.build("resnet32")      # 5 blocks a stage; min 2 kept: budgets (3, 3, 3)
    names = surgery.removable_blocks(model, 2)
    scores = {n: float(i) for i, n in enumerate(names)}            # increasing with depth
    plan = criteria.select_blocks(scores, 4, model=model, stage_counts=[0, 1, 3])
    assert plan.removed == ["layer2.1", "layer3.1", "layer3.2", "layer3.3"]
    assert criteria.stage_counts(plan.removed, model) == {1: 0, 2: 1, 3: 3}
    with pytest.raises(LotteryError, match=r"^p=3 must be the sum of stage_counts=\[0, 1, 3\], 4$"):
        criteria.select_blocks(scores, 3, model=model, stage_counts=[0, 1, 3])
    with pytest.raises(LotteryError, match=r"stage_counts=\[4, 0, 0\] must give each of the 3 stages a count"):
        criteria.select_blocks(scores, 4, model=model, stage_counts=[4, 0, 0])


def test_the_run_config_checks_stage_counts_before_anything_runs():
    cfg = load_config(None, ["pipeline=ticket_init", "model.name=resnet32", "pruning.stage_counts=[0,1,3]",
                             "pruning.p=4"])
    assert cfg.pruning.stage_counts == (0, 1, 3)
    for overrides, message in (
        (["pruning.stage_counts=[1,1]", "pruning.p=2"], r"^pruning.stage_counts=\[1, 1\] needs one count per stage: "
                                                        r"resnet32 has 3 stages, which may lose at most \[3, 3, 3\]"),
        (["pruning.stage_counts=[0,4,0]", "pruning.p=4"], r"^pruning.stage_counts=\[0, 4, 0\]: stage 2 may lose at "
                                                          r"most 3 blocks"),
        (["pruning.stage_counts=[1,1,1]", "pruning.p=2"], r"^pruning.p=2 must be the sum of pruning.stage_counts="
                                                          r"\[1, 1, 1\], 3$"),
        (["pruning.stage_counts=[1,1,1]", "pruning.p=3", "pruning.control=uniform"],
         r"^pruning.stage_counts applies with control none, same_stage_random or inverted, not uniform"),
    ):
        with pytest.raises(LotteryError, match=message):
            load_config(None, ["pipeline=ticket_init", "model.name=resnet32", *overrides])


def test_sampled_stage_counts_are_gathered_and_set_p():
    assert gather_stage_counts({"pruning.stage_counts.2": 1, "pruning.stage_counts.1": 0,
                                "pruning.stage_counts.3": 3, "seed": 1}) == {
        "seed": 1, "pruning.stage_counts": [0, 1, 3], "pruning.p": 4}
    with pytest.raises(LotteryError, match=r"must name stages 1 to 3 each once, got stages \[1, 3\]"):
        gather_stage_counts({"pruning.stage_counts.1": 0, "pruning.stage_counts.3": 3})
    cfg = load_config(None, ["pipeline=ticket_init", "model.name=resnet32"])
    assert cfg.with_overrides({"pruning.stage_counts.1": 2, "pruning.stage_counts.2": 0,
                               "pruning.stage_counts.3": 1}).pruning.p == 3


def test_the_smallest_winner_is_the_cheapest_declared_configuration_that_survives_holm():
    def rows(criterion, control, counts, p, macs, deltas):
        return [{"pipeline": "ticket_init", "model": "resnet32", "criterion": criterion, "control": control,
                 "reinit_of": "", "p": p, "planned_stage_counts": counts, "rewind_epoch": 0, "iterative": "",
                 "seed": s, "macs": macs, "delta_acc": d, "dense_missing": ""} for s, d in enumerate(deltas)]
    pairs = pd.DataFrame(rows("snip", "none", "3/3/2", 8, 31e6, [3.0, 4.0, 3.5])       # better, cheapest declared
                         + rows("snip", "same_stage_random", "3/3/2", 8, 31e6, [-1.0, 2.0, 0.5])
                         + rows("kl", "none", "1/0/0", 1, 60e6, [1.0, 1.2, 1.1])          # better, dearer
                         + rows("grasp", "none", "3/3/3", 9, 28e6, [-2.0, 1.0, 3.0]))     # cheaper, inconclusive

    def key(criterion, counts, p):
        return ("vs_dense", ("ticket_init", "resnet32", criterion, "none", "", str(p), counts, "0", ""))

    labels = {key("snip", "3/3/2", 8): ("Q1", "better"), key("kl", "1/0/0", 1): ("Q1", "better"),
              key("grasp", "3/3/3", 9): ("Q1", "inconclusive")}
    line = pareto.smallest_winner(pairs, 0.5, labels)
    assert line.startswith("Smallest winning ticket (Q1, adjusted verdict better): ticket_init resnet32 snip p=8, "
                           "stage counts 3/3/2, 31.00 M MACs, Δ +3.50 [")
    assert "random blocks with the same per-stage counts: Δ +0.50 [" in line and line.endswith(", inconclusive (raw).")
    assert "[[" not in line
    # the same tickets outside every declared question are not named: picking the best-looking of
    # many raw intervals is what the adjustment exists to prevent
    assert pareto.smallest_winner(pairs, 0.5).startswith("Smallest winning ticket: not named")
    assert pareto.smallest_winner(pairs, 0.5, {key("grasp", "3/3/3", 9): ("Q1", "inconclusive")}).startswith(
        "Smallest winning ticket: none — none of the 1 declared")


def test_a_confirmation_sweep_declares_its_questions_before_it_runs():
    from pipelines.report.questions import read_questions

    front = pd.DataFrame([{"pipeline": "dense", "criterion": "", "planned_stage_counts": "", "on_front": False},
                          {"pipeline": "ticket_init", "criterion": "snip", "planned_stage_counts": "2/0/3",
                           "on_front": True},
                          {"pipeline": "ticket_init", "criterion": "grasp", "planned_stage_counts": "1/1/0",
                           "on_front": False}])
    grid = pareto.confirmation_grid(front, seeds=3)
    assert [g["pruning.stage_counts"] for g in grid] == [[[2, 0, 3]]]
    q1, q2 = read_questions(pareto.confirmation_questions(grid))
    assert q1.compare == ("ticket_vs_dense",) and q2.controls == ("same_stage_random",)
    assert q1.selects({"control": "none", "planned_stage_counts": "2/0/3"})
    assert not q1.selects({"control": "same_stage_random", "planned_stage_counts": "2/0/3"})
    assert pareto.confirmation_questions([]) is None
