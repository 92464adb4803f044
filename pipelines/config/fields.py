"""Config fields: each carries its `Option` declaration (type, range, default, help) and whether it
is part of a run's identity; `help_text` and `flatten` read them."""
from dataclasses import field, fields, is_dataclass
from typing import Any

from lottery_core.options import Option


def option(default, help: str = "", *, kind: type | None = None, choices=None, low=None, high=None,
           identity: bool = True, sequence: bool = False, optional: bool | None = None, **extra):
    """A config field declared here (a setting only the pipelines read), e.g. `pruning.p`."""
    if isinstance(default, list | dict):
        raise TypeError("use tuples for sequence defaults")
    if kind is None:
        sample = default[0] if sequence and default else default
        kind = type(sample) if sample is not None else int
    decl = Option("", kind, default, help, low=low, high=high, choices=choices, sequence=sequence,
                  optional=default is None if optional is None else optional, **extra)
    return field(default=default, metadata={"option": decl, "identity": identity})


def declared(decl: Option, *, identity: bool = True, help: str | None = None):
    """A config field whose rules are declared by the library (train settings, criterion options):
    the config checks, documents and defaults it from that one declaration."""
    if help:
        from dataclasses import replace

        decl = replace(decl, help=help)
    return field(default=decl.default, metadata={"option": decl, "identity": identity})


def declaration(f) -> Option | None:
    return f.metadata.get("option")


def help_text(cls, prefix: str = "", extra: dict | None = None) -> list[str]:
    """One line per field: `section.key (default): help [choices]`; `extra`: {section prefix: lines}."""
    lines = []
    for f in fields(cls):
        if isinstance(f.default_factory, type) and is_dataclass(f.default_factory):
            lines += help_text(f.default_factory, f"{prefix}{f.name}.", extra)
        elif declaration(f) is not None:
            decl = declaration(f)
            lines.append(f"{prefix}{f.name} ({f.default!r}): {decl.help} [{decl.allowed()}]")
    return lines + list((extra or {}).get(prefix, ()))


def flatten(obj, prefix: str = "") -> dict[str, Any]:
    """Every field as `section.key: value` (tuples as lists), e.g. for MLflow params."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out.update(flatten(value, f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = plain(value)
    return out


def plain(value):
    """`value` with tuples as lists, nested ones too (as JSON, YAML and MLflow params hold them)."""
    return [plain(v) for v in value] if isinstance(value, tuple) else value
