"""An Optuna search in a sweep file: its space (every end of every range validated against the
base config), metrics that some run reports, modes, samples (declared like the run config's
sections: `SearchSettings`); the dense baseline shared by all."""
from dataclasses import dataclass

from lottery_core.errors import LotteryError
from pipelines.config import RunConfig
from pipelines.config.building import build_section
from pipelines.config.fields import option
from pipelines.config.loading import STAGE_COUNT

SPACE_TYPES = ("int", "float", "categorical")


@dataclass(frozen=True)
class SearchSettings:
    """An Optuna search's settings besides its space (`optuna.<key>` in a sweep file)."""

    metrics: tuple[str, ...] = option(("acc",), "final metrics of a run the search optimizes (see "
                                      "pipelines.evaluation), e.g. [val_acc, macs]", sequence=True, min_distinct=1)
    modes: tuple[str, ...] = option((), "max or min, one per metric (default: max for each)", kind=str,
                                    sequence=True, choices=("max", "min"))
    num_samples: int = option(8, "trials the search draws", low=1)
    seed: int = option(0, "seed of the Optuna sampler", low=0)


OPTUNA_KEYS = ("space", *SearchSettings.__dataclass_fields__)


def check_optuna(raw, base_cfg: RunConfig) -> dict:
    """The validated Optuna part of a sweep file over the validated base config `base_cfg`, with
    the dense baseline (`RunConfig.dense()`) when all samples share it."""
    if not isinstance(raw, dict):
        raise LotteryError("sweep 'optuna' must be a mapping with space, metrics, modes, num_samples")
    unknown = sorted(set(raw) - set(OPTUNA_KEYS))
    if unknown:
        raise LotteryError(f"unknown config key 'optuna.{unknown[0]}'; allowed in optuna: {', '.join(OPTUNA_KEYS)}")
    settings = build_section({k: v for k, v in raw.items() if k != "space"}, SearchSettings, "optuna.")
    space = raw.get("space") or {}
    if not isinstance(space, dict) or not space:
        raise LotteryError("the optuna search space is empty: give space: {field: {type: int, low: 1, high: 3}}")
    changes_dense = []
    invalid = []
    for key, spec in space.items():
        _check_spec(key, spec)
    for key, probe in _probes(space):
        try:
            cfg = base_cfg.with_overrides(probe)
        except LotteryError as err:
            invalid.append(f"{{{', '.join(f'{k}={v}' for k, v in probe.items())}}}: {err}")
            continue
        if cfg.dense().identity() != base_cfg.dense().identity():
            changes_dense.append(key)
    if invalid:
        raise LotteryError(f"{len(invalid)} value(s) of the optuna space are invalid: " + "; ".join(invalid))
    from pipelines.evaluation import metric_problem  # imports torch and MLflow

    metrics = list(settings.metrics)
    modes = list(settings.modes) or ["max"] * len(metrics)
    if len(metrics) != len(modes):
        raise LotteryError(f"optuna.modes must be one per metric ({len(metrics)}), got {modes!r}")
    for metric in metrics:   # Ray would mark every trial that lacks it PRUNED, and the search turn random
        problem = metric_problem(str(metric), base_cfg.pipeline, base_cfg.data.val_size)
        if problem:
            raise LotteryError(f"optuna metric {metric!r}: {problem}")
    # the dense baseline is scheduled once, first, when every sample shares it
    dense = base_cfg.dense() if base_cfg.pipeline != "dense" and not changes_dense else None
    return {"space": space, "metrics": metrics, "modes": modes, "num_samples": settings.num_samples,
            "seed": settings.seed, "dense": dense}


def _probes(space: dict) -> list[tuple[str, dict]]:
    """The values that validate a space: every end of every range (every choice), each alone; the
    per-stage counts `pruning.stage_counts.N` together, all at their low ends, then all at their high."""
    stages = {k: spec for k, spec in space.items() if STAGE_COUNT.fullmatch(k)}
    probes = []
    for key, spec in space.items():
        if key not in stages:
            values = spec["choices"] if spec["type"] == "categorical" else [spec["low"], spec["high"]]
            probes += [(key, {key: v}) for v in values]
    for end in ("low", "high") if stages else ():
        probes.append(("pruning.stage_counts", {k: spec[end] if spec["type"] != "categorical" else spec["choices"][0]
                                                 for k, spec in stages.items()}))
    return probes


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
