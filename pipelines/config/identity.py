"""A run's identity: the hash of its non-default, identity-bearing settings.

Fields marked `identity=False` (where results go, how many threads) do not change a run's
identity, and defaults are left out of the hash so that adding a setting never renames old
runs. What changes a result but is not a plain setting is resolved into the identity too: the
device kind and numeric precision (never "auto") and the data's content fingerprint. The hash
also carries `IDENTITY_SCHEMA`, bumped whenever a default that changes results changes, so an
old finished run is never mistaken for a new one.
"""
import hashlib
import json
from dataclasses import fields, is_dataclass, replace

from lottery_core.criteria.control_registry import get_control
from pipelines.config.fields import plain
from pipelines.config.pipeline_registry import get_pipeline, pipeline_options
from pipelines.config.sections import PruningConfig

# Bump when a default that changes results changes (2: branch targets for activation criteria,
# one test set for all seeds, random draws seeded by (seed, draw), device/precision/data/country;
# 3: training drops a last partial batch, bf16 on CPUs with native bf16).
IDENTITY_SCHEMA = 3
SCORING = ("images_per_class", "bn_mode", "aggregate", "temperature", "target")


def identity(cfg) -> str:
    """12 hex digits of a SHA-256 over `payload(cfg)` (sorted JSON)."""
    text = json.dumps(payload(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def payload(cfg) -> dict:
    """The identity schema, the non-default identity fields of `read_settings(cfg)` and the
    resolved device kind and precision."""
    return {"schema": IDENTITY_SCHEMA, "config": identity_fields(read_settings(cfg)),
            "device": cfg.device_kind(), "precision": cfg.precision()}


def read_settings(cfg):
    """`cfg` with every setting its pipeline does not read put back to its default.

    Left out: the pruning section of a pipeline that prunes nothing (dense); every pipeline's own
    settings (`pipeline_registry`: rewind_epoch, reinit_of, filter_match, the iterative ones) but
    those this pipeline `reads`; the criterion and its scoring options under a control that reads
    no criterion (uniform); the scoring options of the random criterion; the draw index where
    nothing random is drawn (neither the random criterion nor a control that `draws`); `target` of
    criteria that read no activations; the declared options (`pruning.options`) the criterion does
    not read."""
    from lottery_core.criteria import registry

    pipeline = get_pipeline(cfg.pipeline)
    if not pipeline.prunes:
        return replace(cfg, pruning=PruningConfig())
    p, default = cfg.pruning, PruningConfig()
    unread = set(pipeline_options()) - set(pipeline.reads(p))
    control = get_control(p.control)
    scoring = set(SCORING) | {"options"}
    if control is not None and not control.reads_criterion:
        unread |= scoring | {"criterion", "draw"}
    elif p.criterion == "random":
        unread |= scoring
    elif control is None or not control.draws:
        unread.add("draw")
    read = _declared(registry, p.criterion)
    if "target" not in read:
        unread.add("target")
    kept = tuple((k, v) for k, v in p.options if k in read)
    return replace(cfg, pruning=replace(p, **{k: getattr(default, k) for k in unread}, **(
        {} if "options" in unread else {"options": kept})))


def _declared(registry, criterion: str) -> set[str]:
    try:
        return set(registry.get(criterion, "block").options)
    except Exception:  # an unknown criterion is reported by validation
        return set()


def identity_fields(obj) -> dict:
    """The non-default identity fields of a config, nested by section (tuples as lists)."""
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            nested = identity_fields(value)
            if nested:
                out[f.name] = nested
        elif f.metadata.get("identity", True) and value != f.default:
            out[f.name] = plain(value)
    return out
