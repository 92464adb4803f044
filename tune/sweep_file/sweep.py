"""A validated sweep: its trial points or Optuna search, and how to run them (see the package doc)."""
from dataclasses import asdict, dataclass, field


@dataclass
class Sweep:
    """A validated sweep: its trial configs (nested dicts) or an Optuna search, and how to run them."""

    name: str
    base: dict
    points: list[dict] = field(default_factory=list)  # grid: every trial, dense baselines first
    optuna: dict | None = None
    resources: dict = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    max_concurrent: int = 0
    retries: int = 1
    storage: str | None = None
    latency: dict | None = None   # `pipelines.latency_settings`: time every run once all trials have finished

    def phases(self) -> list[list[dict]]:
        """The Tune experiments of the sweep, run one after the other.

        Every ticket pipeline compares itself with its finished dense run when it is evaluated
        (Δ accuracy, speed-up, CKA; ticket_rewind even starts from the dense run's weights), so
        the dense baselines are phase 0 and the tickets phase 1. An Optuna sweep's phase 1 is
        the search (its points are drawn by Optuna); a sweep of only one kind has one phase.
        """
        if self.optuna is not None:
            dense = self.optuna.get("dense")
            return [[dense], []] if dense else [[]]
        dense = [p for p in self.points if p.get("pipeline") == "dense"]
        tickets = [p for p in self.points if p.get("pipeline") != "dense"]
        return [phase for phase in (dense, tickets) if phase]

    def describe(self) -> str:
        if self.optuna is not None:
            extra = " after 1 dense baseline" if self.optuna.get("dense") else ""
            return f"an Optuna search of {self.optuna['num_samples']} trials{extra}"
        dense = sum(p.get("pipeline") == "dense" for p in self.points)
        return f"{len(self.points)} trials ({dense} dense baselines first)"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Sweep":
        return cls(**data)
