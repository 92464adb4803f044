"""A validated sweep: its trial points or Optuna search, and how to run them (see the package doc)."""
from dataclasses import asdict, dataclass, field


@dataclass
class Sweep:
    """A validated sweep: its trial configs (nested dicts) or an Optuna search, and how to run them."""

    name: str
    base: dict
    points: list[dict] = field(default_factory=list)  # grid: every trial, dense baselines first
    optuna: dict | None = None
    resources: dict | str = "auto"   # per trial {cpu, gpu}, or "auto": sized at launch (tune.resources)
    max_concurrent: int = 0
    retries: int = 1
    storage: str | None = None
    latency: dict | None = None   # `pipelines.latency_settings`: time every run once all trials have finished
    questions: dict | None = None  # `pipelines.report.questions`: what the report answers, declared before the runs

    def phases(self) -> list[list[dict]]:
        """The Tune experiments of the sweep, run one after the other.

        A trial waits only for what it needs. Phase 0 holds the dense baselines (first, so that
        Ray starts them first) and every ticket that needs nothing from a trained dense network
        (ticket_init, filter_ticket, ...: they plan at θ_0); their comparison with the dense run is
        made when both have finished (`pipelines.comparison_fill`). Phase 1 holds the tickets that
        start from a finished dense run (ticket_rewind reads its θ_n and θ_i;
        `pipelines.experiments.needs_trained_dense` says which). An Optuna sweep's phase 1 is the
        search (its points are drawn by Optuna); a sweep of only one kind has one phase.
        """
        from pipelines.config import build_config
        from pipelines.experiments import needs_trained_dense

        if self.optuna is not None:
            dense = self.optuna.get("dense")
            return [[dense], []] if dense else [[]]
        dense = [p for p in self.points if p.get("pipeline") == "dense"]
        tickets = [p for p in self.points if p.get("pipeline") != "dense"]
        later = [needs_trained_dense(build_config(p)) for p in tickets]
        first = dense + [p for p, wait in zip(tickets, later, strict=True) if not wait]
        return [phase for phase in (first, [p for p, wait in zip(tickets, later, strict=True) if wait]) if phase]

    def concurrency(self) -> int:
        """Trials that may run at once: the largest phase, capped by `max_concurrent`."""
        largest = max((len(p) for p in self.phases()), default=0) or (self.optuna or {}).get("num_samples", 1)
        return min(largest, self.max_concurrent) if self.max_concurrent else largest

    def describe(self) -> str:
        if self.optuna is not None:
            extra = " after 1 dense baseline" if self.optuna.get("dense") else ""
            return f"an Optuna search of {self.optuna['num_samples']} trials{extra}"
        dense = sum(p.get("pipeline") == "dense" for p in self.points)
        later = len(self.phases()[1]) if len(self.phases()) > 1 else 0
        waiting = f", {later} tickets after them" if later and dense else ""
        return f"{len(self.points)} trials ({dense} dense baselines first{waiting})"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Sweep":
        return cls(**{"questions": None, **data})
