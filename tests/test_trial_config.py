"""A trial gets its grid point as a frozen, validated RunConfig; sampled values are validated again."""
import json
import pickle
from dataclasses import replace

import pytest

from lottery_core.errors import LotteryError
from pipelines.config import build_config
from pipelines.config.loading import set_dotted
from tune.sweep_file import load_sweep
from tune.trial import trial_config

DEMO = load_sweep("tune/sweeps/demo.yaml")


def rebuilt_identity(point: dict, sampled: dict) -> str:
    """The identity as trials computed it before configs travelled frozen: a dict, rebuilt."""
    point = json.loads(json.dumps(point))
    for key, value in sampled.items():
        set_dotted(point, key, value)
    return build_config({**point, "device": "cpu", "threads": 1}).identity()


@pytest.mark.parametrize("index", range(len(DEMO.points)))
def test_a_frozen_grid_point_is_the_trials_config_and_keeps_its_identity(index):
    point = DEMO.points[index]
    frozen = build_config(point)
    assert trial_config({"run": frozen, "sweep": "s", "parent_run_id": "r"}) is frozen  # nothing rebuilt
    assert pickle.loads(pickle.dumps(frozen)) == frozen                                   # as Ray ships it
    assert replace(frozen, device="cpu", threads=1).identity() == rebuilt_identity(point, {})


def test_sampled_values_are_applied_and_validated_again():
    base = build_config(DEMO.points[-1])
    sampled = {"pruning.p": 2, "training.lr": 0.05, "seed": 4}
    cfg = trial_config({"run": base, "sweep": "s", **sampled})
    assert (cfg.pruning.p, cfg.training.lr, cfg.seed) == (2, 0.05, 4)
    assert replace(cfg, device="cpu", threads=1).identity() == rebuilt_identity(DEMO.points[-1], sampled)
    with pytest.raises(LotteryError, match="pruning.p"):
        trial_config({"run": base, "pruning.p": 10_000})
