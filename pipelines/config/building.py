"""Building a config section from a nested mapping, every field checked against its declaration,
and back (`to_raw`); dotted keys (`section.key`) in such mappings. Errors are one line naming the
dotted field. The rules that span fields are `checks`', applied by `schema.build_config`; this
module knows the sections (`sections`), never `RunConfig`, so the schema can hand off to it.
"""
import re
from dataclasses import fields, is_dataclass
from typing import get_type_hints

from lottery_core.errors import LotteryError
from pipelines.config.fields import declaration, plain
from pipelines.config.sections import PruningConfig

# criterion options the pipelines pass themselves (the random draws' seed): not settable in a config
SUPPLIED_BY_PIPELINES = ("seed",)


def build_section(raw: dict, cls, prefix: str = ""):
    """Construct `cls` (a config dataclass) from a nested dict, each field checked against its
    declaration, nested sections built alike; errors name the dotted field."""
    if not isinstance(raw, dict):
        raise LotteryError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {raw!r}")
    known = {f.name: f for f in fields(cls) if not (cls is PruningConfig and f.name == "options")}
    extra = {}
    if cls is PruningConfig:   # options a criterion declares, given as pruning.NAME
        extra = {k: raw[k] for k in raw if k not in known and k in settable_criterion_options()}
    unknown = sorted(set(raw) - set(known) - set(extra))
    if unknown:
        allowed = list(known) + (sorted(settable_criterion_options()) if cls is PruningConfig else [])
        raise LotteryError(f"unknown config key '{prefix}{unknown[0]}'; "
                           f"allowed in {prefix.rstrip('.') or 'the top level'}: {', '.join(allowed)}")
    hints = get_type_hints(cls)
    values = {}
    for name, value in raw.items():
        if name in extra:
            continue
        tp = hints[name]
        if isinstance(tp, type) and is_dataclass(tp):
            values[name] = build_section(value or {}, tp, f"{prefix}{name}.")
        else:
            values[name] = check_field(declaration(known[name]), value, f"{prefix}{name}")
    if extra:
        options = declared_criterion_options()
        values["options"] = tuple(sorted((k, check_field(options[k], v, f"{prefix}{k}")) for k, v in extra.items()
                                         if v != options[k].default))
    return cls(**values)


def check_field(decl, value, label: str):
    """`value` checked against the field's declaration (a scalar given for a list is a list of one)."""
    if decl.sequence and value is not None and not isinstance(value, list | tuple):
        value = [value]
    return decl.check(value, label)


def declared_criterion_options() -> dict:
    """Every option the registered criteria declare (read now: a test may register a criterion)."""
    from lottery_core.criteria import registry

    return registry.declared_options()


def settable_criterion_options() -> set[str]:
    """Declared criterion options a config may set as `pruning.NAME`, beyond the section's fields."""
    return set(declared_criterion_options()) - set(PruningConfig.__dataclass_fields__) - set(SUPPLIED_BY_PIPELINES)


def to_raw(cfg) -> dict:
    """The nested mapping `build_config` turns back into `cfg` (criterion options as pruning.NAME)."""
    out = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if is_dataclass(value):
            out[f.name] = to_raw(value)
        elif isinstance(cfg, PruningConfig) and f.name == "options":
            out.update({k: plain(v) for k, v in value})
        else:
            out[f.name] = plain(value)
    return out


STAGE_COUNT = re.compile(r"pruning\.stage_counts\.([0-9]+)")


def gather_stage_counts(values: dict) -> dict:
    """`{"pruning.stage_counts.1": a, ".2": b, ...}` (stage N, 1-based, every stage once) as
    `{"pruning.stage_counts": [a, b, ...], "pruning.p": a + b + ...}`; other keys unchanged."""
    stages = {int(m.group(1)): v for k, v in values.items() if (m := STAGE_COUNT.fullmatch(k))}
    if not stages:
        return dict(values)
    if sorted(stages) != list(range(1, len(stages) + 1)):
        raise LotteryError(f"pruning.stage_counts.N keys must name stages 1 to {max(stages)} each once, got "
                           f"stages {sorted(stages)}")
    counts = [stages[n] for n in sorted(stages)]
    kept = {k: v for k, v in values.items() if not STAGE_COUNT.fullmatch(k)}
    total = sum(c for c in counts if isinstance(c, int))   # a bad count: stage_counts' own check says so
    return {**kept, "pruning.stage_counts": counts, "pruning.p": total}


def set_dotted(raw: dict, key: str, value) -> None:
    """`raw[a][b] = value` for key "a.b" (sections created as needed)."""
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise LotteryError(f"override {key!r}: {part!r} is not a section")
    node[leaf] = value
