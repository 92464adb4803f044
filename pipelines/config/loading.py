"""Loading a run config: a YAML file or a mapping, then `section.key=value` overrides, validated.

    cfg = load_config("configs/quick/resnet32_ticket_init.yaml", overrides=["pruning.p=3", "seed=1"])
    cfg.with_overrides({"pruning.p": 2})    # a new config, validated again
"""
import json
import re
from pathlib import Path

from lottery_core.errors import LotteryError
from pipelines import yaml_strict
from pipelines.config.building import build_config, to_raw


def load_config(source: str | Path | dict | None = None, overrides: list[str] | tuple[str, ...] = ()):
    """A validated RunConfig from a YAML file or dict, then `section.key=value` overrides."""
    if source is None:
        raw: dict = {}
    elif isinstance(source, dict):
        raw = json.loads(json.dumps(source, default=list))  # deep copy, tuples -> lists
    else:
        raw = yaml_strict.read_mapping(source, "config", "a mapping of sections, got {got}")
    apply_overrides(raw, overrides)
    return build_config(raw)


STAGE_COUNT = re.compile(r"pruning\.stage_counts\.([0-9]+)")


def with_overrides(cfg, overrides: dict):
    """`cfg` with `{"section.key": value}` set, validated again as a whole (cross-section rules too).
    Keys `pruning.stage_counts.N` (one per stage, as an Optuna search samples them) are gathered
    by `gather_stage_counts`."""
    raw = to_raw(cfg)
    for key, value in gather_stage_counts(overrides).items():
        set_dotted(raw, key, value)
    return build_config(raw)


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


def apply_overrides(raw: dict, overrides) -> None:
    """Set each `section.key=value` in `raw`, the value read as strict YAML (`1e-3` is a number)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LotteryError(f"override {item!r} is not of the form section.key=value")
        set_dotted(raw, key.strip(), yaml_strict.loads(value, f"--set {item}") if value.strip() else None)


def set_dotted(raw: dict, key: str, value) -> None:
    """`raw[a][b] = value` for key "a.b" (sections created as needed)."""
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise LotteryError(f"override {key!r}: {part!r} is not a section")
    node[leaf] = value
