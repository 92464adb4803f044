"""The rules of a run config that span fields or sections, checked after each field alone.

They ask the library's declarations and registries (the criteria registry, the model registry,
the train settings' combination rules), never restate them. Every rule but the model's imports
nothing heavy: a config that breaks one is refused before torch, torchvision, MLflow or Ray is
imported. The model's rules (`check_model`: a known name, its options, p and the per-stage counts
within its stage budget, criteria that apply to its kind) come last and read the model registry
and the model itself (`models.skeleton`), which imports torch and torchvision.
"""
import os
import re

from lottery_core.criteria.control_registry import control_names, get_control
from lottery_core.errors import LotteryError, choose
from pipelines import credentials
from pipelines.config.pipeline_registry import get_pipeline, pipeline_names

DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
# The names `lottery_core.robustness` registers (it imports torch); tests/test_config.py checks
# that these lists equal its CORRUPTIONS and ATTACKS.
CORRUPTION_NAMES = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
                    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
                    "jpeg_compression")
ATTACK_NAMES = ("fgsm", "pgd")
# how a refusal says that a criterion lacks the trait a control needs (`Control.needs`), and who has it
NEEDS_WORDS = {"reads_labels": ("reads no labels", "criteria that do"), "needs_data": ("reads no data", "data-driven criteria")}


def check_run(cfg) -> None:
    """Every rule that spans fields (device, model, training, pruning, evaluation, tracking, data)."""
    from lottery_core.train.settings import check_combination

    if not DEVICE.fullmatch(cfg.device):
        raise LotteryError(f"device={cfg.device!r} is not allowed; choose auto, cpu, cuda or cuda:N (N = 0, 1, ...)")
    t = cfg.training
    try:
        check_combination(t)   # the engine's own rules (one-cycle, warm-up, Nesterov)
    except LotteryError as err:
        raise LotteryError(f"training: {err}") from None
    rewinds = "rewind_epoch" in get_pipeline(cfg.pipeline).reads(cfg.pruning)
    if rewinds and cfg.pruning.rewind_epoch >= t.epochs:
        raise LotteryError(f"pruning.rewind_epoch={cfg.pruning.rewind_epoch} must be below "
                           f"training.epochs={t.epochs} (rewind point i < n)")
    if rewinds and cfg.pruning.rewind_epoch not in t.keep_epochs:
        raise LotteryError(f"pruning.rewind_epoch={cfg.pruning.rewind_epoch} is not one of training.keep_epochs="
                           f"{list(t.keep_epochs)}: the dense run keeps only those θ_i; add it there (the dense "
                           "run is then a new run) or rewind to a kept epoch")
    check_pruning(cfg)
    for name in cfg.evaluation.corruptions:
        if name != "all":
            choose("corruption", name, CORRUPTION_NAMES)
    for name in cfg.evaluation.attacks:
        choose("attack", name, ATTACK_NAMES)
    uri = cfg.tracking.tracking_uri
    if uri and credentials.has_credentials(uri):
        raise LotteryError(f"tracking.tracking_uri={credentials.redact(uri)} carries credentials, which would reach "
                           "params, sweep files and logs; give the URI without them and set "
                           "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (read by MLflow)")
    if cfg.data.name == "folder" and not (cfg.data.root or os.environ.get("LOTTERY_DATA_DIR")):
        raise LotteryError("data.name=folder needs data.root (or LOTTERY_DATA_DIR)")
    check_model(cfg)
    check_precision(cfg)


def check_precision(cfg) -> None:
    """`training.require_precision`: the precision this machine would compute `cfg` in must be the
    required one (checked at the edge and again where the run trains, which may be another node)."""
    required = cfg.training.require_precision
    if required == "any":
        return
    resolved = cfg.precision()
    if resolved == required:
        return
    if required == "fp32":
        raise LotteryError(f"training.require_precision=fp32, but this run would compute in {resolved} "
                           f"(amp on a {cfg.device_kind()} device that computes bf16 natively): set training.amp=false")
    from lottery_core.train.precision import NATIVE_BF16_FLAGS

    why = ("training.amp is false" if not cfg.training.amp else
           f"this CPU has no native bf16 (no {' or '.join(NATIVE_BF16_FLAGS)} in /proc/cpuinfo)")
    raise LotteryError(f"training.require_precision=bf16, but this run would compute in {resolved}: {why}; "
                       "run it on a CPU with native bf16 or a GPU, or drop the requirement (the runs are then "
                       "other identities)")


def check_model(cfg) -> None:
    """The rules that depend on the model, after every other rule (they import torch): its name
    and options (the registry), the criterion's applicability to its kind (`model_traits`), p and
    the per-stage counts within its stage budget (`surgery.stage_budget`, the one rule for p), all
    read from `models.skeleton`, the model built on the meta device."""
    from lottery_core import models, surgery
    from lottery_core.criteria import registry
    from lottery_core.criteria.applicability import model_traits

    name = cfg.model.name
    if name not in models.names():
        raise LotteryError(f"model.name={name!r} is unknown; choose one of: {', '.join(models.names())}")
    if cfg.model.init != "kaiming" and "init" not in models.options(name):
        raise LotteryError(f"model.init={cfg.model.init!r} applies to the CIFAR ResNets; {name} keeps "
                           "torchvision's own init (leave model.init at kaiming)")
    pipeline = get_pipeline(cfg.pipeline)
    if not pipeline.prunes:
        return
    model = models.skeleton(name, **cfg.model.builder_options())
    check_applicability(cfg, registry.get(cfg.pruning.criterion, pipeline.level), model_traits(model))
    p = cfg.pruning
    try:
        budgets = list(surgery.stage_budget(model, p.min_blocks_per_stage).values())
    except LotteryError:
        raise LotteryError(f"{name} has no removable residual blocks") from None
    limit = sum(budgets)
    if p.p > limit:
        raise LotteryError(f"pruning.p={p.p} exceeds the {limit} blocks {name} may lose "
                           f"(min_blocks_per_stage={p.min_blocks_per_stage})")
    counts = list(p.stage_counts)
    if counts and len(counts) != len(budgets):
        raise LotteryError(f"pruning.stage_counts={counts} needs one count per stage: {name} has {len(budgets)} "
                           f"stages, which may lose at most {budgets} (min_blocks_per_stage="
                           f"{p.min_blocks_per_stage})")
    over = [i + 1 for i, (c, b) in enumerate(zip(counts, budgets, strict=False)) if c > b]
    if over:
        raise LotteryError(f"pruning.stage_counts={counts}: stage {over[0]} may lose at most {budgets[over[0] - 1]} "
                           f"blocks; {name}'s stages may lose at most {budgets} (min_blocks_per_stage="
                           f"{p.min_blocks_per_stage})")


def check_pruning(cfg) -> None:
    """The criterion, its options (asked of the registry), the control and p (the model's
    bounds on p: `check_model`)."""
    from lottery_core.criteria import registry

    pipeline = get_pipeline(cfg.pipeline)
    if not pipeline.prunes:
        return
    p = cfg.pruning
    choose("criterion", p.criterion, registry.names("block"))
    if p.criterion not in registry.names(pipeline.level):
        raise LotteryError(f"criterion {p.criterion!r} does not score {pipeline.level}s, which pipeline="
                           f"{cfg.pipeline} prunes by (filter level); choose one of: "
                           f"{', '.join(registry.names(pipeline.level))}")
    check_control(cfg)
    criterion = registry.get(p.criterion, pipeline.level)
    try:
        registry.check_options(criterion, p.criterion_options())
    except LotteryError as err:
        raise LotteryError(f"pruning: {err}") from None
    if pipeline.check is not None:
        pipeline.check(cfg)
    if p.stage_counts:
        check_stage_counts(cfg)


def check_stage_counts(cfg) -> None:
    """Per-stage counts: p their sum, a control that keeps them (`Control.stage_counts`); one per
    stage, each within its stage's budget: `check_model`."""
    p = cfg.pruning
    counts = list(p.stage_counts)
    if sum(counts) != p.p:
        raise LotteryError(f"pruning.p={p.p} must be the sum of pruning.stage_counts={counts}, {sum(counts)}")
    control = get_control(p.control)
    if control is not None and not control.stage_counts:
        keeping = ["none", *(n for n in control_names()[1:] if get_control(n).stage_counts)]
        raise LotteryError(f"pruning.stage_counts applies with control {', '.join(keeping[:-1])} or {keeping[-1]}, "
                           f"not {p.control} ({control.summary})")


def check_applicability(cfg, criterion, traits) -> None:
    """The criterion (a consensus: each member) and the pipeline must apply to the model's kind,
    its `traits` (`lottery_core.criteria.applicability`, the rule `score_blocks` applies)."""
    from lottery_core.criteria.applicability import refusal

    if get_pipeline(cfg.pipeline).level == "weight" and "token_blocks" in traits:
        raise LotteryError(f"pipeline=filter_ticket prunes conv filters inside residual blocks; {cfg.model.name}'s "
                           "encoder layers have none (choose ticket_init or ticket_rewind)")
    members = cfg.pruning.criterion_options().get("members", criterion.options.get("members", ()))
    for name in (criterion.name, *(members if "members" in criterion.options else ())):
        reason = refusal(name, traits)
        if reason is not None:
            raise LotteryError(f"pruning.criterion={criterion.name} on model.name={cfg.model.name}: {reason}")


def check_control(cfg) -> None:
    """A control must make sense for its pipeline and criterion."""
    from lottery_core.criteria import registry

    control, criterion = get_control(cfg.pruning.control), cfg.pruning.criterion
    if control is None:
        return
    if not get_pipeline(cfg.pipeline).controls:
        takers = [n for n in pipeline_names() if get_pipeline(n).controls]
        raise LotteryError(f"pruning.control={control.name} applies to {' and '.join(takers)}, not "
                           f"pipeline={cfg.pipeline} (reinit is itself the control of Algorithm 1)")
    if not control.reads_criterion:
        return
    if criterion == "random":
        raise LotteryError(f"pruning.control={control.name} needs a criterion that scores blocks; criterion=random "
                           f"is already the random control (vary pruning.draw for more draws)")
    c = registry.get(criterion, "block")
    if control.needs is not None and not getattr(c, control.needs):
        having = [n for n in registry.names("block") if getattr(registry.get(n, "block"), control.needs)]
        what, who = NEEDS_WORDS[control.needs]
        raise LotteryError(f"pruning.control={control.name}: criterion {criterion!r} {what}; {who}: {', '.join(having)}")
