"""The criterion registry: a new criterion is one file plus one `register` line in `__init__`.

A *weight-level* criterion is `f(model, batches, *, option=default, ...) -> {param name: score
tensor}` over the weights of `weight_parameters(model)`; `score_blocks` also sums (or averages)
it over each block. A *block-level* criterion is `f(model, blocks, batches, *, ...) ->
{block: score}`. Both receive a private copy of the model (gradients cleared, BatchNorm mode set,
free to mutate) and the checked list of batches (None when a data-free criterion got none).
Their keyword-only parameters are their options.
"""
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from lottery_core.errors import LotteryError, choose

LEVELS = ("weight", "block")
BN_MODES = ("train", "eval")


@dataclass(frozen=True)
class Criterion:
    """One registered criterion: how to call it and what it needs."""

    name: str
    level: str
    fn: Callable
    needs_data: bool
    bn_mode: str | None  # BatchNorm mode used when the caller passes none (None: no forward pass)
    summary: str
    reads_labels: bool = False  # the scores depend on the labels y (else only on the images x)

    @property
    def options(self) -> dict[str, object]:
        """Keyword-only options and their defaults."""
        params = inspect.signature(self.fn).parameters.values()
        return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


_CRITERIA: dict[tuple[str, str], Criterion] = {}


def register(name: str, fn: Callable, *, level: str, needs_data: bool, bn_mode: str | None = "eval",
             summary: str = "", reads_labels: bool = False) -> None:
    """Make `name` usable by `score_weights` (level="weight") or `score_blocks` (level="block").

    `reads_labels`: the scores depend on the labels of the scoring batches (a shuffled-labels
    control changes them); False when only the images (or no data) are read."""
    choose("criterion level", level, LEVELS)
    if bn_mode is not None:
        choose("bn_mode", bn_mode, BN_MODES)
    if (level, name) in _CRITERIA:
        raise LotteryError(f"{level}-level criterion {name!r} is registered twice")
    if not isinstance(reads_labels, bool):
        raise LotteryError(f"reads_labels must be true or false, got {reads_labels!r}")
    _CRITERIA[(level, name)] = Criterion(name, level, fn, needs_data, bn_mode,
                                         summary or (fn.__doc__ or "").split("\n")[0], reads_labels)


def names(level: str | None = None) -> list[str]:
    """Sorted criterion names. "weight": per-weight scores; "block": every name `score_blocks`
    takes (block-level criteria and the weight-level ones, aggregated); None: both."""
    if level is not None:
        choose("criterion level", level, LEVELS)
    weight = {n for lv, n in _CRITERIA if lv == "weight"}
    block = {n for lv, n in _CRITERIA if lv == "block"}
    return sorted(weight if level == "weight" else weight | block)


def get(name: str, level: str) -> Criterion:
    """The criterion `score_blocks` (level="block") or `score_weights` (level="weight") runs for `name`.

    At block level a block-level registration wins (e.g. "random": one draw per block), else the
    weight-level one is returned and aggregated by the caller.
    """
    if level == "weight" and ("weight", name) not in _CRITERIA and ("block", name) in _CRITERIA:
        raise LotteryError(f"criterion {name!r} scores whole blocks, not weights; weight-level criteria: "
                           f"{', '.join(names('weight'))}")
    choose("criterion", name, names(level))
    if level == "block" and ("block", name) in _CRITERIA:
        return _CRITERIA[("block", name)]
    return _CRITERIA[("weight", name)]


def describe(level: str = "block") -> dict[str, str]:
    """{name: one-line summary} of every criterion `names(level)` lists (for `lottery info`)."""
    return {n: get(n, level).summary for n in names(level)}


def known_options() -> set[str]:
    """Every option some registered criterion reads, plus the ones the scoring functions read."""
    found = {"bn_mode", "aggregate", "min_blocks_per_stage"}
    for c in _CRITERIA.values():
        found |= set(c.options)
    return found
