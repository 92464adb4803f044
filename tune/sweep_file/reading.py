"""Reading a sweep file: its keys, its base config (a file, a mapping, or `from:` plus overrides);
resources, concurrency, retries and storage are built by `settings`, the latency pass by
`pipelines.latency_settings`, the grid or Optuna part by `points` or `optuna_space`."""
import json
from pathlib import Path

from lottery_core.errors import LotteryError
from pipelines import yaml_strict
from pipelines.config import apply_overrides, build_config
from pipelines.latency_settings import latency_settings
from tune.sweep_file.optuna_space import check_optuna
from tune.sweep_file.points import expand, pin, with_dense
from tune.sweep_file.settings import sweep_settings, trial_resources
from tune.sweep_file.sweep import Sweep


def check_name(name: str) -> str:
    """The sweep name, checked (`pipelines.tracking.check_sweep_name`; MLflow is imported there)."""
    from pipelines.tracking import check_sweep_name

    return check_sweep_name(name)


KEYS = ("name", "base", "grid", "optuna", "resources", "max_concurrent", "retries", "storage", "latency", "questions")


def load_sweep(path, overrides=(), name: str | None = None) -> Sweep:
    """Read, expand and validate a sweep file; `overrides` (section.key=value) apply to every point.
    The edge of a sweep: each trial's config is built here, once (`points.expand`, `RunConfig.dense`),
    and travels as that frozen RunConfig to the driver and the trial."""
    path = Path(path)
    raw = yaml_strict.read_mapping(path, "sweep", f"a mapping with keys {', '.join(KEYS)}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise LotteryError(f"unknown sweep key {unknown[0]!r} in {path.name}; allowed: {', '.join(KEYS)}")
    if ("grid" in raw) == ("optuna" in raw):
        raise LotteryError(f"sweep {path.name}: give exactly one of 'grid' or 'optuna'")
    base = _base(raw.get("base"), path)
    apply_overrides(base, overrides)
    pin(base)
    settings = sweep_settings(raw)
    sweep = Sweep(name=check_name(name or raw.get("name") or path.stem), base=base,
                  resources=trial_resources(raw.get("resources", "auto")),
                  max_concurrent=settings.max_concurrent, retries=settings.retries, storage=settings.storage,
                  latency=_latency(raw), questions=_questions(raw, path))
    if "grid" in raw:
        sweep.points = with_dense(expand(raw["grid"], base))
    else:
        sweep.search_base = build_config(base)
        sweep.optuna = check_optuna(raw["optuna"], sweep.search_base)
    return sweep


def _questions(raw: dict, path: Path) -> dict | None:
    """The sweep's declared questions (`pipelines.report.questions`), validated now and kept as
    plain values: the report reads them back from the sweep's record."""
    from pipelines.report.questions import read_questions

    if raw.get("questions") is None:
        return None
    questions = read_questions(raw["questions"], f"{path.name}: questions")
    return {"questions": [q.to_dict() for q in questions]}


def _base(value, path: Path) -> dict:
    """The base config: a file, a mapping, or a mapping whose `from:` names a file it overrides."""
    if value is None:
        return {}
    if isinstance(value, str):
        return _read_config(value, path)
    if isinstance(value, dict):
        value = json.loads(json.dumps(value))
        source = value.pop("from", None)
        merged = _read_config(source, path) if source else {}
        _merge(merged, value)
        return merged
    raise LotteryError(f"sweep 'base' must be a config path or a mapping, got {value!r}")


def _read_config(value: str, path: Path) -> dict:
    file = Path(value) if Path(value).is_absolute() else path.parent / value
    if not file.is_file() and Path(value).is_file():
        file = Path(value)  # relative to the working folder
    if not file.is_file():
        raise LotteryError(f"sweep base config not found: {value} (relative to {path.parent.resolve()} "
                           f"or the working folder)")
    return yaml_strict.read_mapping(file, "sweep base config", "a mapping of sections, got {got}")


def _merge(into: dict, other: dict) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _latency(raw: dict) -> dict | None:
    """The `latency:` key: None when absent; a mapping (maybe empty: the defaults, batch sizes 1 and
    128 on the CPU) of `pipelines.latency_settings` keys, validated here."""
    return latency_settings(raw["latency"]).to_dict() if "latency" in raw else None
