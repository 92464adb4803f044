import pytest

from lottery_core.errors import LotteryError
from pipelines.config import RunConfig, help_text, load_config


def test_defaults_have_a_stable_identity_and_defaults_are_left_out():
    assert load_config().identity() == RunConfig().identity()
    explicit = load_config({"pruning": {"p": 1}, "training": {"epochs": 160}})
    assert explicit.identity() == RunConfig().identity()  # values equal to defaults do not count


def test_identity_ignores_where_results_go_but_not_what_is_computed():
    base = load_config()
    assert load_config(None, ["tracking.results_dir=/elsewhere", "device=cpu"]).identity() == base.identity()
    assert load_config(None, ["seed=1"]).identity() != base.identity()
    assert load_config(None, ["pruning.p=2"]).identity() != base.identity()


def test_dense_counterpart_drops_the_pruning_section():
    ticket = load_config(None, ["pruning.p=3", "pruning.criterion=snip", "seed=2"])
    dense = ticket.dense()
    assert dense.pipeline == "dense" and dense.seed == 2 and dense.pruning.p == 1
    assert dense.identity() == load_config(None, ["pipeline=dense", "seed=2"]).identity()


def test_yaml_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("pipeline: dense\nmodel: {name: resnet20}\ntraining:\n  epochs: 3\n  milestones: [0.5]\n")
    cfg = load_config(path, ["training.lr=0.05", "evaluation.attacks=[]"])
    assert (cfg.pipeline, cfg.model.name, cfg.training.epochs, cfg.training.lr) == ("dense", "resnet20", 3, 0.05)
    assert cfg.training.milestones == (0.5,) and cfg.evaluation.attacks == ()
    assert cfg.to_flat()["training.milestones"] == [0.5]


@pytest.mark.parametrize("overrides,message", [
    (["pruning.q=1"], r"unknown config key 'pruning.q'; allowed in pruning: criterion, p,"),
    (["pruning.p=-1"], r"pruning.p must be an integer >= 0, got -1"),
    (["training.schedule=linear"], r"unknown training.schedule 'linear'; choose one of: step, cosine, onecycle"),
    (["pipeline=ticket_rewind", "pruning.rewind_epoch=160"], r"rewind_epoch=160 must be below training.epochs=160"),
    (["training.lr=abc"], r"training.lr must be a number >= 0, got 'abc'"),
    (["model.name=vgg"], r"model.name='vgg' is unknown; choose one of: .*resnet56"),
    (["evaluation.severities=[0,6]"], r"evaluation.severities must be a list of integers in \[1, 5\], got \[0, 6\]"),
    (["evaluation.epsilons=[2]"], r"evaluation.epsilons must be a list of numbers in \[0, 1\], got \[2\]"),
    (["pruning"], r"not of the form section.key=value"),
    (["training.nesterov=3"], r"training.nesterov must be true or false"),
])
def test_bad_values_name_the_field_and_what_is_allowed(overrides, message):
    with pytest.raises(LotteryError, match=message):
        load_config(None, overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(LotteryError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_every_field_and_criterion_option_has_one_help_line():
    from pipelines.config import flatten
    from pipelines.config.building import settable_criterion_options

    lines = help_text()
    named = [line.split(" ", 1)[0] for line in lines]
    fields = set(flatten(RunConfig())) - {"pruning.options"}   # the criterion options' bag: listed one by one
    assert sorted(named) == sorted(fields | {f"pruning.{n}" for n in settable_criterion_options()})
    assert all(": " in line and not line.endswith(": ") for line in lines)


def test_shipped_configs_load_and_tickets_find_their_dense_config():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "configs"
    for scale in ("paper", "quick"):
        configs = {p.name: load_config(p) for p in (root / scale).glob("*.yaml")}
        dense = configs["resnet32_dense.yaml"]
        assert dense.pipeline == "dense"
        for name, cfg in configs.items():
            if name.startswith("resnet32_"):
                assert cfg.dense().identity() == dense.identity(), name


def test_settings_a_pipeline_does_not_read_leave_its_identity_alone():
    assert load_config(None, ["pipeline=dense", "pruning.p=4"]).identity() == load_config(None, ["pipeline=dense"]).identity()
    assert load_config(None, ["pruning.rewind_epoch=5"]).identity() == load_config().identity()
    rewind = ["pipeline=ticket_rewind"]
    assert load_config(None, rewind + ["pruning.rewind_epoch=25"]).identity() != load_config(None, rewind).identity()
