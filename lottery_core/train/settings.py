"""How to train: one frozen dataclass, validated once when it is made, against `OPTIONS`.

`OPTIONS` declares every setting's type, range, default and help once; `TrainSettings` checks
itself against them, and the run config (pipelines/config) builds its training section, its
help text and its validation from the same declarations.
"""
import math
from dataclasses import asdict, dataclass, fields

from lottery_core.errors import LotteryError
from lottery_core.options import Option, by_name

SCHEDULES = ("step", "cosine", "onecycle")
INF = math.inf

OPTIONS = (
    Option("epochs", int, 160, "training epochs n of the dense network (tickets train n - i)", low=1),
    Option("batch_size", int, 128, "images per SGD step", low=1),
    Option("lr", float, 0.1, "peak learning rate", low=0.0),
    Option("momentum", float, 0.9, "SGD momentum", low=0.0, high=1.0, high_open=True),
    Option("nesterov", bool, False, "Nesterov momentum (needs momentum > 0)"),
    Option("weight_decay", float, 1e-4, "L2 weight decay (every parameter, as in He et al.)", low=0.0),
    Option("schedule", str, "step", "learning-rate schedule: step, cosine or onecycle (torch's OneCycleLR, "
           "momentum cycling included)", choices=SCHEDULES),
    Option("milestones", float, (0.5, 0.75), "step schedule: fractions of epochs where lr *= gamma",
           low=0.0, low_open=True, high=1.0, sequence=True, increasing=True,
           allowed_text="increasing fractions of the epochs in (0, 1], e.g. [0.5, 0.75]"),
    Option("gamma", float, 0.1, "step schedule decay factor", low=0.0, low_open=True, high=1.0),
    Option("warmup_epochs", int, 0, "linear warm-up epochs (step, cosine; below epochs)", low=0),
    Option("pct_start", float, 0.15, "onecycle: fraction of the steps over which lr rises",
           low=0.0, low_open=True, high=1.0, high_open=True),
    Option("div_factor", float, 25.0, "onecycle: the first lr is lr / div_factor", low=1.0),
    Option("final_div_factor", float, 1e4, "onecycle: the last lr is lr / (div_factor * final_div_factor)",
           low=1.0),
    Option("base_momentum", float, 0.85, "onecycle: momentum at the lr peak (momentum at both ends; "
           "at most momentum)", low=0.0, high=1.0, high_open=True),
    Option("label_smoothing", float, 0.0, "label smoothing of the training loss", low=0.0, high=1.0,
           high_open=True),
    Option("channels_last", bool, None, "channels-last memory format; null = automatic", optional=True),
    Option("amp", bool, True, "bf16 autocast where the device computes bf16 natively (CUDA, CPUs with "
           "avx512_bf16/amx_bf16)"),
    Option("compile", bool, False, "torch.compile the model (GPU runs)"),
    Option("threads", int, None, "torch CPU threads; null = the CPUs given to the process", low=1, optional=True),
    Option("eval_every", int, 1, "evaluate test/val every k epochs (always after the last)", low=1),
    Option("augment", bool, True, "pad-crop + flip augmentation"),
)
DECLARED = by_name(OPTIONS)

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
    channels_last: None = DECLARED["channels_last"].default
    ~1.3x faster here). amp: bf16 autocast where the device computes bf16 natively (CUDA; a CPU
    with avx512_bf16 or amx_bf16: see `precision`), fp32 elsewhere. compile: torch.compile
    the model. threads: torch CPU threads (None = the CPUs given to the process). eval_every:
    evaluate test/val every k epochs (always after the last). augment: pad-crop + flip.
    """

    epochs: int   # required (the declaration's default, 160, is the run config's)
    batch_size: int = DECLARED["batch_size"].default
    lr: float = DECLARED["lr"].default
    momentum: float = DECLARED["momentum"].default
    nesterov: bool = DECLARED["nesterov"].default
    weight_decay: float = DECLARED["weight_decay"].default
    schedule: str = DECLARED["schedule"].default
    milestones: tuple[float, ...] = DECLARED["milestones"].default
    gamma: float = DECLARED["gamma"].default
    warmup_epochs: int = DECLARED["warmup_epochs"].default
    pct_start: float = DECLARED["pct_start"].default
    div_factor: float = DECLARED["div_factor"].default
    final_div_factor: float = DECLARED["final_div_factor"].default
    base_momentum: float = DECLARED["base_momentum"].default
    label_smoothing: float = DECLARED["label_smoothing"].default
    channels_last: bool | None = None
    amp: bool = DECLARED["amp"].default
    compile: bool = DECLARED["compile"].default
    threads: int | None = DECLARED["threads"].default
    eval_every: int = DECLARED["eval_every"].default
    augment: bool = DECLARED["augment"].default

    def __post_init__(self):
        for f in fields(self):   # each value against its declaration (OPTIONS): type and range
            object.__setattr__(self, f.name, DECLARED[f.name].check(getattr(self, f.name)))
        check_combination(self)

    def milestone_epochs(self) -> tuple[int, ...]:
        """The step schedule's milestones as epoch indices: lr *= gamma when an epoch >= one starts."""
        return tuple(round(m * self.epochs) for m in self.milestones)

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    def result_fields(self) -> dict:
        """The settings that determine the trained weights (see RESULT_FIELDS)."""
        d = asdict(self)
        return {k: (list(d[k]) if isinstance(d[k], tuple) else d[k]) for k in RESULT_FIELDS}


def check_combination(s) -> None:
    """The rules that tie settings together (each value alone is checked against OPTIONS): what
    `s` (TrainSettings, or the run config's training section) must satisfy as a whole."""
    if s.nesterov and s.momentum == 0:
        raise LotteryError("nesterov needs momentum > 0")
    if s.schedule == "onecycle" and s.warmup_epochs:
        raise LotteryError("warmup_epochs must be 0 with schedule onecycle: its warm-up is pct_start")
    if s.schedule == "onecycle" and s.base_momentum > s.momentum:
        raise LotteryError(f"base_momentum ({s.base_momentum}) must not exceed momentum ({s.momentum}): "
                           "one-cycle moves momentum from momentum down to base_momentum at the peak")
    if s.warmup_epochs >= s.epochs:
        raise LotteryError(f"warmup_epochs ({s.warmup_epochs}) must be smaller than epochs ({s.epochs})")
