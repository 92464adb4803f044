"""How to train: one frozen dataclass, validated once when it is made."""
import math
from dataclasses import asdict, dataclass, fields

from lottery_core.errors import LotteryError, choose

SCHEDULES = ("step", "cosine", "onecycle")

# Fields that change what is computed: a checkpoint written under other values is not resumed.
# The rest (channels_last, amp, compile, threads, eval_every) only change speed or reporting.
# `precision` (from amp and the device) is result-changing too; the loop adds it to a checkpoint's identity.
RESULT_FIELDS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                 "milestones", "gamma", "warmup_epochs", "pct_start", "div_factor", "final_div_factor",
                 "base_momentum", "label_smoothing", "augment")


@dataclass(frozen=True)
class TrainSettings:
    """SGD with momentum and weight decay over `epochs`, under a step, cosine or one-cycle schedule.

    epochs: passes over the training split. batch_size: images per step. lr: peak learning rate.
    momentum, nesterov, weight_decay: SGD (weight decay on every parameter, as in He et al.).
    schedule: "step" multiplies lr by `gamma` at each milestone (fractions of `epochs`, e.g.
    (0.5, 0.75) -> epochs 80 and 120 of 160); "cosine" decays to 0 over the epochs after warm-up.
    warmup_epochs: linear warm-up from lr/steps to lr, step by step (step and cosine).
    "onecycle" is torch's OneCycleLR (cosine annealing, two phases), step for step: lr rises from
    lr/div_factor to lr over the first `pct_start` of all steps, then falls to
    lr/(div_factor*final_div_factor); momentum moves the other way, from `momentum` down to
    `base_momentum` at the peak and back (Smith & Topin 2019).
    label_smoothing: the training loss's label smoothing in [0, 1) (evaluation losses never smooth).
    channels_last: None = automatic (on for CUDA; on for CPU, where oneDNN convolutions measure
    ~1.3x faster here). amp: bf16 autocast where the device computes bf16 natively (CUDA; a CPU
    with avx512_bf16 or amx_bf16: see `precision`), fp32 elsewhere. compile: torch.compile
    the model. threads: torch CPU threads (None = the CPUs given to the process). eval_every:
    evaluate test/val every k epochs (always after the last). augment: pad-crop + flip.
    """

    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: str = "step"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    warmup_epochs: int = 0
    pct_start: float = 0.15
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    base_momentum: float = 0.85
    label_smoothing: float = 0.0
    channels_last: bool | None = None
    amp: bool = True
    compile: bool = False
    threads: int | None = None
    eval_every: int = 1
    augment: bool = True

    def __post_init__(self):
        _integer("epochs", self.epochs, 1)
        _integer("batch_size", self.batch_size, 1)
        _integer("warmup_epochs", self.warmup_epochs, 0)
        _integer("eval_every", self.eval_every, 1)
        if self.threads is not None:
            _integer("threads", self.threads, 1)
        _number("lr", self.lr, 0.0, math.inf)
        _number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _number("weight_decay", self.weight_decay, 0.0, math.inf)
        _number("gamma", self.gamma, 0.0, 1.0, low_open=True)
        _number("pct_start", self.pct_start, 0.0, 1.0, low_open=True, high_open=True)
        _number("div_factor", self.div_factor, 1.0, math.inf)
        _number("final_div_factor", self.final_div_factor, 1.0, math.inf)
        _number("base_momentum", self.base_momentum, 0.0, 1.0, high_open=True)
        _number("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        choose("schedule", self.schedule, SCHEDULES)
        for name in ("nesterov", "amp", "compile", "augment"):
            if not isinstance(getattr(self, name), bool):
                raise LotteryError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.channels_last is not None and not isinstance(self.channels_last, bool):
            raise LotteryError(f"channels_last must be true, false or None (auto), got {self.channels_last!r}")
        if self.nesterov and self.momentum == 0:
            raise LotteryError("nesterov needs momentum > 0")
        if self.schedule == "onecycle" and self.warmup_epochs:
            raise LotteryError("warmup_epochs must be 0 with schedule onecycle: its warm-up is pct_start")
        if self.schedule == "onecycle" and self.base_momentum > self.momentum:
            raise LotteryError(f"base_momentum ({self.base_momentum}) must not exceed momentum ({self.momentum}): "
                               "one-cycle moves momentum from momentum down to base_momentum at the peak")
        if self.warmup_epochs >= self.epochs:
            raise LotteryError(f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs})")
        try:
            milestones = tuple(float(m) for m in self.milestones)
        except (TypeError, ValueError):
            raise LotteryError(f"milestones must be fractions of epochs, e.g. (0.5, 0.75), got {self.milestones!r}") from None
        if any(not 0 < m <= 1 for m in milestones) or list(milestones) != sorted(milestones):
            raise LotteryError(f"milestones must be increasing fractions of epochs in (0, 1], e.g. (0.5, 0.75), "
                               f"got {self.milestones!r}")
        object.__setattr__(self, "milestones", milestones)

    def milestone_epochs(self) -> tuple[int, ...]:
        """The step schedule's milestones as epoch indices: lr *= gamma when an epoch >= one starts."""
        return tuple(round(m * self.epochs) for m in self.milestones)

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    def result_fields(self) -> dict:
        """The settings that determine the trained weights (see RESULT_FIELDS)."""
        d = asdict(self)
        return {k: (list(d[k]) if isinstance(d[k], tuple) else d[k]) for k in RESULT_FIELDS}


def _integer(name: str, value, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise LotteryError(f"{name} must be an integer >= {low}, got {value!r}")


def _number(name: str, value, low: float, high: float, low_open=False, high_open=False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = ("(" if low_open else "[") + f"{low:g}", f"{high:g}" + (")" if high_open else "]")
        raise LotteryError(f"{name} must be a number in {lo}, {hi}, got {value!r}")
