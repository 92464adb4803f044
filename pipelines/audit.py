"""Was anything trained twice, or lost? The ledger of an experiment's MLflow store, read after a resume.

    audits = audit_experiment(uri, "full-cifar10")       # one RunAudit per identity (a round per round)
    print(summary(audits))                               # "15 identities: 15 finished, ... nothing trained twice"

What it reads, and what counts as a problem (`RunAudit.problems`):
- **one run per identity**: a second run of an identity (whatever its status) means an attempt
  started over instead of reopening the first; the runner never does so (`pipelines.runner`), so it
  is reported. A round run of an iterative run is keyed by its parent's identity and its round.
- **each epoch once, none lost**: a FINISHED run that trains (the round runs of an iterative run
  at initialization do not) holds every step of its per-epoch history (`train_loss`; step = the
  epoch) once, without gaps, `epochs_trained` of them.
- **no epoch trained twice**: each attempt at training a run logs `attempt_first_epoch` and
  `attempt_epochs_retrained` (`pipelines.run_lifecycle.MlflowEpochLogger`, one value per attempt);
  a retrained epoch is one MLflow held before an attempt resumed from an older checkpoint. Runs
  logged before the ledger existed have none, and say so (`attempts` is None).

Unfinished runs (RUNNING, KILLED, FAILED) are listed, not counted as problems: a study part-way
has them, and `lottery resume` finishes them. Sweep parent runs (no identity) are skipped.
"""
from collections import defaultdict
from dataclasses import dataclass

from mlflow.tracking import MlflowClient

from pipelines.experiments.iterative import PARENT_TAG
from pipelines.records import round_key
from pipelines.tracking import experiment_runs

EPOCH_KEY = "train_loss"   # the per-epoch history every training run logs (step = the epoch)


@dataclass(frozen=True)
class RunAudit:
    """One identity (or one round of an iterative run): its runs, its newest run's status, the
    epochs logged (sorted steps of `EPOCH_KEY`), and its attempts as (first epoch, epochs retrained),
    or None when the run predates the attempt ledger."""

    key: str
    name: str
    run_ids: tuple[str, ...]
    status: str
    epochs: tuple[int, ...]
    epochs_trained: int | None
    attempts: tuple[tuple[int, int], ...] | None

    @property
    def problems(self) -> list[str]:
        """What went wrong, one phrase each; empty when nothing was trained twice or lost."""
        out = []
        if len(self.run_ids) > 1:
            out.append(f"{len(self.run_ids)} runs of one identity ({', '.join(self.run_ids)})")
        repeated = sorted({e for e in self.epochs if self.epochs.count(e) > 1})
        if repeated:
            out.append(f"epochs logged twice: {repeated}")
        if self.status == "FINISHED" and (self.epochs or self.epochs_trained is not None):  # a run that trains
            steps = sorted(set(self.epochs))
            gaps = [e for e in range(steps[0], steps[-1] + 1) if e not in steps] if steps else []
            if not steps or gaps or (self.epochs_trained is not None and len(steps) != self.epochs_trained):
                out.append(f"epochs lost: {len(steps)} logged{f' (missing {gaps})' if gaps else ''}, "
                           f"{self.epochs_trained} trained")
        retrained = sum(r for _, r in self.attempts or ())
        if retrained:
            out.append(f"{retrained} epoch(s) trained twice (attempts: {list(self.attempts)})")
        return out

    @property
    def resumes(self) -> int:
        """Attempts after the first (0 for a run trained in one go, or without a ledger)."""
        return max(0, len(self.attempts or ()) - 1)


def _key(run) -> str | None:
    tags = run.data.tags
    if PARENT_TAG in tags:
        return round_key(tags.get("iterative_identity", tags[PARENT_TAG]), tags.get("round", "?"))
    return tags.get("identity")


def audit_experiment(tracking_uri: str, experiment: str, sweep: str | None = None) -> list[RunAudit]:
    """The ledger of every identity of `experiment` (or of one sweep's runs), sorted by run name."""
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    by_key = defaultdict(list)
    for run in experiment_runs(client, found.experiment_id, sweep):
        key = _key(run)
        if key:
            by_key[key].append(run)
    audits = []
    for key, runs in by_key.items():
        runs.sort(key=lambda r: r.info.start_time or 0, reverse=True)
        newest = runs[0]
        history = client.get_metric_history(newest.info.run_id, EPOCH_KEY)
        first = {m.step: m.value for m in client.get_metric_history(newest.info.run_id, "attempt_first_epoch")}
        again = {m.step: m.value for m in client.get_metric_history(newest.info.run_id, "attempt_epochs_retrained")}
        attempts = tuple((int(first[a]), int(again.get(a, 0))) for a in sorted(first)) if first else None
        trained = newest.data.metrics.get("epochs_trained")
        audits.append(RunAudit(key=key, name=newest.info.run_name or key, run_ids=tuple(r.info.run_id for r in runs),
                               status=newest.info.status, epochs=tuple(sorted(m.step for m in history)),
                               epochs_trained=None if trained is None else int(trained), attempts=attempts))
    return sorted(audits, key=lambda a: (a.name, a.key))


def summary(audits: list[RunAudit]) -> str:
    """One paragraph: counts, resumes, and every problem or unfinished run on its own line."""
    finished = sum(a.status == "FINISHED" for a in audits)
    ledger = [a for a in audits if a.attempts is not None]
    lines = [f"{len(audits)} identities: {finished} finished, {len(audits) - finished} not; "
             f"{sum(len(a.run_ids) for a in audits)} runs; "
             f"{sum(a.resumes for a in ledger)} resumes in the {len(ledger)} runs with an attempt ledger "
             f"({len(audits) - len(ledger)} without one)"]
    for a in audits:
        if a.status != "FINISHED":
            lines.append(f"  not finished ({a.status}, {len(set(a.epochs))} epochs logged): {a.name} [{a.key}]")
        for problem in a.problems:
            lines.append(f"  PROBLEM {a.name} [{a.key}]: {problem}")
    bad = sum(bool(a.problems) for a in audits)
    lines.append(f"{bad} identities with problems" if bad else
                 "nothing trained twice, nothing lost: one run per identity, each epoch logged once")
    return "\n".join(lines)


__all__ = ["EPOCH_KEY", "RunAudit", "audit_experiment", "summary"]
