"""Loading a run config: a YAML file or a mapping, then `section.key=value` overrides, validated.

    cfg = load_config("configs/quick/resnet32_ticket_init.yaml", overrides=["pruning.p=3", "seed=1"])
    cfg.with_overrides({"pruning.p": 2})    # a new config, validated again
"""
import json
from pathlib import Path

from lottery_core.errors import LotteryError
from pipelines import yaml_strict
from pipelines.config.building import STAGE_COUNT, gather_stage_counts, set_dotted
from pipelines.config.schema import build_config

__all__ = ["STAGE_COUNT", "apply_overrides", "gather_stage_counts", "load_config", "set_dotted", "with_overrides"]


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


def with_overrides(cfg, overrides: dict):
    """`cfg` with `{"section.key": value}` set, validated again as a whole (cross-section rules too);
    the same as `cfg.with_overrides(overrides)`."""
    return cfg.with_overrides(overrides)


def apply_overrides(raw: dict, overrides) -> None:
    """Set each `section.key=value` in `raw`, the value read as strict YAML (`1e-3` is a number)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LotteryError(f"override {item!r} is not of the form section.key=value")
        set_dotted(raw, key.strip(), yaml_strict.loads(value, f"--set {item}") if value.strip() else None)
