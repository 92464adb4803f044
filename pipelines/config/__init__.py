"""Run configs: frozen dataclasses whose fields carry their declarations, loaded from YAML, validated once.

    cfg = load_config("configs/quick/resnet32_ticket_init.yaml", overrides=["pruning.p=3", "seed=1"])
    cfg.identity()      # hash of the non-default, identity-bearing fields: the run's name everywhere
    cfg.with_overrides({"pruning.p": 2})   # a new config, validated again

Unknown keys are rejected, types and ranges checked against each field's declaration (the
library's own for training settings and criterion options), then the rules that span fields;
every error names the field and what is allowed. Validation imports neither torch nor
torchvision, MLflow or Ray. One job per module:

    fields     a field's declaration, help text, flattening
    pipeline_registry   every pipeline's declaration and its own settings
    sections   the sections (model, data, training, ...) and the names they choose from
    identity   the identity hash and the settings a pipeline reads
    checks     the rules that span fields
    building   nested mapping -> section, each field checked, and back (`to_raw`); dotted keys
    schema     RunConfig and `build_config` (a validated RunConfig from a nested mapping)
    loading    YAML files, `section.key=value` overrides

Each imports only those listed above it (tests/test_import_graph.py checks there is no cycle).
"""
from pipelines.config.building import to_raw
from pipelines.config.checks import DEVICE
from pipelines.config.fields import flatten
from pipelines.config.identity import IDENTITY_SCHEMA
from pipelines.config.loading import apply_overrides, load_config, set_dotted, with_overrides
from pipelines.config.schema import (
    DataConfig,
    EvaluationConfig,
    ModelConfig,
    PruningConfig,
    RunConfig,
    TrackingConfig,
    TrainingConfig,
    build_config,
)


def help_text() -> list[str]:
    """One line per field, `section.key (default): help [allowed]`, criterion options included."""
    from pipelines.config import fields as config_fields
    from pipelines.config.building import declared_criterion_options, settable_criterion_options

    options = declared_criterion_options()
    extra = [f"pruning.{n} ({options[n].default!r}): {options[n].help} [{options[n].allowed()}]"
             for n in sorted(settable_criterion_options())]
    return config_fields.help_text(RunConfig, extra={"pruning.": extra})


__all__ = ["DEVICE", "IDENTITY_SCHEMA", "DataConfig", "EvaluationConfig", "ModelConfig", "PruningConfig", "RunConfig",
           "TrackingConfig", "TrainingConfig", "apply_overrides", "build_config", "flatten", "help_text",
           "load_config", "set_dotted", "to_raw", "with_overrides"]
