"""The criterion registry: a new criterion is one file plus one `register` line in `__init__`.

A *weight-level* criterion is `f(model, batches, *, option=default, ...) -> {param name: score
tensor}` over the weights of `weight_parameters(model)`; `score_blocks` also sums (or averages)
it over each block. A *block-level* criterion is `f(model, blocks, batches, *, ...) ->
{block: score}`. Both receive a private copy of the model (gradients cleared, BatchNorm mode set,
free to mutate) and the checked list of batches (None when a data-free criterion got none).

Their keyword-only parameters are their options, each declared as an `Option` (type, range,
default, help) in the criterion's own file (`OPTIONS`, next to the function) and handed to
`register`; `check_options` checks them against those declarations and the run config reads
the same ones. The function is named by "module:function" and imported when a criterion
scores, so the registry (names, options, what each needs) is known without importing torch.
"""
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from lottery_core.errors import LotteryError, choose
from lottery_core.lazy import resolve
from lottery_core.options import Option

LEVELS = ("weight", "block")
BN_MODES = ("train", "eval")
# Options every criterion takes, read by the scoring functions themselves (`score.py`).
SCORING_OPTIONS = ("bn_mode", "aggregate", "min_blocks_per_stage")


@dataclass(frozen=True)
class Criterion:
    """One registered criterion: how to call it, what it needs, which options it declares."""

    name: str
    level: str
    function: Callable | str   # the function, or "module:function" imported on first use
    needs_data: bool
    bn_mode: str | None  # BatchNorm mode used when the caller passes none (None: no forward pass)
    summary: str
    reads_labels: bool = False  # the scores depend on the labels y (else only on the images x)
    declared: tuple[Option, ...] = ()   # the criterion's options (its keyword-only parameters)
    bn_modes: tuple[str, ...] = BN_MODES   # the BatchNorm modes it can score in

    @property
    def fn(self) -> Callable:
        """The scoring function (imported here: criteria modules import torch)."""
        return resolve(self.function)

    @property
    def options(self) -> dict[str, object]:
        """Declared options and their defaults."""
        return {o.name: o.default for o in self.declared}


_CRITERIA: dict[tuple[str, str], Criterion] = {}


def register(name: str, fn: Callable | str, *, level: str, needs_data: bool, bn_mode: str | None = "eval",
             summary: str = "", reads_labels: bool = False, options: tuple[Option, ...] = (),
             bn_modes: tuple[str, ...] = BN_MODES) -> None:
    """Make `name` usable by `score_weights` (level="weight") or `score_blocks` (level="block").

    `fn`: the function, or "module:function" (imported when the criterion first scores).
    `options`: the declarations of its keyword-only parameters (the criterion file's `OPTIONS`).
    `reads_labels`: the scores depend on the labels of the scoring batches (a shuffled-labels
    control changes them); False when only the images (or no data) are read. `bn_modes`: the
    BatchNorm modes the criterion can score in (SynFlow: eval only)."""
    choose("criterion level", level, LEVELS)
    for mode in (*bn_modes, *([bn_mode] if bn_mode is not None else [])):
        choose("bn_mode", mode, BN_MODES)
    if (level, name) in _CRITERIA:
        raise LotteryError(f"{level}-level criterion {name!r} is registered twice")
    if not isinstance(reads_labels, bool):
        raise LotteryError(f"reads_labels must be true or false, got {reads_labels!r}")
    if not all(isinstance(o, Option) for o in options):
        raise LotteryError(f"criterion {name!r}: options must be Option declarations")
    if callable(fn):
        check_declarations(name, fn, options)
    summary = summary or (fn.__doc__ or "").split("\n")[0] if callable(fn) else summary
    _CRITERIA[(level, name)] = Criterion(name, level, fn, needs_data, bn_mode, summary, reads_labels,
                                         tuple(options), tuple(bn_modes))


def check_declarations(name: str, fn: Callable, options: tuple[Option, ...]) -> None:
    """LotteryError unless `fn`'s keyword-only parameters are exactly the declared options, with
    the declared defaults (the declaration is the one home of a criterion's options)."""
    params = {p.name: p.default for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}
    declared = {o.name: o.default for o in options}
    if params != declared:
        raise LotteryError(f"criterion {name!r}: its keyword-only parameters {params} differ from its "
                           f"declared options {declared}")


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


def declared_options() -> dict[str, Option]:
    """{name: declaration} of every option some registered criterion declares (one declaration
    per name: two criteria that share an option name share its declaration)."""
    found: dict[str, Option] = {}
    for c in sorted(_CRITERIA.values(), key=lambda c: (c.name, c.level)):
        for o in c.declared:
            if o.name in found and found[o.name] != o:
                raise LotteryError(f"criterion option {o.name!r} is declared twice, differently "
                                   f"({c.name}: {o.allowed()})")
            found.setdefault(o.name, o)
    return found


def known_options() -> set[str]:
    """Every option some registered criterion declares, plus the ones the scoring functions read."""
    return set(SCORING_OPTIONS) | set(declared_options())


def check_options(c: Criterion, options: dict) -> dict:
    """The options `c` reads, each checked against its declaration, plus `bn_mode` (one of the
    modes `c` scores in, or None): the one home of these rules, which the run config's validation
    calls before any run starts and the scoring functions call again. Unknown names raise;
    options of other criteria are dropped (a config carries one value per option name)."""
    unknown = sorted(set(options) - known_options())
    if unknown:
        raise LotteryError(f"unknown criterion option {unknown[0]!r}; options: {', '.join(sorted(known_options()))}")
    mode = options.get("bn_mode")
    if mode is not None:
        choose("bn_mode", mode, BN_MODES)
        if mode not in c.bn_modes:
            raise LotteryError(f"{c.name} needs bn_mode={c.bn_modes[0]!r} (it cannot score in {mode} mode); "
                               f"choose one of: {', '.join(c.bn_modes)}")
    kwargs = {o.name: o.check(options[o.name]) for o in c.declared if o.name in options}
    if "bn_mode" in options:
        kwargs["bn_mode"] = mode
    return kwargs
