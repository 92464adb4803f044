"""An MLflow run's life under a claim: reopened or created, epochs logged once, closed with the
status of what happened. Shared by the runner (one run per identity) and the pipelines that open
runs of their own (iterative's child run per round).

    with closed_as_outcome(client, run_id):   # FINISHED, or KILLED on Ctrl-C, FAILED on any error
        ...                                   # a lost claim (ClaimLost) leaves the status alone
"""
import time
from contextlib import contextmanager

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from pipelines.claim import ClaimLost
from pipelines.run_schema import epoch_metrics

__all__ = ["MlflowEpochLogger", "closed_as_outcome", "reopen"]


class MlflowEpochLogger:
    """Epoch hook: log every epoch's metrics to the run, with step = epoch, under their per-epoch
    names (`pipelines.run_schema.epoch_metrics`: `test_acc` of the training loop's history is logged
    as `epoch_test_acc`, ...), never under a final value's name.

    A resumed run is reconciled on the first epoch this attempt trains: epochs the checkpoint
    holds but MLflow never received (the attempt died between the checkpoint and the logging,
    e.g. a tracking server that went away) are logged from the checkpoint's history, and epochs
    MLflow already holds are not logged twice. So every epoch appears exactly once per metric.

    Each attempt also logs its ledger line on its first epoch (step = the attempt, from 0):
    `attempt_first_epoch` and `attempt_epochs_retrained`, the epochs MLflow already held from that
    epoch on (0 unless a checkpoint was older than the log); `pipelines.audit` reads them.
    """

    def __init__(self, client: MlflowClient, run_id: str, reference_key: str = "train_loss"):
        self.client, self.run_id, self.reference_key = client, run_id, reference_key
        self.logged: set[int] | None = None  # steps already in MLflow; read once, on the first epoch

    def on_epoch_end(self, epoch: int, metrics: dict, state) -> None:
        if self.logged is None:
            self.logged = {m.step for m in self.client.get_metric_history(self.run_id, self.reference_key)}
            self._log_attempt(epoch)
            for earlier in state.history[:-1]:
                self._log(int(earlier["epoch"]), earlier)
        self._log(epoch, metrics)

    def _log_attempt(self, first_epoch: int) -> None:
        attempt = len(self.client.get_metric_history(self.run_id, "attempt_first_epoch"))
        retrained = sum(1 for step in self.logged if step >= first_epoch)
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric("attempt_first_epoch", first_epoch, now, attempt),
                                                    Metric("attempt_epochs_retrained", retrained, now, attempt)])

    def _log(self, epoch: int, metrics: dict) -> None:
        if epoch in self.logged:
            return
        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, epoch) for k, v in epoch_metrics(metrics).items()]
        self.client.log_batch(self.run_id, metrics=batch)
        self.logged.add(epoch)


def reopen(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    """Mark an unfinished run RUNNING again and (re)set its tags."""
    client.update_run(run_id, status="RUNNING")
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


@contextmanager
def closed_as_outcome(client: MlflowClient, run_id: str):
    """Close `run_id` as the block ends: FINISHED, KILLED on Ctrl-C, FAILED on any other error.
    A lost claim (`ClaimLost`) leaves the status alone: the run belongs to the claim's new holder."""
    try:
        yield run_id
    except ClaimLost:
        raise
    except KeyboardInterrupt:
        client.set_terminated(run_id, "KILLED")
        raise
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
