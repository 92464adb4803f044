"""A declared setting: name, type, allowed range or choices, default and help, checked in one place.

    TEMPERATURE = Option("temperature", float, 200.0, "GraSP softmax temperature", low=0.0, low_open=True)
    TEMPERATURE.check(0.0)          # LotteryError: temperature must be a number in (0, inf), got 0.0

The library declares its settings with `Option` (train settings, criterion options) and checks
them with `check`; the run config reads the same declarations for its fields, its help text and
its validation, so a value the config accepts is never refused by the library later. Imports
nothing heavy: the `lottery` command validates a config before torch is imported.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass

from lottery_core.errors import LotteryError

KINDS = (int, float, str, bool)


@dataclass(frozen=True)
class Option:
    """One setting. `kind`: int, float, str or bool. `low`/`high`: inclusive bounds unless
    `low_open`/`high_open`. `choices`: the allowed values of a str (or a function that lists
    them, such as a registry's names). `optional`: None is allowed
    (it means "automatic" or "all"). `sequence`: a tuple of `kind` values, each in range;
    `increasing`: a sequence must be strictly increasing; `min_distinct`: it needs at least that
    many distinct values."""

    name: str
    kind: type
    default: object
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | Callable[[], tuple] | None = None   # or a registry's names, read when checked
    optional: bool = False
    sequence: bool = False
    increasing: bool = False
    min_distinct: int = 0             # a sequence needs at least this many distinct values
    allowed_text: str | None = None   # how to say what is allowed, where the generated words are poor

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TypeError(f"option {self.name}: kind must be one of {KINDS}")
        if not self.help:
            raise TypeError(f"option {self.name} needs a help text")

    def choice_values(self) -> tuple | None:
        """The allowed values of a str: `choices`, or what a registry's `choices()` lists now."""
        return self.choices() if callable(self.choices) else self.choices

    def allowed(self) -> str:
        """What is allowed, in words: `a number in (0, inf)`, `an integer >= 1`, `one of: a, b`."""
        if self.allowed_text:
            return self.allowed_text
        if self.choices is not None:
            text = f"one of: {', '.join(map(str, self.choice_values()))}"
        elif self.kind is bool:
            text = "true or false"
        elif self.kind is str:
            text = "a string"
        else:
            noun = "an integer" if self.kind is int else "a number"
            if self.low is not None and self.high is None and not self.low_open:
                text = f"{noun} >= {_g(self.low)}"
            elif self.low is None and self.high is None:
                text = noun if self.kind is int else "a finite number"
            else:
                lo = "(" if self.low_open or self.low is None else "["
                hi = ")" if self.high_open or self.high is None else "]"
                low = "-inf" if self.low is None else _g(self.low)
                high = "inf" if self.high is None else _g(self.high)
                text = f"{noun} in {lo}{low}, {high}{hi}"
        if self.sequence:
            text = f"a list of {text.replace('a number', 'numbers').replace('an integer', 'integers')}"
            if self.increasing:
                text += ", in increasing order"
        return text + (" (or null)" if self.optional else "")

    def check(self, value, label: str | None = None):
        """`value` as this option holds it (ints as floats for a float, lists as tuples), or a
        one-line LotteryError naming `label` (default: the name), the value and what is allowed."""
        label = label or self.name
        if value is None and self.optional:
            return None
        if self.sequence:
            items = value if isinstance(value, list | tuple) else None
            if items is None:
                raise self.refuse(value, label)
            result = tuple(self._one(v, label, value) for v in items)
            if self.increasing and any(a > b for a, b in zip(result, result[1:], strict=False)):
                raise self.refuse(value, label)
            if len(set(result)) < self.min_distinct:
                raise self.refuse(value, label)
            return result
        return self._one(value, label, value)

    def _one(self, item, label: str, whole):
        if self.kind is bool:
            ok = isinstance(item, bool)
        elif self.kind is int:
            ok = isinstance(item, int) and not isinstance(item, bool)
        elif self.kind is float:
            ok = isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item)
            item = float(item) if ok else item
        else:
            ok = isinstance(item, str)
        if ok and self.choices is not None:
            ok = item in self.choice_values()
        if ok and self.kind in (int, float):
            ok = self.low is None or (item > self.low if self.low_open else item >= self.low)
            ok = ok and (self.high is None or (item < self.high if self.high_open else item <= self.high))
        if not ok:
            raise self.refuse(whole, label)
        return item

    def refuse(self, value, label: str | None = None) -> LotteryError:
        """The one-line error for a refused `value`: `unknown x 'v'; choose one of: ...` for a
        choice, else `x must be <allowed>, got v`."""
        label = label or self.name
        if self.choices is not None and not self.sequence and not self.allowed_text:
            return LotteryError(f"unknown {label} {value!r}; choose one of: {', '.join(map(str, self.choice_values()))}")
        shown = list(value) if isinstance(value, tuple) else value
        return LotteryError(f"{label} must be {self.allowed()}, got {shown!r}")


def _g(x: float) -> str:
    return f"{x:g}"


def by_name(options) -> dict[str, Option]:
    """{name: Option} of a tuple of declarations."""
    return {o.name: o for o in options}
