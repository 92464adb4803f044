"""One declaration per setting: the config's fields, help and validation derive from the library's
declarations (train settings, criterion options), and nothing the config accepts is refused later."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from lottery_core import criteria, models, robustness, surgery
from lottery_core.criteria import registry
from lottery_core.criteria.applicability import model_traits
from lottery_core.errors import LotteryError
from lottery_core.options import Option
from lottery_core.train.settings import OPTIONS as TRAIN_OPTIONS
from lottery_core.train.settings import TrainSettings
from pipelines.config import help_text, load_config
from pipelines.config.checks import ATTACK_NAMES, CORRUPTION_NAMES
from pipelines.config.schema import TrainingConfig

# every training field is the library's declaration, but for the two only the pipelines read
CONFIG_TRAINING = {f for f in TrainingConfig.__dataclass_fields__ if f not in ("keep_epochs", "require_precision")}


def test_a_new_criterion_with_an_option_is_validated_and_documented_by_its_declaration(monkeypatch):
    monkeypatch.setattr(registry, "_CRITERIA", dict(registry._CRITERIA))

    def sharp(model, batches, *, sharpness: int = 3):
        return {}

    option = Option("sharpness", int, 3, "how sharp the fake criterion is", low=1, high=10)
    criteria.register("sharp", sharp, level="weight", needs_data=False, bn_mode=None, options=(option,))
    base = ["pruning.criterion=sharp"]
    assert load_config(None, base + ["pruning.sharpness=10"]).pruning.options == (("sharpness", 10),)
    assert load_config(None, base + ["pruning.sharpness=1"]).pruning.criterion_options()["sharpness"] == 1
    for bad in ("0", "11", "2.5"):
        with pytest.raises(LotteryError, match=rf"^pruning.sharpness must be an integer in \[1, 10\], got {bad}$"):
            load_config(None, base + [f"pruning.sharpness={bad}"])
    assert "pruning.sharpness (3): how sharp the fake criterion is [an integer in [1, 10]]" in help_text()
    # a non-default value is in the identity; the default value and other criteria leave it alone
    default = load_config(None, base).identity()
    assert load_config(None, base + ["pruning.sharpness=3"]).identity() == default
    assert load_config(None, base + ["pruning.sharpness=4"]).identity() != default
    assert (load_config(None, ["pruning.criterion=snip", "pruning.sharpness=4"]).identity()
            == load_config(None, ["pruning.criterion=snip"]).identity())
    again = load_config(None, base + ["pruning.sharpness=4"]).with_overrides({"pruning.p": 2})
    assert again.pruning.options == (("sharpness", 4),) and again.pruning.p == 2


def test_every_criterion_function_takes_exactly_its_declared_options():
    for level in registry.LEVELS:
        for name in registry.names(level):
            c = registry.get(name, level)
            registry.check_declarations(name, c.fn, c.declared)   # imports the function (torch)


def test_the_training_section_is_the_libraries_declarations():
    declared = {o.name: o for o in TRAIN_OPTIONS}
    for name in CONFIG_TRAINING:
        field = TrainingConfig.__dataclass_fields__[name]
        assert field.metadata["option"].allowed() == declared[name].allowed(), name
        assert field.default == declared[name].default, name
    assert TrainSettings(epochs=1).lr == declared["lr"].default


INSIDE = 1e-6   # "just inside / outside" an end: this much of max(1, |end|) away from it


def boundary_values(option: Option) -> list:
    """The extreme values `option` accepts: inclusive ends, and just inside open ends."""
    if option.choices is not None and option.sequence:   # the fewest and the most choices allowed
        return [list(option.choices[:max(option.min_distinct, 1)]), list(option.choices)]
    if option.choices is not None:
        return list(option.choices)
    if option.kind is bool:
        return [False, True]
    if option.kind not in (int, float):
        return []
    out = []
    for end, is_open, step in ((option.low, option.low_open, 1), (option.high, option.high_open, -1)):
        if end is None:
            continue
        if not is_open:
            out.append(option.kind(end))
        elif option.kind is int:
            out.append(int(end) + step)
        else:
            out.append(end + step * INSIDE * max(1.0, abs(end)))
    return [[v] if option.sequence else v for v in out]


def outside_values(option: Option) -> list:
    """Values just outside `option`'s range (refused): below a low end, above a high end."""
    if option.kind not in (int, float) or option.choices is not None:
        return []
    out = []
    for end, is_open, step in ((option.low, option.low_open, -1), (option.high, option.high_open, 1)):
        if end is None:
            continue
        if is_open:
            out.append(option.kind(end))
        else:
            out.append(int(end) + step if option.kind is int else end + step * INSIDE * max(1.0, abs(end)))
    return [[v] if option.sequence else v for v in out]


def _values(option: Option, which: str):
    return boundary_values(option) if which == "inside" else outside_values(option)


TRAIN_CASES = [(o, v) for o in TRAIN_OPTIONS if o.name in CONFIG_TRAINING for v in _values(o, "inside")]


@pytest.mark.parametrize("option, value", TRAIN_CASES, ids=[f"{o.name}={v}" for o, v in TRAIN_CASES])
def test_training_boundaries_the_config_accepts_the_library_accepts(option, value):
    extra = {"epochs": ["training.epochs=2"], "warmup_epochs": ["training.epochs=2"]}.get(option.name, [])
    if option.name == "base_momentum":
        extra = ["training.momentum=0.999999"]   # base_momentum <= momentum: one-cycle's rule
    if option.name == "nesterov" and value:
        extra = []
    cfg = load_config(None, [*extra, f"training.{option.name}={json.dumps(value)}"])
    settings = cfg.training.settings(threads=1)      # the engine's own checks: no refusal
    assert getattr(settings, option.name) == getattr(cfg.training, option.name)


OUTSIDE = [(o, v) for o in TRAIN_OPTIONS if o.name in CONFIG_TRAINING for v in _values(o, "outside")]


@pytest.mark.parametrize("option, value", OUTSIDE, ids=[f"{o.name}={v}" for o, v in OUTSIDE])
def test_training_values_just_outside_are_refused_by_the_config_in_one_line(option, value):
    with pytest.raises(LotteryError, match=rf"^training.{option.name} must be .*, got ") as err:
        load_config(None, [f"training.{option.name}={json.dumps(value)}"])
    with pytest.raises(LotteryError):
        TrainSettings(**{"epochs": 3, option.name: value})
    assert "\n" not in str(err.value)


# torch.compile on the CPU costs tens of seconds of compilation: it is measured by
# `python -m benchmarks.engine_step --compile`, not trained here (its value is still checked above)
TRAINED_CASES = [(o, v) for o, v in TRAIN_CASES if not (o.name == "compile" and v)]


@pytest.mark.parametrize("option, value", TRAINED_CASES, ids=[f"{o.name}={v}" for o, v in TRAINED_CASES])
def test_one_epoch_trains_at_each_training_boundary(option, value):
    """The extreme values the config accepts train one epoch of a tiny network without a refusal."""
    from test_train import DATA, fresh

    from lottery_core.train import train

    extra = {"base_momentum": ["training.momentum=0.999999"]}.get(option.name, [])
    cfg = load_config(None, [*extra, "training.epochs=2", "training.batch_size=16",
                             f"training.{option.name}={json.dumps(value)}"])
    if option.name == "epochs":
        cfg = cfg.with_overrides({"training.epochs": value})
    settings = cfg.training.settings(threads=1)
    result = train(fresh(), DATA, settings, seed=0, start_epoch=settings.epochs - 1)   # the last epoch only
    assert len(result.history) == 1 and math.isfinite(result.final["train_loss"]), option.name


CRITERION_CASES = [(c.name, c.level, o, v) for lv in registry.LEVELS for n in registry.names(lv)
                   for c in [registry.get(n, lv)] for o in c.declared if o.name != "input_size"
                   for v in _values(o, "inside")]


@pytest.mark.parametrize("name, level, option, value", CRITERION_CASES,
                         ids=[f"{n}-{lv}-{o.name}={v}" for n, lv, o, v in CRITERION_CASES])
def test_criterion_option_boundaries_pass_the_config_and_the_library(name, level, option, value):
    c = registry.get(name, level)
    held = option.check(value)   # as the option holds it: a list as a tuple
    assert registry.check_options(c, {option.name: value}) == {option.name: held}
    if option.name == "seed":   # supplied by the pipelines, not a config setting
        return
    pipeline = "filter_ticket" if level == "weight" and name not in registry.names("block") else "ticket_init"
    cfg = load_config(None, [f"pipeline={pipeline}", f"pruning.criterion={name}",
                             f"pruning.{option.name}={json.dumps(value)}"])
    assert cfg.pruning.criterion_options().get(option.name, option.default) == held   # a default is left out


@pytest.mark.parametrize("temperature", boundary_values([o for o in registry.get("grasp", "weight").declared][0]))
def test_grasp_scores_at_its_smallest_accepted_temperature(temperature):
    import math

    import torch

    torch.manual_seed(0)
    model = models.build("resnet20")
    batches = [(torch.randn(4, 3, 32, 32), torch.arange(4))]
    load_config(None, [f"pruning.temperature={temperature}"])
    scores = criteria.score_blocks(model, "grasp", batches, temperature=temperature)
    assert all(math.isfinite(s) for s in scores.values())


def test_criterion_options_just_outside_are_refused_by_the_config():
    temperature = registry.get("grasp", "weight").declared[0]
    for value in outside_values(temperature):
        with pytest.raises(LotteryError, match=r"^pruning.temperature must be a number in \(0, inf\), got"):
            load_config(None, [f"pruning.temperature={value}"])
    with pytest.raises(LotteryError, match=r"^pruning.components must be an integer >= 1, got 0$"):
        load_config(None, ["pruning.criterion=pls", "pruning.components=0"])
    with pytest.raises(LotteryError, match=r"synflow needs bn_mode='eval'"):
        load_config(None, ["pruning.criterion=synflow", "pruning.bn_mode=train"])


# {model: its stage budget at min_blocks_per_stage 1, 2, 3 (stage 1 first), None without residual
# blocks}: the layouts the catalog once restated, now read off the model by `surgery.stage_budget`
STAGE_BUDGETS = {
    **{f"resnet{6 * n + 2}": {k: (min(n, n - k),) + (min(n - 1, n - k),) * 2 for k in (1, 2, 3)} for n in (3, 5, 7, 9, 18)},
    "resnet18": {1: (1, 1, 1, 1), 2: (0, 0, 0, 0), 3: (0, 0, 0, 0)},
    "resnet34": {1: (2, 3, 5, 2), 2: (1, 2, 4, 1), 3: (0, 1, 3, 0)},
    "resnet50": {1: (2, 3, 5, 2), 2: (1, 2, 4, 1), 3: (0, 1, 3, 0)},
    "mobilenet_v2": {1: (0, 1, 2, 3, 2, 2, 0), 2: (0, 0, 1, 2, 1, 1, 0), 3: (0, 0, 0, 1, 0, 0, 0)},
    "vgg11_bn": {1: None, 2: None, 3: None},
    "vit_tiny": {1: (5,), 2: (4,), 3: (3,)},
}


def test_the_stage_budget_is_read_off_the_model_the_same_on_the_meta_device():
    """One rule for p (`surgery.stage_budget`): on a built model and on its `skeleton` (what the
    run config checks p and stage_counts against), for every registered model."""
    assert sorted(STAGE_BUDGETS) == models.names()
    for name, expected in STAGE_BUDGETS.items():
        for keep, budgets in expected.items():
            for model in (models.skeleton(name), models.build(name)):
                try:
                    got = tuple(surgery.stage_budget(model, keep).values())
                except LotteryError:
                    got = None
                assert got == budgets, (name, keep)
        assert model_traits(models.skeleton(name)) == model_traits(models.build(name)), name
        if expected[2] is not None:
            with pytest.raises(LotteryError, match=rf"^pruning.p={sum(expected[2]) + 1} exceeds the "
                                                   rf"{sum(expected[2])} blocks {name} may lose"):
                load_config(None, [f"model.name={name}", f"pruning.p={sum(expected[2]) + 1}", "pruning.criterion=kl"])
        else:
            with pytest.raises(LotteryError, match=rf"^{name} has no removable residual blocks$"):
                load_config(None, [f"model.name={name}", "pruning.p=1"])


def test_the_robustness_names_equal_the_real_registries():
    assert CORRUPTION_NAMES == robustness.CORRUPTIONS and ATTACK_NAMES == robustness.ATTACKS


HEAVY = ("torch", "torchvision", "mlflow", "ray")


def test_refusing_a_type_range_or_cross_field_error_imports_nothing_heavy():
    """Refusing a config for any rule but the model's (`checks.check_model`, which imports torch), and
    the `lottery run` refusal of a bad one, in a fresh process."""
    code = f"""
import sys
from pipelines.config import load_config
from lottery_core.errors import LotteryError
for extra in (["pruning.p=-2"], ["pipeline=filter_ticket", "pruning.criterion=hrank"],
              ["pipeline=ticket_rewind", "training.epochs=10", "pruning.rewind_epoch=10"],
              ["pruning.criterion=pls", "pruning.components=0"], ["evaluation.corruptions=[fogg]"],
              ["pruning.stage_counts=[1,1,1]", "pruning.p=2"], ["model.name=resnet50", "training.lr=-1"]):
    try:
        load_config(None, extra)
    except LotteryError:
        pass
    else:
        raise SystemExit(f"accepted: {{extra}}")
from pipelines.cli import main
rc = main(["run", "--set", "training.momentum=1.0"])
print(rc, [m for m in {HEAVY!r} if m in sys.modules])
"""
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert result.stdout.split("\n")[0] == "2 []", result.stdout + result.stderr
    assert "training.momentum must be a number in [0, 1), got 1.0" in result.stderr
