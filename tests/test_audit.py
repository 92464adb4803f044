"""The ledger `lottery records check` reads (pipelines.audit): known cases of runs trained in one go,
resumed cleanly, resumed from a checkpoint older than the log (epochs trained twice), with an
epoch missing, and an identity with two runs. The epoch logger is the runner's own
(`MlflowEpochLogger`), fed the epochs a training loop would give it."""
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from pipelines.audit import audit_experiment, summary
from pipelines.cli import main
from pipelines.run_lifecycle import MlflowEpochLogger

EXPERIMENT = "audit"


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    return {"uri": uri, "client": client, "experiment_id": client.create_experiment(EXPERIMENT),
            "results": tmp_path}


def new_run(store, identity: str, name: str) -> str:
    return store["client"].create_run(store["experiment_id"], tags={"identity": identity}, run_name=name).info.run_id


def attempt(store, run_id: str, checkpoint_epochs: int, last_epoch: int) -> None:
    """One attempt at training: it resumes from a checkpoint holding epochs 0..checkpoint_epochs-1
    and trains up to `last_epoch`, each epoch reported to a fresh epoch logger, as the runner does."""
    logger = MlflowEpochLogger(store["client"], run_id)
    history = [{"epoch": e, "train_loss": 1.0 / (e + 1)} for e in range(checkpoint_epochs)]
    for epoch in range(checkpoint_epochs, last_epoch + 1):
        history.append({"epoch": epoch, "train_loss": 1.0 / (epoch + 1)})
        logger.on_epoch_end(epoch, history[-1], SimpleNamespace(history=list(history)))


def finish(store, run_id: str, epochs: int) -> None:
    store["client"].log_metric(run_id, "epochs_trained", epochs)
    store["client"].set_terminated(run_id, "FINISHED")


def audited(store) -> dict:
    return {a.name: a for a in audit_experiment(store["uri"], EXPERIMENT)}


def test_runs_in_one_go_and_cleanly_resumed_have_no_problems(store):
    once = new_run(store, "aaa", "once")
    attempt(store, once, 0, 4)
    finish(store, once, 5)
    resumed = new_run(store, "bbb", "resumed")
    attempt(store, resumed, 0, 1)          # killed after epoch 1, its checkpoint holds epochs 0-1
    attempt(store, resumed, 2, 3)          # killed again after epoch 3
    attempt(store, resumed, 4, 4)
    finish(store, resumed, 5)
    got = audited(store)
    assert got["once"].attempts == ((0, 0),) and got["once"].resumes == 0 and got["once"].problems == []
    assert got["resumed"].attempts == ((0, 0), (2, 0), (4, 0)) and got["resumed"].resumes == 2
    assert got["resumed"].epochs == (0, 1, 2, 3, 4) and got["resumed"].problems == []
    assert "2 resumes in the 2 runs with an attempt ledger (0 without one)" in summary(list(got.values()))
    assert summary(list(got.values())).endswith("nothing trained twice, nothing lost: one run per identity, "
                                                "each epoch logged once")


def test_a_resume_from_a_checkpoint_older_than_the_log_counts_the_epochs_trained_twice(store):
    run = new_run(store, "ccc", "older checkpoint")
    attempt(store, run, 0, 3)              # MLflow holds epochs 0-3 ...
    attempt(store, run, 2, 4)              # ... but the checkpoint only 0-1: epochs 2 and 3 again
    finish(store, run, 5)
    (audit,) = audit_experiment(store["uri"], EXPERIMENT)
    assert audit.attempts == ((0, 0), (2, 2))
    assert audit.epochs == (0, 1, 2, 3, 4)   # the logger still logs each epoch once
    assert audit.problems == ["2 epoch(s) trained twice (attempts: [(0, 0), (2, 2)])"]


def test_a_finished_run_with_an_epoch_missing_and_an_identity_with_two_runs_are_problems(store):
    gap = new_run(store, "ddd", "gap")
    for epoch in (0, 1, 3):
        store["client"].log_metric(gap, "train_loss", 1.0, step=epoch)
    finish(store, gap, 4)
    first = new_run(store, "eee", "twice")
    attempt(store, first, 0, 1)
    store["client"].set_terminated(first, "KILLED")
    second = new_run(store, "eee", "twice")     # started over instead of reopening the first
    attempt(store, second, 0, 2)
    finish(store, second, 3)
    got = audited(store)
    assert got["gap"].problems == ["epochs lost: 3 logged (missing [2]), 4 trained"]
    assert got["gap"].attempts is None      # logged without the ledger
    assert "0 resumes in the 1 runs with an attempt ledger (1 without one)" in summary(list(got.values()))
    assert got["twice"].problems == [f"2 runs of one identity ({second}, {first})"]


def test_an_unfinished_run_is_listed_not_a_problem_and_the_command_exits_by_what_it_found(store, capsys):
    running = new_run(store, "fff", "part-way")
    attempt(store, running, 0, 2)
    args = ["records", "check", "--experiment", EXPERIMENT, "--results-dir", str(store["results"])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 identities: 0 finished, 1 not" in out and "not finished (RUNNING, 3 epochs logged): part-way" in out
    again = new_run(store, "ggg", "older checkpoint")
    attempt(store, again, 0, 2)
    attempt(store, again, 1, 2)
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 1
    assert "PROBLEM older checkpoint [ggg]: 2 epoch(s) trained twice" in capsys.readouterr().out


def test_checking_an_experiment_without_runs_is_one_line(store, capsys):
    assert main(["records", "check", "--experiment", "nothing-here", "--results-dir", str(store["results"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lottery records: error: experiment 'nothing-here' has no runs in") and "\n" not in err
