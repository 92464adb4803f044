"""What a latency pass is asked for (`pipelines.latency`): batch sizes, device, threads, rounds, repeats.

Validated once, at the edge (`lottery latency`'s options, a sweep file's `latency:` key), without
importing torch or MLflow, so a bad value is refused before anything heavy loads.
"""
from collections.abc import Mapping
from dataclasses import dataclass

from lottery_core.errors import LotteryError

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
    """How to time: batch sizes, device ("cpu", "cuda", or "auto"), torch threads (None = as many as this
    process is given), rounds in which every network takes its turn in a fresh random order (at least
    `MIN_ROUNDS` through `latency_settings`), and in each round the timed passes per network and batch
    size (`repeats`, after `warmup` untimed ones). `train_batch`: also time one SGD training step of a
    batch of this size (None: inference only), the isolated measurement of training speed that runs
    sharing the cores cannot give. `seed`: of the visiting orders (None: drawn, and recorded in the
    tag `latency_method`)."""

    batch_sizes: tuple[int, ...] = (1, 128)
    device: str = "cpu"
    threads: int | None = None
    rounds: int = MIN_ROUNDS
    repeats: int = 10
    warmup: int = 2
    train_batch: int | None = None
    seed: int | None = None

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
    """Validated settings from a mapping (the CLI's options, a sweep file's `latency:` key); one-line
    LotteryError naming the key and what is allowed."""
    raw = dict(raw or {})
    allowed = ("batch_sizes", "device", "threads", "rounds", "repeats", "warmup", "train_batch", "seed")
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
    why = {"rounds": " (a median and an interquartile range over the rounds)"}
    for key, low in (("rounds", MIN_ROUNDS), ("repeats", 1), ("warmup", 0)):
        value = raw.get(key, getattr(LatencySettings, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise LotteryError(f"latency {key} must be an integer >= {low}{why.get(key, '')}; got {value!r}")
    seed = raw.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise LotteryError(f"latency seed must be an integer >= 0 (omit it for a drawn one); got {seed!r}")
    return LatencySettings(batch_sizes=tuple(dict.fromkeys(sizes)), device=device, threads=threads,
                           rounds=raw.get("rounds", LatencySettings.rounds),
                           repeats=raw.get("repeats", LatencySettings.repeats),
                           warmup=raw.get("warmup", LatencySettings.warmup), train_batch=train_batch, seed=seed)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


__all__ = ["CONDITION_TAGS", "DEVICES", "MIN_ROUNDS", "NETWORK_TAGS", "LatencySettings", "latency_settings", "metric_name", "train_step_metric"]
