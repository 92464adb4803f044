"""A sweep's configs are validated once, at the edge, and travel as frozen RunConfigs: from the sweep
file through the phases, the driver's trial list and trial names to the trial's own config, each
grid point is built exactly once, and its dense baseline is derived (`RunConfig.dense()`), never
built. A resume builds each config once from the sweep's record, older records (points as the
pinned grid mappings) included, with the same identities.

Builds are counted as calls of `pipelines.config.building.build_section` for a whole RunConfig
(what `build_config`, `load_config` and `RunConfig.with_overrides` do)."""
import json
import pickle
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from pipelines.config import PruningConfig, RunConfig, building, to_raw
from tune.sweep_file import Sweep, load_sweep
from tune.trial import DriverConfigs, built_configs, trial_config

RECORDS = Path(__file__).parent / "data" / "sweep_records"   # sweep.json's "sweep" as commit 5ad3878 wrote it
# identities (device cpu, fp32: `cpu_without_bf16`) of those records' trials, as that version's trials computed them
DEMO_IDENTITIES = ["ff6a0327d3e6", "a7faa24fdcdd", "0173f629738e", "7d5a81d7afed", "e142f4af4378", "ca6d97ef3902",
                   "01fdfa9a3290"]
OPTUNA_DENSE_IDENTITY, OPTUNA_BASE_IDENTITY = "3d4452719f07", "36b959d33ee2"


@pytest.fixture
def builds(monkeypatch):
    """The nested mappings built into a RunConfig since the fixture started (a list that grows)."""
    built = []
    original = building.build_section

    def counting(raw, cls, prefix=""):
        if cls is RunConfig:
            built.append(raw)
        return original(raw, cls, prefix)

    monkeypatch.setattr(building, "build_section", counting)
    return built


@pytest.fixture
def small_grid(tmp_path, monkeypatch) -> Path:
    """Four grid points over two phases (ticket_init beside its dense run, ticket_rewind after it)."""
    monkeypatch.delenv("LOTTERY_DATA_DIR", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({
        "base": {"model": {"name": "resnet20"}, "training": {"epochs": 2, "keep_epochs": [0]},
                 "tracking": {"results_dir": str(tmp_path / "runs")}},
        "grid": {"pipeline": ["ticket_init", "ticket_rewind"], "pruning.p": [1, 2]},
        "resources": {"cpu": 1}}))
    return path


def driver_trial_configs(sweep: Sweep) -> list[dict]:
    """What the driver hands Ray for every trial of every phase: its param space, resolved."""
    from tune.launch import _param_space

    meta = {"parent_run_id": "parent", "storage": "/storage", "code_version": "v"}
    trials = []
    for points in sweep.phases():
        space = _param_space(sweep, points, meta)
        trials += [{**space, "run": run} for run in space["run"]["grid_search"]]
    return trials


def test_each_grid_point_is_built_once_from_the_file_to_the_trial(small_grid, builds):
    from tune.launch import plan_resources, trial_name

    sweep = load_sweep(small_grid)
    assert len(builds) == 4                                    # the four grid points; the dense baseline is derived
    dense, *tickets = sweep.points
    assert dense == tickets[0].dense() and dense.pruning == PruningConfig()
    assert [len(p) for p in sweep.phases()] == [3, 2] and sweep.concurrency() == 3
    assert sweep.describe() == "5 trials (1 dense baselines first, 2 tickets after them)"
    plan_resources(sweep, [{"CPU": 2, "GPU": 0}], strict=True)
    table = built_configs(sweep.configs())
    trials = driver_trial_configs(sweep)
    names = [trial_name(SimpleNamespace(config=t, trial_id=f"t{i}"), table) for i, t in enumerate(trials)]
    in_worker = pickle.loads(pickle.dumps(table))               # as tune.with_parameters ships it
    configs = [trial_config(t, in_worker) for t in trials]
    assert len(builds) == 4                                    # nothing after load_sweep built a config again
    assert configs == [p for phase in sweep.phases() for p in phase]
    assert names[1].startswith("ticket_init-resnet20-grasp-p-1-seed-0_t1")


def test_an_optuna_trial_applies_its_sampled_values_in_one_build(small_grid, builds):
    sweep = Sweep(name="s", base={}, optuna={"dense": None}, search_base=RunConfig())
    table = built_configs(sweep.configs())
    cfg = trial_config({"run": to_raw(RunConfig()), "sweep": "s", "pruning.p": 2}, table)
    assert cfg.pruning.p == 2 and len(builds) == 1


def test_a_resume_builds_each_config_once_from_the_record(small_grid, builds):
    sweep = load_sweep(small_grid)
    record = json.loads(json.dumps(sweep.to_dict()))            # sweep.json: plain values only
    del builds[:]
    again = Sweep.from_dict(record)
    assert len(builds) == len(sweep.points) == 5                # dense included: the record holds every trial
    assert again.points == sweep.points and again.phases() == sweep.phases()


def test_a_record_written_before_configs_travelled_frozen_still_resumes(builds, cpu_without_bf16):
    demo = Sweep.from_dict(json.loads((RECORDS / "demo_v1.json").read_text()))
    assert len(builds) == 7
    assert [replace(c, device="cpu").identity() for c in demo.points] == DEMO_IDENTITIES
    fresh = load_sweep("tune/sweeps/demo.yaml").points             # today's points: the same trials
    assert [replace(c, device="cpu").identity() for c in fresh] == DEMO_IDENTITIES
    optuna = Sweep.from_dict(json.loads((RECORDS / "optuna_pareto_quick_v1.json").read_text()))
    assert replace(optuna.optuna["dense"], device="cpu").identity() == OPTUNA_DENSE_IDENTITY
    assert replace(optuna.search_base, device="cpu").identity() == OPTUNA_BASE_IDENTITY
    assert optuna.phases() == [[optuna.optuna["dense"]], []]


def test_the_drivers_table_is_saved_empty_with_the_tuners_state():
    """Ray pickles name creators and callbacks into tuner.pkl: a resume by a later version must not
    unpickle this version's RunConfigs there (the trials' own table is handed over anew)."""
    from ray import cloudpickle

    known = DriverConfigs(built_configs([RunConfig()]))
    assert len(known) == 1
    assert pickle.loads(pickle.dumps(known)) == {} and cloudpickle.loads(cloudpickle.dumps(known)) == {}
    assert len(pickle.loads(pickle.dumps(built_configs([RunConfig()])))) == 1   # the trials' copy is whole
