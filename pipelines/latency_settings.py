"""What a latency pass is asked for (`pipelines.latency`): batch sizes, device, threads, rounds, repeats.

Validated once, at the edge (`lottery latency`'s options, a sweep file's `latency:` key), by the
run config's own mechanism: every field of `LatencySettings` is declared with
`pipelines.config.fields.option` and built by `pipelines.config.building.build_section`, so a bad
value is refused in the run config's one-line format (`latency.rounds must be an integer >= 5, got
3`), without importing torch or MLflow.
"""
from collections.abc import Mapping
from dataclasses import dataclass, replace

from pipelines.config.building import build_section
from pipelines.config.fields import option

# the run tags a pass logs beside its metrics: where and how they were measured, and which pass (the
# report reads them); the same for every run of one pass
CONDITION_TAGS = ("latency_device", "latency_threads", "latency_torch", "latency_method", "latency_measured_at",
                  "latency_pass")
# and per network: a digest of its architecture (runs of identical architectures share it) and its
# milliseconds in every round, {metric: [ms of round 1, round 2, ...]} (`pipelines.report.timing`)
NETWORK_TAGS = ("latency_network", "latency_rounds")
MIN_ROUNDS = 5   # a median and an interquartile range over the rounds need at least 5 of them
DEVICES = ("cpu", "cuda", "auto")   # auto: cuda when torch sees a GPU, else cpu


def metric_name(batch_size: int) -> str:
    """The run metric of the latency at one batch size: `latency_b<n>_ms`."""
    return f"latency_b{batch_size}_ms"


def train_step_metric(batch_size: int) -> str:
    """The run metric of one isolated SGD training step of a batch: `train_step_b<n>_ms`."""
    return f"train_step_b{batch_size}_ms"


@dataclass(frozen=True)
class LatencySettings:
    """How to time. Built from a mapping by `latency_settings`, which checks every field against its
    declaration (rounds at least `MIN_ROUNDS` there); constructed directly, the fields are trusted
    (the tests time a single round)."""

    batch_sizes: tuple[int, ...] = option((1, 128), "batch sizes timed, images per forward pass (each once)",
                                          low=1, sequence=True, min_distinct=1)
    device: str = option("cpu", "device timed on: cpu, cuda, or auto (cuda when torch sees a GPU, else cpu)",
                         choices=DEVICES)
    threads: int | None = option(None, kind=int, low=1, help="torch threads (None: as many as this process "
                                 "is given)")
    rounds: int = option(MIN_ROUNDS, "rounds, each visiting every network in a fresh random order (a median "
                         "and an interquartile range over the rounds need at least 5)", low=MIN_ROUNDS)
    repeats: int = option(10, "timed passes per network and batch size in each round", low=1)
    warmup: int = option(2, "untimed passes before the timed ones, per network and batch size", low=0)
    train_batch: int | None = option(None, kind=int, low=1, help="also time one isolated SGD training step "
                                     "of a batch of this many images (None: inference only)")
    seed: int | None = option(None, kind=int, low=0, help="seed of the visiting orders (None: drawn, and "
                              "recorded in the tag latency_method)")

    def metrics(self) -> list[str]:
        """The run metrics this pass logs."""
        return [metric_name(b) for b in self.batch_sizes] + (
            [train_step_metric(self.train_batch)] if self.train_batch else [])

    def to_dict(self) -> dict:
        """Plain values (a sweep's record), which `latency_settings` reads back into the same settings."""
        return {"batch_sizes": list(self.batch_sizes), "device": self.device, "threads": self.threads,
                "rounds": self.rounds, "repeats": self.repeats, "warmup": self.warmup, "train_batch": self.train_batch,
                "seed": self.seed}


def latency_settings(raw: Mapping | None) -> LatencySettings:
    """Validated settings from a mapping (the CLI's options, a sweep file's `latency:` key), each key
    checked against its declaration; a one-line LotteryError naming `latency.<key>` and what is
    allowed. Batch sizes given twice are timed once."""
    mapping = {} if raw is None else dict(raw) if isinstance(raw, Mapping) else raw   # else refused there
    settings = build_section(mapping, LatencySettings, "latency.")
    return replace(settings, batch_sizes=tuple(dict.fromkeys(settings.batch_sizes)))


__all__ = ["CONDITION_TAGS", "DEVICES", "MIN_ROUNDS", "NETWORK_TAGS", "LatencySettings", "latency_settings", "metric_name", "train_step_metric"]
