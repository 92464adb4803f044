"""What a latency pass is asked for (`pipelines.latency`): batch sizes, device, threads, repeats.

Validated once, at the edge (`lottery latency`'s options, a sweep file's `latency:` key), without
importing torch or MLflow, so a bad value is refused before anything heavy loads.
"""
from collections.abc import Mapping
from dataclasses import dataclass

from lottery_core.errors import LotteryError

# the run tags a pass logs beside its metrics: where and how they were measured (the report reads them)
CONDITION_TAGS = ("latency_device", "latency_threads", "latency_torch", "latency_method", "latency_measured_at")
DEVICES = ("cpu", "cuda", "auto")   # auto: cuda when torch sees a GPU, else cpu


def metric_name(batch_size: int) -> str:
    """The run metric of the latency at one batch size: `latency_b<n>_ms`."""
    return f"latency_b{batch_size}_ms"


def train_step_metric(batch_size: int) -> str:
    """The run metric of one isolated SGD training step of a batch: `train_step_b<n>_ms`."""
    return f"train_step_b{batch_size}_ms"


@dataclass(frozen=True)
class LatencySettings:
    """How to time: batch sizes, device ("cpu", "cuda", or "auto"), torch threads (None = as many as this
    process is given), rounds in which the networks take turns, and in each round the timed passes
    per network and batch size (`repeats`, after `warmup` untimed ones). `train_batch`: also time one
    SGD training step of a batch of this size (None: inference only), the isolated measurement of
    training speed that runs sharing the cores cannot give."""

    batch_sizes: tuple[int, ...] = (1, 128)
    device: str = "cpu"
    threads: int | None = None
    rounds: int = 3
    repeats: int = 10
    warmup: int = 2
    train_batch: int | None = None

    def metrics(self) -> list[str]:
        """The run metrics this pass logs."""
        return [metric_name(b) for b in self.batch_sizes] + (
            [train_step_metric(self.train_batch)] if self.train_batch else [])

    def to_dict(self) -> dict:
        """Plain values (a sweep's record), which `latency_settings` reads back into the same settings."""
        return {"batch_sizes": list(self.batch_sizes), "device": self.device, "threads": self.threads,
                "rounds": self.rounds, "repeats": self.repeats, "warmup": self.warmup, "train_batch": self.train_batch}


def latency_settings(raw: Mapping | None) -> LatencySettings:
    """Validated settings from a mapping (the CLI's options, a sweep file's `latency:` key); one-line
    LotteryError naming the key and what is allowed."""
    raw = dict(raw or {})
    allowed = ("batch_sizes", "device", "threads", "rounds", "repeats", "warmup", "train_batch")
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise LotteryError(f"latency: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    sizes = raw.get("batch_sizes", LatencySettings.batch_sizes)
    if not isinstance(sizes, list | tuple) or not sizes or not all(_positive_int(b) for b in sizes):
        raise LotteryError(f"latency batch sizes must be a list of integers >= 1, e.g. [1, 128]; got {sizes!r}")
    device = raw.get("device", "cpu")
    if device not in DEVICES:
        raise LotteryError(f"latency device must be one of {', '.join(DEVICES)}; got {device!r}")
    threads = raw.get("threads")
    if threads is not None and not _positive_int(threads):
        raise LotteryError(f"latency threads must be an integer >= 1 (omit it for every CPU given); got {threads!r}")
    train_batch = raw.get("train_batch")
    if train_batch is not None and not _positive_int(train_batch):
        raise LotteryError(f"latency train_batch must be an integer >= 1 (omit it to time inference only); "
                           f"got {train_batch!r}")
    for key, low in (("rounds", 1), ("repeats", 1), ("warmup", 0)):
        value = raw.get(key, getattr(LatencySettings, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise LotteryError(f"latency {key} must be an integer >= {low}; got {value!r}")
    return LatencySettings(batch_sizes=tuple(dict.fromkeys(sizes)), device=device, threads=threads,
                           rounds=raw.get("rounds", LatencySettings.rounds),
                           repeats=raw.get("repeats", LatencySettings.repeats),
                           warmup=raw.get("warmup", LatencySettings.warmup), train_batch=train_batch)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


__all__ = ["CONDITION_TAGS", "DEVICES", "LatencySettings", "latency_settings", "metric_name", "train_step_metric"]
