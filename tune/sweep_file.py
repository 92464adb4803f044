"""Sweep files: a base config plus a grid (or an Optuna search), resources, concurrency, retries.

    name: demo                      # optional; `lottery sweep --name` overrides; default: the file name
    base: ../../configs/quick/resnet32_ticket_init.yaml    # a config file (relative to this file),
                                    # a mapping, or a mapping with `from: <file>` plus overrides
    grid:                           # any dotted config field -> list of values (cartesian product);
      pipeline: [ticket_init]       # or a list of such mappings (their union)
      pruning.criterion: [grasp, snip]
      pruning.p: [1, 2, 3]
      seed: [0, 1, 2]
    resources: {cpu: 1, gpu: 0}     # per trial; gpu may be a fraction (0.25: four trials share a GPU)
    max_concurrent: 2               # 0 (default): as many as the resources allow
    retries: 1                      # a failed trial is retried from its last checkpoint, this many times
    storage: s3://bucket/sweeps     # Ray Tune's storage (default <results_dir>/ray)

or, instead of `grid`, an Optuna search:

    optuna:
      space: {pruning.p: {type: int, low: 1, high: 5}, pruning.criterion: {type: categorical, choices: [grasp, snip]}}
      metrics: [acc, macs]          # final metrics of a run (see pipelines.evaluation)
      modes: [max, min]
      num_samples: 12

Every grid point is validated before anything starts; invalid points are all listed, none dropped.
The dense baselines the tickets compare against are added once per dense identity (model, data,
training, seed), never once per ticket, and run first (see `Sweep.phases`).
"""
import functools
import itertools
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lottery_core.errors import LotteryError
from pipelines import yaml_strict
from pipelines.config import (
    DataConfig,
    RunConfig,
    TrackingConfig,
    apply_overrides,
    build_config,
    set_dotted,
)
from pipelines.context import data_fingerprint
from pipelines.evaluation import metric_problem
from pipelines.tracking import check_sweep_name as check_name
from pipelines.tracking import tracking_uri

KEYS = ("name", "base", "grid", "optuna", "resources", "max_concurrent", "retries", "storage")
OPTUNA_KEYS = ("space", "metrics", "modes", "num_samples", "seed")
SPACE_TYPES = ("int", "float", "categorical")


@dataclass
class Sweep:
    """A validated sweep: its trial configs (nested dicts) or an Optuna search, and how to run them."""

    name: str
    base: dict
    points: list[dict] = field(default_factory=list)  # grid: every trial, dense baselines first
    optuna: dict | None = None
    resources: dict = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    max_concurrent: int = 0
    retries: int = 1
    storage: str | None = None

    def phases(self) -> list[list[dict]]:
        """The Tune experiments of the sweep, run one after the other.

        Every ticket pipeline compares itself with its finished dense run when it is evaluated
        (Δ accuracy, speed-up, CKA; ticket_rewind even starts from the dense run's weights), so
        the dense baselines are phase 0 and the tickets phase 1. An Optuna sweep's phase 1 is
        the search (its points are drawn by Optuna); a sweep of only one kind has one phase.
        """
        if self.optuna is not None:
            dense = self.optuna.get("dense")
            return [[dense], []] if dense else [[]]
        dense = [p for p in self.points if p.get("pipeline") == "dense"]
        tickets = [p for p in self.points if p.get("pipeline") != "dense"]
        return [phase for phase in (dense, tickets) if phase]

    def describe(self) -> str:
        if self.optuna is not None:
            extra = " after 1 dense baseline" if self.optuna.get("dense") else ""
            return f"an Optuna search of {self.optuna['num_samples']} trials{extra}"
        dense = sum(p.get("pipeline") == "dense" for p in self.points)
        return f"{len(self.points)} trials ({dense} dense baselines first)"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Sweep":
        return cls(**data)


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
                  resources=_resources(raw.get("resources") or {}),
                  max_concurrent=_int(raw, "max_concurrent", 0, 0), retries=_int(raw, "retries", 1, 0),
                  storage=storage)
    if "grid" in raw:
        sweep.points = with_dense(expand(raw["grid"], base))
    else:
        sweep.optuna = _optuna(raw["optuna"], base)
    return sweep


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


PATH_FIELDS = ("data.root", "tracking.results_dir", "evaluation.cifar10_c_dir", "evaluation.cifar10_1_dir",
               "evaluation.cifar10_2_dir")


def pin(point: dict) -> None:
    """Make a point mean the same on every worker: absolute paths (a trial runs in its own working
    folder, on any node), the data folder and tracking URI the driver sees (its environment
    variables do not travel to a cluster's workers)."""
    for key in PATH_FIELDS:
        section, leaf = key.split(".")
        value = (point.get(section) or {}).get(leaf) if isinstance(point.get(section), dict | None) else None
        if key == "data.root" and value is None and os.environ.get("LOTTERY_DATA_DIR"):
            value = os.environ["LOTTERY_DATA_DIR"]
        if key == "tracking.results_dir" and value is None:
            value = "lottery-runs"
        if isinstance(value, str) and "://" not in value:
            set_dotted(point, key, str(Path(value).expanduser().resolve()))
    _pin_fingerprint(point)
    tracking = point.get("tracking") or {}
    if isinstance(tracking, dict):
        try:
            uri = tracking_uri(RunConfig(tracking=build_config(tracking, TrackingConfig, "tracking.")))
        except LotteryError:
            return  # reported with the point's other errors
        set_dotted(point, "tracking.tracking_uri", uri)


def _pin_fingerprint(point: dict) -> None:
    """Record the data's fingerprint when the driver can read the data folder (trials check it;
    where the driver cannot, each trial records the one it reads)."""
    data = point.get("data") if isinstance(point.get("data"), dict) else {}
    root = data.get("root")
    if data.get("fingerprint") is None and isinstance(root, str) and "://" not in root and Path(root).is_dir():
        try:
            found, _ = data_fingerprint(str(data.get("name", DataConfig.name)), root)
        except LotteryError:
            return  # reported with the point's other errors, or by the trial
        set_dotted(point, "data.fingerprint", found)


def config_of(point: dict) -> RunConfig:
    """`build_config(point)`, memoised: validating a point builds its model (cross-checks of p)."""
    return _config_of(json.dumps(point, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _config_of(text: str) -> RunConfig:
    return build_config(json.loads(text))


def expand(grid, base: dict) -> list[dict]:
    """A grid mapping (cartesian product) or a list of them (their union, in order); every point
    validated with `build_config`, and every invalid one listed with its message."""
    parts = grid if isinstance(grid, list) else [grid]
    if not parts or any(not isinstance(g, dict) or not g for g in parts):
        raise LotteryError("the sweep grid is empty: give at least one field with a list of values")
    points, invalid = [], []
    for part in parts:
        keys = list(part)
        values = [v if isinstance(v, list) else [v] for v in part.values()]
        for key, vals in zip(keys, values, strict=True):
            if not vals:
                raise LotteryError(f"the sweep grid is empty: field {key!r} has no values")
        for combo in itertools.product(*values):
            point = json.loads(json.dumps(base))
            label = ", ".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True))
            try:
                for key, value in zip(keys, combo, strict=True):
                    set_dotted(point, key, value)
                pin(point)
                config_of(point)
                points.append(point)
            except LotteryError as err:
                invalid.append(f"{{{label}}}: {err}")
    if invalid:
        raise LotteryError(f"{len(invalid)} of {len(invalid) + len(points)} grid points are invalid: "
                           + "; ".join(invalid))
    return points


def dense_point(point: dict) -> dict:
    """The dense baseline of a point: the same config with pipeline=dense and no pruning section."""
    dense = json.loads(json.dumps(point))
    dense["pipeline"] = "dense"
    dense.pop("pruning", None)
    return dense


def with_dense(points: list[dict]) -> list[dict]:
    """Dense baselines first, once per dense identity; then the other points, once per identity.

    Points whose identities are equal because their pipeline does not read where they differ
    (e.g. the criterion of a dense run) are one trial. Points with equal identities that differ in
    a setting outside the identity (threads, results_dir, ...) would silently become one trial
    with one of the two settings: refused, with the list."""
    dense: dict[str, dict] = {}
    others: dict[str, dict] = {}
    collapsed: dict[str, list[str]] = {}
    for point in points:
        cfg = config_of(point)
        identity = cfg.identity()
        chosen = dense if cfg.pipeline == "dense" else others
        if identity in chosen:
            first = config_of(chosen[identity])
            if first.read_settings().to_flat() != cfg.read_settings().to_flat():
                collapsed.setdefault(identity, [_differences(first, cfg)])
        chosen.setdefault(identity, point)
        if cfg.pipeline != "dense":
            dense.setdefault(cfg.dense().identity(), dense_point(point))
    if collapsed:
        listed = "; ".join(f"identity {k}: {', '.join(v)}" for k, v in collapsed.items())
        raise LotteryError(f"{len(collapsed)} groups of grid points would collapse into one trial each (they differ "
                           f"only in settings outside the run identity): {listed}; vary a setting that changes "
                           f"results, or drop the duplicates")
    return list(dense.values()) + list(others.values())


def _differences(a: RunConfig, b: RunConfig) -> str:
    """`key=x vs y` for every setting in which two configs differ."""
    fa, fb = a.to_flat(), b.to_flat()
    return " and ".join(f"{k}={fa[k]!r} vs {fb[k]!r}" for k in fa if fa[k] != fb[k])


def _resources(raw) -> dict:
    if not isinstance(raw, dict):
        raise LotteryError(f"sweep resources must be a mapping like {{cpu: 1, gpu: 0.25}}, got {raw!r}")
    unknown = sorted(set(raw) - {"cpu", "gpu"})
    if unknown:
        raise LotteryError(f"unknown resource {unknown[0]!r}; allowed: cpu, gpu")
    cpu, gpu = raw.get("cpu", 1), raw.get("gpu", 0)
    if isinstance(cpu, bool) or not isinstance(cpu, int | float) or cpu <= 0:
        raise LotteryError(f"resources.cpu must be a positive number, got {cpu!r}")
    if isinstance(gpu, bool) or not isinstance(gpu, int | float) or gpu < 0 or (gpu > 1 and gpu != int(gpu)):
        raise LotteryError(f"resources.gpu must be a fraction in [0, 1] or a whole number, got {gpu!r}")
    return {"cpu": cpu, "gpu": gpu}


def _int(raw: dict, key: str, default: int, low: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise LotteryError(f"sweep {key} must be an integer >= {low}, got {value!r}")
    return value


def _optuna(raw, base: dict) -> dict:
    if not isinstance(raw, dict):
        raise LotteryError("sweep 'optuna' must be a mapping with space, metrics, modes, num_samples")
    unknown = sorted(set(raw) - set(OPTUNA_KEYS))
    if unknown:
        raise LotteryError(f"unknown optuna key {unknown[0]!r}; allowed: {', '.join(OPTUNA_KEYS)}")
    space = raw.get("space") or {}
    if not isinstance(space, dict) or not space:
        raise LotteryError("the optuna search space is empty: give space: {field: {type: int, low: 1, high: 3}}")
    base_cfg = build_config(base)
    changes_dense = []
    invalid = []
    for key, spec in space.items():
        _check_spec(key, spec)
        values = spec["choices"] if spec["type"] == "categorical" else [spec["low"], spec["high"]]
        for value in values:
            probe = json.loads(json.dumps(base))
            try:
                set_dotted(probe, key, value)
                cfg = build_config(probe)
            except LotteryError as err:
                invalid.append(f"{{{key}={value}}}: {err}")
                continue
            if cfg.dense().identity() != base_cfg.dense().identity():
                changes_dense.append(key)
    if invalid:
        raise LotteryError(f"{len(invalid)} value(s) of the optuna space are invalid: " + "; ".join(invalid))
    metrics = raw.get("metrics", ["acc"])
    metrics = metrics if isinstance(metrics, list) else [metrics]
    modes = raw.get("modes", ["max"] * len(metrics))
    modes = modes if isinstance(modes, list) else [modes]
    if not metrics or len(metrics) != len(modes) or any(m not in ("max", "min") for m in modes):
        raise LotteryError("optuna metrics and modes must be lists of equal length; modes are max or min")
    for metric in metrics:   # Ray would mark every trial that lacks it PRUNED, and the search turn random
        problem = metric_problem(str(metric), base_cfg.pipeline, base_cfg.data.val_size)
        if problem:
            raise LotteryError(f"optuna metric {metric!r}: {problem}")
    n = raw.get("num_samples", 8)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise LotteryError(f"optuna num_samples must be a positive integer, got {n!r}")
    # the dense baseline is scheduled once, first, when every sample shares it
    dense = dense_point(base) if base_cfg.pipeline != "dense" and not changes_dense else None
    return {"space": space, "metrics": metrics, "modes": modes, "num_samples": n,
            "seed": raw.get("seed", 0), "dense": dense}


def _check_spec(key: str, spec) -> None:
    if not isinstance(spec, dict) or spec.get("type") not in SPACE_TYPES:
        raise LotteryError(f"optuna space {key!r}: give type int, float or categorical")
    if spec["type"] == "categorical":
        if not isinstance(spec.get("choices"), list) or not spec["choices"]:
            raise LotteryError(f"optuna space {key!r}: a categorical needs a non-empty list of choices")
        return
    low, high = spec.get("low"), spec.get("high")
    if not isinstance(low, int | float) or not isinstance(high, int | float) or low > high:
        raise LotteryError(f"optuna space {key!r}: give numbers low <= high, got low={low!r} high={high!r}")
    if spec["type"] == "int" and (not isinstance(low, int) or not isinstance(high, int)):
        raise LotteryError(f"optuna space {key!r}: an int range needs integer low and high")
    if spec.get("log") and low <= 0:
        raise LotteryError(f"optuna space {key!r}: a log range needs low > 0")
