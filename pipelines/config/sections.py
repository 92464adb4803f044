"""The run config's sections and the names they choose from: frozen dataclasses whose fields
carry their declarations.

Training settings and criterion options are declared by the library (`lottery_core.train.settings.
OPTIONS`, each criterion's `OPTIONS` through the criteria registry), a pipeline's own settings by
its declaration (`pipeline_registry`), the controls by the control registry; the rest (p, the data
subsets, ...) is declared here with `option`. Nothing in this module imports torch, and
nothing here imports the rest of `pipelines.config`: identity, checks and building read the
sections, `schema.RunConfig` gathers them.
"""
from dataclasses import dataclass, field, fields
from typing import Any

from lottery_core.criteria import registry as criteria_registry
from lottery_core.criteria.control_registry import control_names, describe_controls, get_control
from lottery_core.options import by_name
from lottery_core.train.settings import OPTIONS as TRAIN_OPTIONS
from pipelines.config.fields import declared, option
from pipelines.config.pipeline_registry import pipeline_options

TRAIN = by_name(TRAIN_OPTIONS)
CRITERION_OPTIONS = criteria_registry.declared_options()
PIPELINE_OPTIONS = pipeline_options()


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
    root: str | None = option(None, kind=str, help="data directory (ImageFolder copy or torchvision root); "
                              "default $LOTTERY_DATA_DIR, else torchvision download", identity=False)
    fingerprint: str | None = option(None, kind=str, help="content fingerprint of the data set (blake2b-<16 hex digits>); "
                                     "filled in from the data where it is read, and checked there")
    train_size: int | None = option(None, "class-balanced training subset size (None = all)", low=1)
    test_size: int | None = option(None, "class-balanced test subset size (None = all)", low=1)
    test_seed: int = option(0, "seed of the test subset and of the corruption, attack and CKA "
                            "subsets: the same images for every run seed", low=0)
    val_size: int = option(0, "held-out validation images carved from train, class-balanced", low=0)


@dataclass(frozen=True)
class TrainingConfig:
    """The training settings: every rule declared once, in `lottery_core.train.settings.OPTIONS`."""

    epochs: int = declared(TRAIN["epochs"])
    batch_size: int = declared(TRAIN["batch_size"])
    lr: float = declared(TRAIN["lr"])
    momentum: float = declared(TRAIN["momentum"])
    nesterov: bool = declared(TRAIN["nesterov"])
    weight_decay: float = declared(TRAIN["weight_decay"])
    schedule: str = declared(TRAIN["schedule"])
    milestones: tuple[float, ...] = declared(TRAIN["milestones"])
    gamma: float = declared(TRAIN["gamma"])
    warmup_epochs: int = declared(TRAIN["warmup_epochs"])
    pct_start: float = declared(TRAIN["pct_start"])
    div_factor: float = declared(TRAIN["div_factor"])
    final_div_factor: float = declared(TRAIN["final_div_factor"])
    base_momentum: float = declared(TRAIN["base_momentum"])
    label_smoothing: float = declared(TRAIN["label_smoothing"])
    amp: bool = declared(TRAIN["amp"], identity=False, help=TRAIN["amp"].help + "; the identity holds the "
                         "resolved precision")
    require_precision: str = option("any", "the precision the run must compute in: any (what amp and the device "
                                    "give), fp32 or bf16; a machine or amp setting that would compute another "
                                    "is refused, so a study spread over machines never mixes precisions",
                                    choices=("any", "fp32", "bf16"), identity=False)
    compile: bool = declared(TRAIN["compile"], identity=False)
    eval_every: int = declared(TRAIN["eval_every"], identity=False)
    keep_epochs: tuple[int, ...] = option((0, 25, 50, 75), "dense runs keep the weights of these epochs "
                                          "(rewind points θ_i); epochs >= n are ignored", identity=False,
                                          low=0, sequence=True)

    def settings(self, threads: int | None = None):
        """The engine's TrainSettings for this section (checked again there, by the same declarations)."""
        from lottery_core.train.settings import TrainSettings

        return TrainSettings(**{n: getattr(self, n) for n in SETTINGS_FIELDS}, threads=threads)


# the training section's fields the engine's TrainSettings takes (every one the engine declares)
SETTINGS_FIELDS = tuple(f.name for f in fields(TrainingConfig) if f.name in TRAIN)


@dataclass(frozen=True)
class PruningConfig:
    criterion: str = option("grasp", "criterion that scores blocks (or filters): see `lottery info --list criteria`")
    p: int = option(1, "number of residual blocks removed (filter tickets: matched to this block ticket)", low=0)
    stage_counts: tuple[int, ...] = option((), "blocks removed from each stage, stage 1 first (e.g. [2, 3, 1]), "
                                           "the criterion choosing which within each stage; p must be their "
                                           "sum. Empty: the criterion's p lowest, wherever they are",
                                           kind=int, low=0, sequence=True)
    rewind_epoch: int = declared(PIPELINE_OPTIONS["rewind_epoch"])   # declared by ticket_rewind
    min_blocks_per_stage: int = option(2, "blocks every stage keeps at least (authors' code: 2)", low=1)
    images_per_class: int = option(10, "class-balanced scoring images per class", low=1)
    bn_mode: str = option("auto", "BatchNorm mode while scoring; auto = the criterion's own (train for "
                          "SNIP/GraSP, eval for SynFlow and the activation criteria, KL, CKA; train for those "
                          "too while BatchNorm holds θ_0's placeholder statistics)",
                          choices=("auto", "train", "eval"))
    aggregate: str = option("sum", "how weight scores become a block score", choices=("sum", "mean"))
    temperature: float = declared(CRITERION_OPTIONS["temperature"])   # declared by criteria/grasp.py
    target: str = declared(CRITERION_OPTIONS["target"])             # declared by criteria/target.py
    control: str = option("none", "a control instead of the criterion's p lowest: "
                          + "; ".join(f"{n} ({summary})" for n, summary in describe_controls().items()),
                          choices=control_names)
    draw: int = option(0, "random draw index (criterion random, control same_stage_random, shuffled_labels, "
                       "random_inputs): draws are seeded by (seed, draw)", low=0)
    reinit_of: str = declared(PIPELINE_OPTIONS["reinit_of"])             # declared by reinit
    filter_match: str = declared(PIPELINE_OPTIONS["filter_match"])       # declared by filter_ticket
    iterative_mode: str = declared(PIPELINE_OPTIONS["iterative_mode"])   # declared by iterative, as are:
    blocks_per_round: int = declared(PIPELINE_OPTIONS["blocks_per_round"])
    macs_budget: float | None = declared(PIPELINE_OPTIONS["macs_budget"])
    stop_xi: float | None = declared(PIPELINE_OPTIONS["stop_xi"])
    # other options the criteria declare, given as `pruning.NAME: value` (listed by `lottery run --fields`)
    options: tuple[tuple[str, Any], ...] = field(default=(), metadata={"identity": True})

    def chooser(self) -> str:
        """What chooses the removed blocks: the criterion, or the control when it reads none (uniform)."""
        control = get_control(self.control)
        return self.criterion if control is None or control.reads_criterion else control.name

    def criterion_options(self) -> dict[str, Any]:
        """The criterion options this section sets: bn_mode, temperature, target and `options`."""
        return {"bn_mode": None if self.bn_mode == "auto" else self.bn_mode, "temperature": self.temperature,
                "target": self.target, **dict(self.options)}


@dataclass(frozen=True)
class EvaluationConfig:
    corruptions: tuple[str, ...] = option(("all",), sequence=True, help="CIFAR-10-C corruptions generated from the test set ('all' or names; () = none)")
    severities: tuple[int, ...] = option((1, 2, 3, 4, 5), "corruption severities (1-5)", low=1, high=5,
                                          sequence=True)
    corruption_images: int = option(1000, "test images used for corruption accuracy", low=0)
    attacks: tuple[str, ...] = option(("fgsm", "pgd"), sequence=True, help="gradient attacks (torchattacks), () = none")
    epsilons: tuple[float, ...] = option((2 / 255, 8 / 255), "L-inf attack budgets in [0, 1] pixel units "
                                          "(8/255 = 0.0314)", low=0.0, high=1.0, sequence=True)
    attack_images: int = option(500, "test images attacked", low=0)
    cka_images: int = option(500, "test images for CKA versus the dense network", low=0)
    cifar10_c_dir: str | None = option(None, kind=str, help="official CIFAR-10-C .npy directory (optional)", identity=False)
    cifar10_1_dir: str | None = option(None, kind=str, help="CIFAR-10.1 .npy directory (optional)", identity=False)
    cifar10_2_dir: str | None = option(None, kind=str, help="CIFAR-10.2 .npz directory (optional)", identity=False)
    xi: float = option(0.0, "winning ticket: acc(ticket) + xi >= acc(dense), in accuracy points", identity=False)
    country_iso_code: str = option("FRA", "country whose grid sets the CO2 factor (codecarbon, offline)")


@dataclass(frozen=True)
class TrackingConfig:
    experiment: str = option("block-tickets", "MLflow experiment name", identity=False)
    results_dir: str = option("lottery-runs", "folder for the SQLite store, artifacts, checkpoints (made absolute)", identity=False)
    tracking_uri: str | None = option(None, kind=str, help="MLflow tracking URI; default $MLFLOW_TRACKING_URI, else sqlite in results_dir", identity=False)
    log_model: bool = option(False, "log the trained network as an MLflow model (mlflow.pytorch, pickle) with its "
                             "plan: mlflow.pytorch.load_model gives back the physically shallower network", identity=False)
    export_onnx: bool = option(False, "export the trained network to ONNX (dynamic batch) and log it as the "
                               "artifact onnx/<pipeline>.onnx (a few seconds)", identity=False)
