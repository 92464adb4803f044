"""Grid points: expanded from the grid, pinned to what the driver sees, validated (each built once into
its frozen RunConfig, which is what travels from then on), deduplicated by identity, with their
dense baselines (`RunConfig.dense()`) first."""
import itertools
import json
import os
from pathlib import Path

from lottery_core.errors import LotteryError
from pipelines.config import DataConfig, RunConfig, TrackingConfig, build_config, set_dotted

PATH_FIELDS = ("data.root", "tracking.results_dir", "evaluation.cifar10_c_dir", "evaluation.cifar10_1_dir",
               "evaluation.cifar10_2_dir")


def pin(point: dict) -> None:
    """Make a point mean the same on every worker: absolute paths (a trial runs in its own working
    folder, on any node), the data folder and tracking URI the driver sees (its environment
    variables do not travel to a cluster's workers)."""
    from pipelines.tracking import tracking_uri  # imports MLflow: only once a point is built

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
    from pipelines.context import data_fingerprint  # imports torch

    data = point.get("data") if isinstance(point.get("data"), dict) else {}
    root = data.get("root")
    if data.get("fingerprint") is None and isinstance(root, str) and "://" not in root and Path(root).is_dir():
        try:
            found, _ = data_fingerprint(str(data.get("name", DataConfig.name)), root)
        except LotteryError:
            return  # reported with the point's other errors, or by the trial
        set_dotted(point, "data.fingerprint", found)


def expand(grid, base: dict) -> list[RunConfig]:
    """The validated configs of a grid mapping (cartesian product) or a list of them (their union,
    in order): each point pinned and built once with `build_config`; every invalid one named, each
    reason once with the points it refuses (`_refusal`)."""
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
                points.append(build_config(point))
            except LotteryError as err:
                invalid.append((label, str(err)))
    if invalid:
        raise LotteryError(_refusal(invalid, len(invalid) + len(points)))
    return points


def _refusal(invalid: list[tuple[str, str]], total: int, shown: int = 3) -> str:
    """One line for the invalid points, (label, reason) each: every reason once, after the first
    `shown` points it refuses and the count of the rest ("{p=7}, {p=8}: ...; {seed=0} and 55 more: ...")."""
    by_reason: dict[str, list[str]] = {}
    for label, reason in invalid:
        by_reason.setdefault(reason, []).append(label)
    parts = []
    for reason, labels in by_reason.items():
        named = ", ".join(f"{{{label}}}" for label in labels[:shown])
        more = f" and {len(labels) - shown} more" if len(labels) > shown else ""
        parts.append(f"{named}{more}: {reason}")
    return f"{len(invalid)} of {total} grid points are invalid: " + "; ".join(parts)


def with_dense(points: list[RunConfig]) -> list[RunConfig]:
    """Dense baselines first (`RunConfig.dense()`), once per dense identity; then the other points,
    once per identity.

    Points whose identities are equal because their pipeline does not read where they differ
    (e.g. the criterion of a dense run) are one trial. Points with equal identities that differ in
    a setting outside the identity (threads, results_dir, ...) would silently become one trial
    with one of the two settings: refused, with the list."""
    dense: dict[str, RunConfig] = {}
    others: dict[str, RunConfig] = {}
    collapsed: dict[str, list[str]] = {}
    for cfg in points:
        identity = cfg.identity()
        chosen = dense if cfg.pipeline == "dense" else others
        if identity in chosen:
            first = chosen[identity]
            if first.read_settings().to_flat() != cfg.read_settings().to_flat():
                collapsed.setdefault(identity, [_differences(first, cfg)])
        chosen.setdefault(identity, cfg)
        if cfg.pipeline != "dense":
            baseline = cfg.dense()
            dense.setdefault(baseline.identity(), baseline)
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
