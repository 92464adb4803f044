"""A validated sweep: its trial configs or Optuna search, and how to run them (see the package doc)."""
from dataclasses import dataclass, field

from pipelines.config import RunConfig, build_config, to_raw


@dataclass
class Sweep:
    """A validated sweep: the frozen RunConfig of every trial (each built once, where the sweep file
    was read: `tune.sweep_file.points`) or an Optuna search, and how to run them. `to_dict` is its
    record (sweep.json: configs in their nested plain form), `from_dict` builds it back, each config
    once."""

    name: str
    base: dict                         # the sweep file's base config, pinned, as a nested mapping
    points: list[RunConfig] = field(default_factory=list)  # grid: every trial, dense baselines first
    optuna: dict | None = None         # its "dense": the search's dense baseline (a RunConfig) or None
    resources: dict | str = "auto"   # per trial {cpu, gpu}, or "auto": sized at launch (tune.resources)
    max_concurrent: int = 0
    retries: int = 1
    storage: str | None = None
    latency: dict | None = None   # `pipelines.latency_settings`: time every run once all trials have finished
    questions: dict | None = None  # `pipelines.report.questions`: what the report answers, declared before the runs
    search_base: RunConfig | None = None   # an Optuna search's validated `base`: its trials before the sampled values

    def phases(self) -> list[list[RunConfig]]:
        """The Tune experiments of the sweep, run one after the other.

        A trial waits only for what it needs. Phase 0 holds the dense baselines (first, so that
        Ray starts them first) and every ticket that needs nothing from a trained dense network
        (ticket_init, filter_ticket, ...: they plan at θ_0); their comparison with the dense run is
        made when both have finished (`pipelines.comparison_fill`). Phase 1 holds the tickets that
        start from a finished dense run (ticket_rewind reads its θ_n and θ_i;
        `pipelines.experiments.needs_trained_dense` says which). An Optuna sweep's phase 1 is the
        search (its points are drawn by Optuna); a sweep of only one kind has one phase.
        """
        from pipelines.experiments import needs_trained_dense

        if self.optuna is not None:
            dense = self.optuna.get("dense")
            return [[dense], []] if dense else [[]]
        dense = [p for p in self.points if p.pipeline == "dense"]
        tickets = [p for p in self.points if p.pipeline != "dense"]
        later = [needs_trained_dense(p) for p in tickets]
        first = dense + [p for p, wait in zip(tickets, later, strict=True) if not wait]
        return [phase for phase in (first, [p for p, wait in zip(tickets, later, strict=True) if wait]) if phase]

    def configs(self) -> list[RunConfig]:
        """Every config the sweep's driver knows before a trial starts: the grid's trials, or an
        Optuna search's base and dense baseline."""
        if self.optuna is None:
            return list(self.points)
        return [c for c in (self.search_base, self.optuna.get("dense")) if c is not None]

    def concurrency(self) -> int:
        """Trials that may run at once: the largest phase, capped by `max_concurrent`."""
        largest = max((len(p) for p in self.phases()), default=0) or (self.optuna or {}).get("num_samples", 1)
        return min(largest, self.max_concurrent) if self.max_concurrent else largest

    def describe(self) -> str:
        if self.optuna is not None:
            extra = " after 1 dense baseline" if self.optuna.get("dense") else ""
            return f"an Optuna search of {self.optuna['num_samples']} trials{extra}"
        phases = self.phases()
        dense = sum(p.pipeline == "dense" for p in self.points)
        later = len(phases[1]) if len(phases) > 1 else 0
        waiting = f", {later} tickets after them" if later and dense else ""
        return f"{len(self.points)} trials ({dense} dense baselines first{waiting})"

    def to_dict(self) -> dict:
        """The sweep's record (plain values, sweep.json): every config in its nested form (`to_raw`)."""
        optuna = None if self.optuna is None else {
            **self.optuna, "dense": to_raw(self.optuna["dense"]) if self.optuna.get("dense") else None}
        return {"name": self.name, "base": self.base, "points": [to_raw(p) for p in self.points], "optuna": optuna,
                "resources": self.resources, "max_concurrent": self.max_concurrent, "retries": self.retries,
                "storage": self.storage, "latency": self.latency, "questions": self.questions}

    @classmethod
    def from_dict(cls, data: dict) -> "Sweep":
        """The sweep of a record, each config built once (records of older versions, whose points
        are the pinned grid mappings, too)."""
        data = {"questions": None, **data}
        data["points"] = [build_config(p) for p in data.get("points") or ()]
        if data.get("optuna") is not None:
            dense = data["optuna"].get("dense")
            data["optuna"] = {**data["optuna"], "dense": build_config(dense) if dense else None}
            data["search_base"] = build_config(data["base"])
        return cls(**data)
