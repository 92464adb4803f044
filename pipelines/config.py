"""Run configs: frozen dataclasses with a help string per field, loaded from YAML, validated once.

    cfg = load_config("configs/quick/ticket_init.yaml", overrides=["pruning.p=3", "seed=1"])
    cfg.identity()      # hash of the non-default, identity-bearing fields: the run's name everywhere

Unknown keys are rejected, types and ranges checked; every error names the field and what is
allowed. Fields marked `identity=False` (where results go, how many threads) do not change a
run's identity, and defaults are left out of the hash so that adding a setting never renames old
runs. What changes a result but is not a plain setting is resolved into the identity too: the
device kind and numeric precision (never "auto") and the data's content fingerprint. The hash
also carries `IDENTITY_SCHEMA`, bumped whenever a default that changes results changes, so an
old finished run is never mistaken for a new one.
"""
import dataclasses
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from lottery_core.errors import LotteryError
from pipelines import secrets, yaml_strict

PIPELINES = ("dense", "ticket_init", "ticket_rewind", "filter_ticket", "reinit")
TICKET_PIPELINES = ("ticket_init", "ticket_rewind", "filter_ticket", "reinit")
# Bump when a default that changes results changes (2: branch targets for activation criteria,
# one test set for all seeds, random draws seeded by (seed, draw), device/precision/data/country;
# 3: training drops a last partial batch, bf16 on CPUs with native bf16).
IDENTITY_SCHEMA = 3
# Controls: how the removed blocks are chosen instead of "the p lowest scores" (see README, Concepts).
CONTROLS = ("none", "inverted", "same_stage_random", "uniform", "shuffled_labels", "random_inputs")
CONTROL_PIPELINES = ("ticket_init", "ticket_rewind")


def option(default, help: str, *, choices=None, low=None, high=None, identity: bool = True):
    """A config field with its help text, allowed values and whether it is part of the identity."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "identity": identity}
    if isinstance(default, list | dict):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ModelConfig:
    name: str = option("resnet32", "architecture from lottery_core.models (e.g. resnet20/32/56/110, resnet18, mobilenet_v2)")
    shortcut: str = option("A", "CIFAR ResNet shortcut: A zero-pad, B 1x1 conv+BN, conv 1x1 conv (authors)",
                           choices=("A", "B", "conv"))
    init: str = option("kaiming", "CIFAR ResNet weight init: kaiming (He et al.'s kaiming_normal_, the "
                       "paper protocol) or torch (torch's module defaults; trains better at short budgets, "
                       "benchmarks/recipe.md)", choices=("kaiming", "torch"))

    def builder_options(self) -> dict:
        """The options of this architecture's builder that it takes (shortcut, init: CIFAR ResNets)."""
        from lottery_core import models

        taken = models.options(self.name)
        return {k: getattr(self, k) for k in ("shortcut", "init") if k in taken}


@dataclass(frozen=True)
class DataConfig:
    name: str = option("cifar10", "data set: cifar10, cifar100 or folder (ImageFolder train/ and test/)",
                       choices=("cifar10", "cifar100", "folder"))
    root: str | None = option(None, "data directory (ImageFolder copy or torchvision root); "
                              "default $LOTTERY_DATA_DIR, else torchvision download", identity=False)
    fingerprint: str | None = option(None, "content fingerprint of the data set (blake2b-<16 hex digits>); "
                                     "filled in from the data where it is read, and checked there")
    train_size: int | None = option(None, "class-balanced training subset size (None = all)", low=1)
    test_size: int | None = option(None, "class-balanced test subset size (None = all)", low=1)
    test_seed: int = option(0, "seed of the test subset and of the corruption, attack and CKA "
                            "subsets: the same images for every run seed", low=0)
    val_size: int = option(0, "held-out validation images carved from train, class-balanced", low=0)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = option(160, "training epochs n of the dense network (tickets train n - i)", low=1)
    batch_size: int = option(128, "images per SGD step", low=1)
    lr: float = option(0.1, "peak learning rate", low=0.0)
    momentum: float = option(0.9, "SGD momentum", low=0.0, high=1.0)
    nesterov: bool = option(False, "Nesterov momentum")
    weight_decay: float = option(1e-4, "L2 weight decay", low=0.0)
    schedule: str = option("step", "learning-rate schedule: step, cosine or onecycle (torch's OneCycleLR, "
                           "momentum cycling included)", choices=("step", "cosine", "onecycle"))
    milestones: tuple[float, ...] = option((0.5, 0.75), "step schedule: fractions of epochs where lr *= gamma")
    gamma: float = option(0.1, "step schedule decay factor", low=0.0, high=1.0)
    warmup_epochs: int = option(0, "linear warm-up epochs (step, cosine)", low=0)
    pct_start: float = option(0.15, "onecycle: fraction of the steps over which lr rises", low=0.0, high=1.0)
    div_factor: float = option(25.0, "onecycle: the first lr is lr / div_factor", low=1.0)
    final_div_factor: float = option(1e4, "onecycle: the last lr is lr / (div_factor * final_div_factor)",
                                     low=1.0)
    base_momentum: float = option(0.85, "onecycle: momentum at the lr peak (momentum at both ends)",
                                  low=0.0, high=1.0)
    label_smoothing: float = option(0.0, "label smoothing of the training loss", low=0.0, high=1.0)
    amp: bool = option(True, "bf16 autocast where the device computes bf16 natively (CUDA, CPUs with "
                       "avx512_bf16/amx_bf16); the identity holds the resolved precision", identity=False)
    compile: bool = option(False, "torch.compile the model (GPU runs)", identity=False)
    keep_epochs: tuple[int, ...] = option((0, 25, 50, 75), "dense runs keep the weights of these epochs "
                                          "(rewind points θ_i); epochs >= n are ignored", identity=False)

    def settings(self, threads: int | None = None):
        """The engine's TrainSettings for this section (validated there)."""
        from lottery_core.train import TrainSettings

        names = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "schedule", "milestones",
                 "gamma", "warmup_epochs", "pct_start", "div_factor", "final_div_factor", "base_momentum",
                 "label_smoothing", "amp", "compile")
        return TrainSettings(**{n: getattr(self, n) for n in names}, threads=threads)


@dataclass(frozen=True)
class PruningConfig:
    criterion: str = option("grasp", "criterion that scores blocks (or filters): see `lottery info --criteria`")
    p: int = option(1, "number of residual blocks removed (filter tickets: matched to this block ticket)", low=0)
    rewind_epoch: int = option(0, "ticket_rewind: rewind point i (weights θ_i, lr schedule from epoch i)", low=0)
    min_blocks_per_stage: int = option(2, "blocks every stage keeps at least (authors' code: 2)", low=1)
    images_per_class: int = option(10, "class-balanced scoring images per class", low=1)
    bn_mode: str = option("auto", "BatchNorm mode while scoring; auto = the criterion's own (train for "
                          "SNIP/GraSP, eval for SynFlow and the activation criteria, KL, CKA; train for those "
                          "too while BatchNorm holds θ_0's placeholder statistics)",
                          choices=("auto", "train", "eval"))
    aggregate: str = option("sum", "how weight scores become a block score", choices=("sum", "mean"))
    temperature: float = option(200.0, "GraSP softmax temperature (> 0)")
    target: str = option("branch", "activation criteria (hrank, expectabs, pls) read the block's residual "
                         "branch f(x) (branch) or its output relu(x + f(x)) (output: the paper's literal "
                         "reading, blind to what a block adds)", choices=("branch", "output"))
    control: str = option("none", "a control instead of the criterion's p lowest: inverted (the p "
                          "highest), same_stage_random (random blocks, the criterion's per-stage counts), "
                          "uniform (the plain shallower network: last blocks, even per stage), "
                          "shuffled_labels / random_inputs (scores on permuted labels / noise images)",
                          choices=CONTROLS)
    draw: int = option(0, "random draw index (criterion random, control same_stage_random, shuffled_labels, "
                       "random_inputs): draws are seeded by (seed, draw)", low=0)
    reinit_of: str = option("ticket_init", "reinit: the architecture of the ticket_init ticket (planned at "
                            "θ_0) or of the ticket_rewind ticket (planned on the trained dense θ_n)",
                            choices=("ticket_init", "ticket_rewind"))
    filter_match: str = option("filters", "filter_ticket: prune filters until the block ticket's filter "
                               "count (the paper's Table 3) or its MACs is matched", choices=("filters", "macs"))


@dataclass(frozen=True)
class EvaluationConfig:
    corruptions: tuple[str, ...] = option(("all",), "CIFAR-10-C corruptions generated from the test set ('all' or names; () = none)")
    severities: tuple[int, ...] = option((1, 2, 3, 4, 5), "corruption severities (1-5)")
    corruption_images: int = option(1000, "test images used for corruption accuracy", low=0)
    attacks: tuple[str, ...] = option(("fgsm", "pgd"), "gradient attacks (torchattacks), () = none")
    epsilons: tuple[float, ...] = option((2 / 255, 8 / 255), "L-inf attack budgets in [0, 1] pixel units")
    attack_images: int = option(500, "test images attacked", low=0)
    cka_images: int = option(500, "test images for CKA versus the dense network", low=0)
    cifar10_c_dir: str | None = option(None, "official CIFAR-10-C .npy directory (optional)", identity=False)
    cifar10_1_dir: str | None = option(None, "CIFAR-10.1 .npy directory (optional)", identity=False)
    cifar10_2_dir: str | None = option(None, "CIFAR-10.2 .npz directory (optional)", identity=False)
    xi: float = option(0.0, "winning ticket: acc(ticket) + xi >= acc(dense), in accuracy points", identity=False)
    country_iso_code: str = option("FRA", "country whose grid sets the CO2 factor (codecarbon, offline)")


@dataclass(frozen=True)
class TrackingConfig:
    experiment: str = option("block-tickets", "MLflow experiment name", identity=False)
    results_dir: str = option("lottery-runs", "folder for the SQLite store, artifacts, checkpoints (made absolute)", identity=False)
    tracking_uri: str | None = option(None, "MLflow tracking URI; default $MLFLOW_TRACKING_URI, else sqlite in results_dir", identity=False)


@dataclass(frozen=True)
class RunConfig:
    pipeline: str = option("ticket_init", "experiment to run", choices=PIPELINES)
    seed: int = option(0, "seed of θ_0, data order, augmentation and scoring images", low=0, high=2 ** 31 - 1)
    device: str = option("auto", "auto (cuda when available), cpu, cuda or cuda:N; the identity holds the "
                         "resolved kind and precision", identity=False)
    threads: int | None = option(None, "torch threads (default: the CPUs given to the run)", low=1, identity=False)
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "architecture"})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "data set and subsets"})
    training: TrainingConfig = field(default_factory=TrainingConfig, metadata={"help": "optimizer and schedule"})
    pruning: PruningConfig = field(default_factory=PruningConfig, metadata={"help": "criterion and p"})
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig, metadata={"help": "what is measured"})
    tracking: TrackingConfig = field(default_factory=TrackingConfig, metadata={"help": "where runs go"})

    def identity(self) -> str:
        """12 hex digits of a SHA-256 over the identity schema, the non-default identity fields of
        `read_settings()` and the resolved device kind and precision (sorted JSON)."""
        payload = json.dumps(self.identity_payload(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def identity_payload(self) -> dict:
        """What `identity` hashes (shown by `lottery run --fields`-like tools and golden tests)."""
        return {"schema": IDENTITY_SCHEMA, "config": _identity_fields(self.read_settings()),
                "device": self.device_kind(), "precision": self.precision()}

    def read_settings(self) -> "RunConfig":
        """This config with every setting its pipeline does not read put back to its default.

        Left out: the pruning section of a dense run; the rewind epoch of anything but
        ticket_rewind; `reinit_of` outside reinit, `filter_match` outside filter_ticket; the
        criterion and its scoring options of the uniform control; the scoring options of the
        random criterion; the draw index where nothing random is drawn; `target` of criteria
        that read no activations."""
        if self.pipeline == "dense":
            return replace(self, pruning=PruningConfig())
        p, default = self.pruning, PruningConfig()
        unread = set()
        if self.pipeline != "ticket_rewind":
            unread.add("rewind_epoch")
        if self.pipeline != "reinit":
            unread.add("reinit_of")
        if self.pipeline != "filter_ticket":
            unread.add("filter_match")
        scoring = {"images_per_class", "bn_mode", "aggregate", "temperature", "target"}
        if p.control == "uniform":
            unread |= scoring | {"criterion", "draw"}
        elif p.criterion == "random":
            unread |= scoring
        elif p.control not in RANDOM_CONTROLS:
            unread.add("draw")
        if not _reads_target(p.criterion):
            unread.add("target")
        return replace(self, pruning=replace(p, **{k: getattr(default, k) for k in unread}))

    def device_kind(self) -> str:
        """The device kind the run computes on: "cpu" or "cuda" ("auto" resolved on this machine)."""
        if self.device == "auto":
            return "cuda" if _cuda_available() else "cpu"
        return self.device.split(":")[0]

    def precision(self) -> str:
        """The numeric precision the engine trains in on that device ("fp32" or "bf16")."""
        from lottery_core.train.precision import precision

        return precision(self.device_kind(), self.training.amp)

    def to_flat(self) -> dict[str, Any]:
        """Every field as `section.key: value` (tuples as lists), e.g. for MLflow params."""
        return flatten(self)

    def dense(self) -> "RunConfig":
        """The dense run a ticket is compared against: same model, data, training, evaluation, seed."""
        return replace(self, pipeline="dense", pruning=PruningConfig())

    def results_path(self) -> Path:
        """Absolute results folder."""
        return Path(self.tracking.results_dir).expanduser().resolve()

    def describe(self) -> str:
        """Short human name, e.g. `ticket_init resnet32 grasp p=3 seed=0`."""
        parts = [self.pipeline, self.model.name]
        p = self.read_settings().pruning
        if self.pipeline != "dense":
            parts += [p.criterion if p.control != "uniform" else "uniform", f"p={p.p}"]
            if p.control not in ("none", "uniform"):
                parts.append(p.control)
        if self.pipeline == "ticket_rewind":
            parts.append(f"i={p.rewind_epoch}")
        if self.pipeline == "reinit" and p.reinit_of == "ticket_rewind":
            parts.append("of=rewind")
        if p.draw:
            parts.append(f"draw={p.draw}")
        return " ".join(parts + [f"seed={self.seed}"])


DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
RANDOM_CONTROLS = ("same_stage_random", "shuffled_labels", "random_inputs")


def _reads_target(criterion: str) -> bool:
    """Whether a block criterion has the branch/output `target` option (the activation criteria)."""
    from lottery_core.criteria import registry

    try:
        return "target" in registry.get(criterion, "block").options
    except Exception:  # an unknown criterion is reported by validation
        return False


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _identity_fields(obj) -> dict:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            nested = _identity_fields(value)
            if nested:
                out[f.name] = nested
        elif f.metadata.get("identity", True) and value != f.default:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def flatten(obj, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out.update(flatten(value, f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = list(value) if isinstance(value, tuple) else value
    return out


def help_text(cls=RunConfig, prefix: str = "") -> list[str]:
    """One line per field: `section.key (default): help [choices]`."""
    lines = []
    for f in fields(cls):
        if is_dataclass(f.type) or (isinstance(f.default_factory, type) and is_dataclass(f.default_factory)):
            lines += help_text(f.default_factory, f"{prefix}{f.name}.")
        else:
            extra = f" [{'|'.join(map(str, f.metadata['choices']))}]" if f.metadata.get("choices") else ""
            lines.append(f"{prefix}{f.name} ({f.default!r}): {f.metadata['help']}{extra}")
    return lines


# --- loading and validation ------------------------------------------------------------------

def load_config(source: str | Path | dict | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """A validated RunConfig from a YAML file or dict, then `section.key=value` overrides."""
    if source is None:
        raw: dict = {}
    elif isinstance(source, dict):
        raw = json.loads(json.dumps(source, default=list))  # deep copy, tuples -> lists
    else:
        raw = yaml_strict.read_mapping(source, "config", "a mapping of sections, got {got}")
    apply_overrides(raw, overrides)
    return build_config(raw)


def apply_overrides(raw: dict, overrides) -> None:
    """Set each `section.key=value` in `raw`, the value read as strict YAML (`1e-3` is a number)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LotteryError(f"override {item!r} is not of the form section.key=value")
        set_dotted(raw, key.strip(), yaml_strict.loads(value, f"--set {item}") if value.strip() else None)


def set_dotted(raw: dict, key: str, value) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise LotteryError(f"override {key!r}: {part!r} is not a section")
    node[leaf] = value


def build_config(raw: dict, cls=RunConfig, prefix: str = ""):
    """Construct and validate `cls` from a nested dict; errors name the dotted field."""
    if not isinstance(raw, dict):
        raise LotteryError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {raw!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise LotteryError(f"unknown config key '{prefix}{unknown[0]}'; "
                           f"allowed in {prefix.rstrip('.') or 'the top level'}: {', '.join(known)}")
    hints = get_type_hints(cls)
    values = {}
    for name, value in raw.items():
        f = known[name]
        sub = _dataclass_type(hints[name])
        if sub is not None:
            values[name] = build_config(value or {}, sub, f"{prefix}{name}.")
        else:
            values[name] = _coerce(value, hints[name], f, f"{prefix}{name}")
    cfg = cls(**values)
    if cls is RunConfig:
        _cross_check(cfg)
    return cfg


def _dataclass_type(tp):
    return tp if isinstance(tp, type) and is_dataclass(tp) else None


def _coerce(value, tp, f: dataclasses.Field, name: str):
    origin, args = get_origin(tp), get_args(tp)
    optional = origin in (Union, __import__("types").UnionType) and type(None) in args
    if optional:
        if value is None:
            return None
        tp = next(a for a in args if a is not type(None))
        origin, args = get_origin(tp), get_args(tp)
    if origin is tuple:
        items = value if isinstance(value, list | tuple) else [value]
        item_tp = args[0]
        result = tuple(_scalar(v, item_tp, f"{name}[{i}]") for i, v in enumerate(items))
    else:
        result = _scalar(value, tp, name)
        meta = f.metadata
        if meta.get("choices") and result not in meta["choices"]:
            raise LotteryError(f"{name}={result!r} is not allowed; choose one of: {', '.join(map(str, meta['choices']))}")
        if meta.get("low") is not None and result < meta["low"]:
            raise LotteryError(f"{name}={result!r} is below the minimum {meta['low']}")
        if meta.get("high") is not None and result > meta["high"]:
            raise LotteryError(f"{name}={result!r} is above the maximum {meta['high']}")
    return result


def _scalar(value, tp, name: str):
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise LotteryError(f"{name} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise LotteryError(f"{name} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise LotteryError(f"{name} must be a finite number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise LotteryError(f"{name} must be a string, got {value!r}")
    raise LotteryError(f"{name}: unsupported type {tp}")


def _cross_check(cfg: RunConfig) -> None:
    """Checks that span sections or need the library (model names, criteria, p, rewind point)."""
    from lottery_core import models

    if not DEVICE.fullmatch(cfg.device):
        raise LotteryError(f"device={cfg.device!r} is not allowed; choose auto, cpu, cuda or cuda:N (N = 0, 1, ...)")
    if cfg.model.name not in models.names():
        raise LotteryError(f"model.name={cfg.model.name!r} is unknown; choose one of: {', '.join(models.names())}")
    t = cfg.training
    if any(not 0 < m < 1 for m in t.milestones):
        raise LotteryError(f"training.milestones={list(t.milestones)} must be fractions of the epochs in (0, 1)")
    if t.warmup_epochs >= t.epochs:
        raise LotteryError(f"training.warmup_epochs={t.warmup_epochs} must be below training.epochs={t.epochs}")
    try:
        t.settings()   # the engine's own rules (one-cycle, label smoothing, momentum ranges)
    except LotteryError as err:
        raise LotteryError(f"training: {err}") from None
    if cfg.model.init != "kaiming" and "init" not in models.options(cfg.model.name):
        raise LotteryError(f"model.init={cfg.model.init!r} applies to the CIFAR ResNets; {cfg.model.name} keeps "
                           "torchvision's own init (leave model.init at kaiming)")
    if cfg.pipeline == "ticket_rewind" and cfg.pruning.rewind_epoch >= t.epochs:
        raise LotteryError(f"pruning.rewind_epoch={cfg.pruning.rewind_epoch} must be below "
                           f"training.epochs={t.epochs} (rewind point i < n)")
    if cfg.pipeline == "ticket_rewind" and cfg.pruning.rewind_epoch not in t.keep_epochs:
        raise LotteryError(f"pruning.rewind_epoch={cfg.pruning.rewind_epoch} is not one of training.keep_epochs="
                           f"{list(t.keep_epochs)}: the dense run keeps only those θ_i; add it there (the dense "
                           "run is then a new run) or rewind to a kept epoch")
    ev = cfg.evaluation
    if any(not 1 <= s <= 5 for s in ev.severities):
        raise LotteryError(f"evaluation.severities={list(ev.severities)}: severities are 1 to 5")
    if any(not 0 <= e <= 1 for e in ev.epsilons):
        raise LotteryError(f"evaluation.epsilons={list(ev.epsilons)}: epsilons are in [0, 1] (pixel units; 8/255 = 0.0314)")
    _check_pruning(cfg)
    _check_evaluation(cfg)
    uri = cfg.tracking.tracking_uri
    if uri and secrets.has_credentials(uri):
        raise LotteryError(f"tracking.tracking_uri={secrets.redact(uri)} carries credentials, which would reach "
                           "params, sweep files and logs; give the URI without them and set "
                           "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (read by MLflow)")
    if cfg.data.name == "folder" and not (cfg.data.root or os.environ.get("LOTTERY_DATA_DIR")):
        raise LotteryError("data.name=folder needs data.root (or LOTTERY_DATA_DIR)")


def _check_pruning(cfg: RunConfig) -> None:
    from lottery_core import criteria, models, surgery
    from lottery_core.criteria import registry
    from lottery_core.criteria.score import check_options
    from lottery_core.errors import choose

    if cfg.pipeline == "dense":
        return
    criterion = cfg.pruning.criterion
    choose("criterion", criterion, criteria.names("block"))
    if cfg.pipeline == "filter_ticket" and criterion not in criteria.names("weight"):
        raise LotteryError(f"criterion {criterion!r} is unknown at filter level; choose one of: "
                           f"{', '.join(criteria.names('weight'))}")
    _check_control(cfg)
    level = "weight" if cfg.pipeline == "filter_ticket" else "block"
    p = cfg.pruning
    try:
        check_options(registry.get(criterion, level), {"bn_mode": None if p.bn_mode == "auto" else p.bn_mode,
                                                       "temperature": p.temperature, "target": p.target})
    except LotteryError as err:
        raise LotteryError(f"pruning: {err}") from None
    model = models.build(cfg.model.name, **cfg.model.builder_options())
    limit = surgery.max_removable(model, cfg.pruning.min_blocks_per_stage)
    if cfg.pruning.p > limit:
        raise LotteryError(f"pruning.p={cfg.pruning.p} exceeds the {limit} blocks {cfg.model.name} may lose "
                           f"(min_blocks_per_stage={cfg.pruning.min_blocks_per_stage})")


def _check_evaluation(cfg: RunConfig) -> None:
    from lottery_core import robustness
    from lottery_core.errors import choose

    for name in cfg.evaluation.corruptions:
        if name != "all":
            choose("corruption", name, robustness.CORRUPTIONS)
    for name in cfg.evaluation.attacks:
        choose("attack", name, robustness.ATTACKS)


def _check_control(cfg: RunConfig) -> None:
    """A control must make sense for its pipeline and criterion."""
    from lottery_core.criteria import registry

    control, criterion = cfg.pruning.control, cfg.pruning.criterion
    if control == "none":
        return
    if cfg.pipeline not in CONTROL_PIPELINES:
        raise LotteryError(f"pruning.control={control} applies to {' and '.join(CONTROL_PIPELINES)}, not "
                           f"pipeline={cfg.pipeline} (reinit is itself the control of Algorithm 1)")
    if control == "uniform":
        return
    if criterion == "random":
        raise LotteryError(f"pruning.control={control} needs a criterion that scores blocks; criterion=random "
                           f"is already the random control (vary pruning.draw for more draws)")
    c = registry.get(criterion, "block")
    if control == "shuffled_labels" and not c.reads_labels:
        readers = [n for n in criteria_names() if registry.get(n, "block").reads_labels]
        raise LotteryError(f"pruning.control=shuffled_labels: criterion {criterion!r} reads no labels; "
                           f"criteria that do: {', '.join(readers)}")
    if control == "random_inputs" and not c.needs_data:
        readers = [n for n in criteria_names() if registry.get(n, "block").needs_data]
        raise LotteryError(f"pruning.control=random_inputs: criterion {criterion!r} reads no data; "
                           f"data-driven criteria: {', '.join(readers)}")


def criteria_names() -> list[str]:
    from lottery_core import criteria

    return criteria.names("block")
