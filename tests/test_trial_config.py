"""A trial gets its grid point's validated RunConfig: the one the driver built where the sweep file
was read, found by its nested plain form (what Ray keeps through a restore) in the sweep's table of
built configs; a plain form the table lacks is built back into exactly that config; sampled values
are validated again."""
import json
import pickle
from dataclasses import replace

import pytest

from lottery_core.errors import LotteryError
from pipelines.config import build_config, load_config, to_raw
from pipelines.config.loading import set_dotted
from tune.sweep_file import load_sweep
from tune.trial import built_configs, trial_config

DEMO = load_sweep("tune/sweeps/demo.yaml")
TABLE = built_configs(DEMO.configs())


def rebuilt_identity(cfg, sampled: dict) -> str:
    """The identity as trials computed it before configs travelled frozen: a dict, rebuilt."""
    point = json.loads(json.dumps(to_raw(cfg)))
    for key, value in sampled.items():
        set_dotted(point, key, value)
    return build_config({**point, "device": "cpu", "threads": 1}).identity()


@pytest.mark.parametrize("index", range(len(DEMO.points)))
def test_a_validated_grid_point_is_the_trials_config_and_keeps_its_identity(index):
    frozen = DEMO.points[index]
    plain = {"run": to_raw(frozen), "sweep": "s", "parent_run_id": "r"}
    assert trial_config(plain, TABLE) is frozen                         # found, not built again
    assert trial_config(plain) == frozen                                # without the table: built back, equal
    assert trial_config({"run": frozen}) is frozen                      # a RunConfig is taken as it is
    assert pickle.loads(pickle.dumps(frozen)) == frozen
    assert replace(frozen, device="cpu", threads=1).identity() == rebuilt_identity(frozen, {})


def test_sampled_values_are_applied_and_validated_again():
    base = DEMO.points[-1]
    sampled = {"pruning.p": 2, "training.lr": 0.05, "seed": 4}
    cfg = trial_config({"run": to_raw(base), "sweep": "s", **sampled}, TABLE)
    assert (cfg.pruning.p, cfg.training.lr, cfg.seed) == (2, 0.05, 4)
    assert replace(cfg, device="cpu", threads=1).identity() == rebuilt_identity(base, sampled)
    with pytest.raises(LotteryError, match="pruning.p"):
        trial_config({"run": base, "pruning.p": 10_000})


@pytest.mark.parametrize("overrides", [
    [],
    ["pipeline=ticket_init", "pruning.criterion=consensus", "pruning.members=[kl,cka]", "pruning.p=2"],
    ["pipeline=ticket_rewind", "pruning.criterion=pls", "pruning.components=3", "training.keep_epochs=[0,2]",
     "training.milestones=[0.4,0.8]", "evaluation.corruptions=[]"],
])
def test_the_nested_json_form_builds_back_the_same_config(overrides):
    """What Ray's param space carries (plain values) is the validated config, unchanged."""
    cfg = load_config(None, overrides)
    plain = json.loads(json.dumps(to_raw(cfg)))
    assert build_config(plain) == cfg
    assert trial_config({"run": plain, "sweep": "s"}) == cfg
