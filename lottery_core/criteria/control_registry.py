"""The control registry: what a criterion's block choice is compared with (Frankle et al. 2021,
Su et al. 2020). A new control is one function plus one `register_control` line in `criteria/__init__`.

A control changes one step of planning a block ticket. `acts_on` says which, and fixes the
signature of its function (the pure functions of `controls`):

    "scoring_data"  f(batches, seed) -> batches         the criterion scores other data
                                                         (shuffled_labels, random_inputs)
    "scores"        f(scores) -> scores                  the p lowest of other scores go (inverted)
    "choice"        f(removed, model, seed, min_blocks_per_stage) -> removed
                                                         the criterion's choice is replaced by
                                                         another of the same shape (same_stage_random)
    "blocks"        f(model, p, min_blocks_per_stage) -> removed
                                                         no criterion at all (uniform)

`seed` is the run's draw seed (`controls.draw_seed(seed, draw)`). What the config and the report
derive from a declaration: a control that `draws` makes `pruning.draw` part of the run identity; a
"blocks" control reads no criterion (the criterion and its scoring options leave the identity, and
the run is named by the control); `stage_counts` says whether planned per-stage counts apply;
`needs` names the criterion trait it needs (`Criterion.reads_labels`, `Criterion.needs_data`).

Like the criteria registry, this module imports no torch: the functions are named by
"module:function" and imported when a run plans its ticket.
"""
from collections.abc import Callable
from dataclasses import dataclass

from lottery_core.errors import LotteryError
from lottery_core.lazy import resolve

NONE = "none"   # the config's value for "no control: the criterion's p lowest"
ACTS_ON = ("scoring_data", "scores", "choice", "blocks")
NEEDS = ("reads_labels", "needs_data")   # criterion traits (`registry.Criterion`) a control may need


@dataclass(frozen=True)
class Control:
    """One registered control: how it changes the plan, what it reads and draws."""

    name: str
    acts_on: str
    function: Callable | str   # the function, or "module:function" imported on first use
    summary: str
    draws: bool = False          # random, seeded by (seed, pruning.draw)
    stage_counts: bool = False   # planned per-stage counts (pruning.stage_counts) apply
    needs: str | None = None     # a criterion trait it needs, one of NEEDS

    @property
    def fn(self) -> Callable:
        return resolve(self.function)

    @property
    def reads_criterion(self) -> bool:
        """Whether the criterion's scores decide anything (every kind but "blocks")."""
        return self.acts_on != "blocks"


_CONTROLS: dict[str, Control] = {}


def register_control(name: str, fn: Callable | str, *, acts_on: str, summary: str, draws: bool = False,
                     stage_counts: bool = False, needs: str | None = None) -> None:
    """Make `name` a value of `pruning.control` (see the module doc for `acts_on` and the traits)."""
    if acts_on not in ACTS_ON:
        raise LotteryError(f"control {name!r}: acts_on must be one of {', '.join(ACTS_ON)}, got {acts_on!r}")
    if needs is not None and needs not in NEEDS:
        raise LotteryError(f"control {name!r}: needs must be one of {', '.join(NEEDS)} or None, got {needs!r}")
    if name == NONE or name in _CONTROLS:
        raise LotteryError(f"control {name!r} is registered twice (or is the reserved name {NONE!r})")
    _CONTROLS[name] = Control(name, acts_on, fn, summary, draws, stage_counts, needs)


def control_names() -> tuple[str, ...]:
    """Every value `pruning.control` takes: "none" first, then the controls in registration order."""
    return (NONE, *_CONTROLS)


def get_control(name: str) -> Control | None:
    """The registered control `name`, None for "none"; LotteryError for an unknown name."""
    if name == NONE:
        return None
    if name not in _CONTROLS:
        raise LotteryError(f"unknown pruning.control {name!r}; choose one of: {', '.join(control_names())}")
    return _CONTROLS[name]


def describe_controls() -> dict[str, str]:
    """{name: one-line summary} of every registered control (for `lottery info`)."""
    return {c.name: c.summary for c in _CONTROLS.values()}
