"""Reading a sweep file: its keys, its base config (a file, a mapping, or `from:` plus overrides),
resources, concurrency, retries, storage; the grid or Optuna part is handed to `points` or
`optuna_space`."""
import json
from pathlib import Path

from lottery_core.errors import LotteryError
from pipelines import yaml_strict
from pipelines.config import apply_overrides
from pipelines.latency_settings import latency_settings
from tune.sweep_file.optuna_space import check_optuna
from tune.sweep_file.points import expand, pin, with_dense
from tune.sweep_file.sweep import Sweep


def check_name(name: str) -> str:
    """The sweep name, checked (`pipelines.tracking.check_sweep_name`; MLflow is imported there)."""
    from pipelines.tracking import check_sweep_name

    return check_sweep_name(name)


KEYS = ("name", "base", "grid", "optuna", "resources", "max_concurrent", "retries", "storage", "latency", "questions")


def load_sweep(path, overrides=(), name: str | None = None) -> Sweep:
    """Read, expand and validate a sweep file; `overrides` (section.key=value) apply to every point."""
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
    storage = raw.get("storage")
    if storage is not None and (not isinstance(storage, str) or not storage.strip()):
        raise LotteryError(f"sweep storage must be a path or a URI such as s3://bucket/sweeps, got {storage!r}")
    sweep = Sweep(name=check_name(name or raw.get("name") or path.stem), base=base,
                  resources=_resources(raw.get("resources", "auto")),
                  max_concurrent=_int(raw, "max_concurrent", 0, 0), retries=_int(raw, "retries", 1, 0),
                  storage=storage, latency=_latency(raw), questions=_questions(raw, path))
    if "grid" in raw:
        sweep.points = with_dense(expand(raw["grid"], base))
    else:
        sweep.optuna = check_optuna(raw["optuna"], base)
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


def _resources(raw) -> dict | str:
    """`auto` (the default: sized at launch from the cluster, `tune.resources`) or {cpu, gpu} per trial."""
    if raw == "auto" or raw is None:
        return "auto"
    if not isinstance(raw, dict):
        raise LotteryError(f"sweep resources must be `auto` or a mapping like {{cpu: 1, gpu: 0.25}}, got {raw!r}")
    unknown = sorted(set(raw) - {"cpu", "gpu"})
    if unknown:
        raise LotteryError(f"unknown resource {unknown[0]!r}; allowed: cpu, gpu")
    cpu, gpu = raw.get("cpu", 1), raw.get("gpu", 0)
    if isinstance(cpu, bool) or not isinstance(cpu, int | float) or cpu <= 0:
        raise LotteryError(f"resources.cpu must be a positive number, got {cpu!r}")
    if isinstance(gpu, bool) or not isinstance(gpu, int | float) or gpu < 0 or (gpu > 1 and gpu != int(gpu)):
        raise LotteryError(f"resources.gpu must be a fraction in [0, 1] or a whole number, got {gpu!r}")
    return {"cpu": cpu, "gpu": gpu}


def _latency(raw: dict) -> dict | None:
    """The `latency:` key: None when absent; a mapping (maybe empty: the defaults, batch sizes 1 and
    128 on the CPU) of `pipelines.latency_settings` keys, validated here."""
    if "latency" not in raw:
        return None
    value = raw["latency"]
    if value is not None and not isinstance(value, dict):
        raise LotteryError(f"sweep latency must be a mapping such as {{batch_sizes: [1, 128]}}, got {value!r}")
    return latency_settings(value).to_dict()


def _int(raw: dict, key: str, default: int, low: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise LotteryError(f"sweep {key} must be an integer >= {low}, got {value!r}")
    return value
