"""How a sweep's trials run: its resources per trial, concurrency, retries and storage, declared
like the run config's sections (`pipelines.config.fields.option`: type, range, default, help) and
built by `pipelines.config.building.build_section`, so a bad value is refused in the run config's
one-line format, naming the sweep file's key:

    resources.gpu must be a fraction in [0, 1] or a whole number, got 1.5
    max_concurrent must be an integer >= 0, got 'two'
    unknown config key 'resources.tpu'; allowed in resources: cpu, gpu
"""
from dataclasses import dataclass, fields

from lottery_core.errors import LotteryError
from pipelines.config.building import build_section
from pipelines.config.fields import declaration, option


@dataclass(frozen=True)
class TrialResources:
    """What Ray reserves for each trial of a sweep that does not size them itself (`resources: auto`)."""

    cpu: float = option(1.0, "Ray CPUs per trial (the trial's torch threads)", low=0.0, low_open=True)
    gpu: float = option(0.0, "GPUs per trial: a fraction of one GPU in [0, 1] (trials share it) or a whole "
                        "number of GPUs", low=0.0, allowed_text="a fraction in [0, 1] or a whole number")

    def __post_init__(self):
        # the one rule a range cannot say: above one GPU, whole GPUs only (Ray cannot split 1.5)
        if self.gpu > 1 and self.gpu != int(self.gpu):
            raise _declared(TrialResources, "gpu").refuse(self.gpu, "resources.gpu")


@dataclass(frozen=True)
class SweepSettings:
    """A sweep file's top-level settings of how its trials run (its grid, base and questions aside)."""

    max_concurrent: int = option(0, "trials at once (0: as many as the resources allow)", low=0)
    retries: int = option(1, "a failed trial is retried from its last checkpoint, this many times", low=0)
    storage: str | None = option(None, kind=str, help="Ray Tune's storage (default <results_dir>/ray); on a "
                                 "cluster a path every node mounts or a URI such as s3://bucket/sweeps",
                                 allowed_text="a path or a URI such as s3://bucket/sweeps")

    def __post_init__(self):
        if self.storage is not None and not self.storage.strip():
            raise _declared(SweepSettings, "storage").refuse(self.storage, "storage")


SETTING_KEYS = tuple(f.name for f in fields(SweepSettings))


def sweep_settings(raw: dict) -> SweepSettings:
    """The validated settings among a sweep file's top-level keys (the others are read elsewhere)."""
    return build_section({k: raw[k] for k in SETTING_KEYS if k in raw}, SweepSettings)


def trial_resources(raw) -> dict | str:
    """A sweep file's `resources:`: "auto" (the default: sized at launch from the cluster,
    `tune.resources`) or the validated per-trial {cpu, gpu} as plain numbers (the sweep's record)."""
    if raw == "auto" or raw is None:
        return "auto"
    if not isinstance(raw, dict):
        raise LotteryError(f"resources must be auto or a mapping such as {{cpu: 1, gpu: 0.25}}, got {raw!r}")
    built = build_section(raw, TrialResources, "resources.")
    return {"cpu": built.cpu, "gpu": built.gpu}


def _declared(cls, name: str):
    return declaration(cls.__dataclass_fields__[name])
