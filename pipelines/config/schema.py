"""The run config: `RunConfig`, the whole of the sections (`sections`), and `build_config`.

RunConfig's methods hand off to modules below it (identity, building, checks), none of which
imports this module: `pipelines.config` has no import cycle (tests/test_import_graph.py).
Nothing in this module imports torch.
"""
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lottery_core.criteria.control_registry import get_control
from pipelines.config import building, checks, identity
from pipelines.config.fields import flatten, option
from pipelines.config.pipeline_registry import get_pipeline, pipeline_names
from pipelines.config.sections import (
    CRITERION_OPTIONS,
    SETTINGS_FIELDS,
    TRAIN,
    DataConfig,
    EvaluationConfig,
    ModelConfig,
    PruningConfig,
    TrackingConfig,
    TrainingConfig,
)

__all__ = ["CRITERION_OPTIONS", "SETTINGS_FIELDS", "TRAIN", "DataConfig", "EvaluationConfig", "ModelConfig",
           "PruningConfig", "RunConfig", "TrackingConfig", "TrainingConfig", "build_config"]


@dataclass(frozen=True)
class RunConfig:
    pipeline: str = option("ticket_init", "experiment to run", choices=pipeline_names)
    seed: int = option(0, "seed of θ_0, data order, augmentation and scoring images", low=0, high=2 ** 31 - 1)
    device: str = option("auto", "auto (cuda when available), cpu, cuda or cuda:N; the identity holds the "
                         "resolved kind and precision", identity=False)
    threads: int | None = option(None, "torch threads (default: the CPUs given to the run)", low=1, identity=False)
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "architecture"})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "data set and subsets"})
    training: TrainingConfig = field(default_factory=TrainingConfig, metadata={"help": "optimizer and schedule"})
    pruning: PruningConfig = field(default_factory=PruningConfig, metadata={"help": "criterion and p"})
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig, metadata={"help": "what is measured"})
    tracking: TrackingConfig = field(default_factory=TrackingConfig, metadata={"help": "where runs go"})

    def identity(self) -> str:
        """12 hex digits of a SHA-256 over `identity_payload()` (sorted JSON): the run's name everywhere."""
        return identity.identity(self)

    def identity_payload(self) -> dict:
        """What `identity` hashes: the identity schema, the non-default identity fields of
        `read_settings()`, the resolved device kind and precision."""
        return identity.payload(self)

    def read_settings(self) -> "RunConfig":
        """This config with every setting its pipeline does not read put back to its default (see
        `identity.read_settings`)."""
        return identity.read_settings(self)

    def with_overrides(self, overrides: dict[str, Any]) -> "RunConfig":
        """A new config with `{"section.key": value}` set, validated like a loaded one (e.g. the
        values an Optuna search samples). Keys `pruning.stage_counts.N` (one per stage, as an Optuna
        search samples them) are gathered by `building.gather_stage_counts`."""
        raw = building.to_raw(self)
        for key, value in building.gather_stage_counts(overrides).items():
            building.set_dotted(raw, key, value)
        return build_config(raw)

    def device_kind(self) -> str:
        """The device kind the run computes on: "cpu" or "cuda" ("auto" resolved on this machine)."""
        if self.device == "auto":
            return "cuda" if _cuda_available() else "cpu"
        return self.device.split(":")[0]

    def precision(self) -> str:
        """The numeric precision the engine trains in on that device ("fp32" or "bf16")."""
        from lottery_core.train.precision import precision

        return precision(self.device_kind(), self.training.amp)

    def to_flat(self) -> dict[str, Any]:
        """Every field as `section.key: value` (tuples as lists), e.g. for MLflow params."""
        return flatten(self)

    def dense(self) -> "RunConfig":
        """The dense run a ticket is compared against: same model, data, training, evaluation, seed."""
        return replace(self, pipeline="dense", pruning=PruningConfig())

    def results_path(self) -> Path:
        """Absolute results folder."""
        return Path(self.tracking.results_dir).expanduser().resolve()

    def describe(self) -> str:
        """Short human name, e.g. `ticket_init resnet32 grasp p=3 seed=0`."""
        parts = [self.pipeline, self.model.name]
        pipeline, p = get_pipeline(self.pipeline), self.read_settings().pruning
        if pipeline.prunes:
            parts += [p.chooser(), f"p={p.p}"]
            if p.stage_counts:
                parts.append("stages=" + "/".join(map(str, p.stage_counts)))
            control = get_control(p.control)
            if control is not None and control.reads_criterion:
                parts.append(control.name)
        parts += list(pipeline.label(p))
        if p.draw:
            parts.append(f"draw={p.draw}")
        return " ".join(parts + [f"seed={self.seed}"])


def build_config(raw: dict, cls=RunConfig, prefix: str = ""):
    """Construct and validate `cls` from a nested dict (see `building.build_section`), then, for a
    whole RunConfig, the rules that span fields (`checks.check_run`); errors name the dotted field."""
    cfg = building.build_section(raw, cls, prefix)
    if cls is RunConfig:
        checks.check_run(cfg)
    return cfg


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
