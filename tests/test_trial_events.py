"""The sweep's console lines name each trial by its run's own `RunConfig.describe()`."""
from types import SimpleNamespace

from pipelines.config import build_config
from tune.trial_events import ProgressPrinter, describe_trial

POINT = {"pipeline": "ticket_init", "model": {"name": "resnet20"}, "device": "cpu",
         "training": {"epochs": 3}, "pruning": {"criterion": "snip", "p": 2, "control": "inverted"}}


def test_a_trial_is_named_by_its_runs_describe(capsys):
    config = {"run": POINT, "sweep": "s", "parent_run_id": "x", "seed": 4}   # a sampled key, as Optuna sets
    described = build_config({**POINT, "seed": 4}).describe()
    assert describe_trial(config) == described == "ticket_init resnet20 snip p=2 inverted seed=4"
    printer = ProgressPrinter(total=2)
    trial = SimpleNamespace(config=config, trial_id="t1", last_result={"acc": 41.25})
    printer.on_trial_start(0, [], trial)
    printer.on_trial_result(0, [], trial, {"epoch": 1, "epoch_test_acc": 40.0, "epoch_wall_time_s": 2.5})
    printer.on_trial_complete(0, [], trial)
    lines = [line.split("] ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert lines == [f"started   {described}", f"epoch 2/3 {described}  epoch_test_acc 40.0%  2.5 s",
                     f"finished  {described}  acc 41.2%  (1 of 2 done)"]


def test_a_trial_whose_config_cannot_be_read_keeps_its_own_name(capsys):
    trial = SimpleNamespace(config={"run": {"model": {"name": "nonet"}}}, trial_id="t2", last_result={})
    ProgressPrinter().on_trial_error(0, [], trial)
    assert "failed    namespace(" in capsys.readouterr().out


def test_after_a_resume_the_trials_finished_before_count_as_done(capsys):
    """A resumed sweep's Tune state holds the trials finished before the interruption: the first
    trial to finish after it is the third of 15, not the first."""
    config = {"run": POINT, "sweep": "s", "parent_run_id": "x", "seed": 0}
    before = [SimpleNamespace(trial_id=f"old{i}", status="TERMINATED") for i in range(2)]
    trial = SimpleNamespace(config=config, trial_id="t1", status="RUNNING", last_result={"acc": 82.4})
    waiting = SimpleNamespace(trial_id="t2", status="PENDING")
    ProgressPrinter(total=15).on_trial_complete(0, [*before, trial, waiting], trial)
    assert capsys.readouterr().out.rstrip().endswith("acc 82.4%  (3 of 15 done)")
