"""Run identities: every setting that changes a result is in them, nothing else, and they are pinned.

A golden test pins the identity of a few configs: a change that renames old runs must be a
deliberate bump of IDENTITY_SCHEMA, never an accident.
"""
import pytest

import lottery_core.train.precision as precision_rule
import pipelines.config as config
from lottery_core.criteria.control_registry import control_names
from lottery_core.errors import LotteryError
from pipelines.config import load_config

QUICK = "configs/quick/resnet32_ticket_init.yaml"


def identity(*overrides, source=None):
    return load_config(source, list(overrides)).identity()


pytestmark = pytest.mark.usefixtures("cpu_without_bf16")   # golden values hold on every CPU


GOLDEN = {  # config overrides (on the defaults, device=cpu) -> identity
    ("pipeline=dense",): "0acd8f122e71",
    (): "589d370a4d0e",
    ("pruning.criterion=hrank", "pruning.p=3"): "c4d9467d7b31",
    ("pruning.control=uniform", "pruning.p=3"): "2d1a9e7191b1",
    ("data.fingerprint=0123456789abcdef", "pruning.criterion=random", "seed=4"): "bf8e6ebad8cd",
}


@pytest.mark.parametrize("overrides", list(GOLDEN))
def test_golden_identities(overrides):
    assert identity("device=cpu", *overrides) == GOLDEN[overrides]


def test_a_bf16_cpu_trains_in_bf16_unless_amp_is_off_and_that_is_another_identity(monkeypatch):
    fp32 = identity("device=cpu")
    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: True)
    assert load_config(None, ["device=cpu"]).precision() == "bf16"
    assert identity("device=cpu") == "83ba84a8d12d" != fp32
    assert load_config(None, ["device=cpu", "training.amp=false"]).precision() == "fp32"
    assert identity("device=cpu", "training.amp=false") == fp32     # amp itself is not identity: precision is


def test_a_required_precision_refuses_a_machine_that_would_compute_another(monkeypatch):
    """A study spread over machines with and without bf16 must not mix precisions: on this (pinned)
    CPU without bf16, requiring bf16 is refused in one line naming the flags; on a bf16 CPU it holds
    and names the same identity as no requirement; requiring fp32 there needs amp off."""
    with pytest.raises(LotteryError, match=r"^training.require_precision=bf16, but this run would compute in fp32: "
                                           r"this CPU has no native bf16 \(no avx512_bf16 or amx_bf16"):
        load_config(None, ["device=cpu", "training.require_precision=bf16"])
    assert identity("device=cpu", "training.require_precision=fp32") == identity("device=cpu")
    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: True)
    assert identity("device=cpu", "training.require_precision=bf16") == identity("device=cpu") == "83ba84a8d12d"
    with pytest.raises(LotteryError, match="would compute in bf16 .*set training.amp=false"):
        load_config(None, ["device=cpu", "training.require_precision=fp32"])
    with pytest.raises(LotteryError, match="would compute in fp32: training.amp is false"):
        load_config(None, ["device=cpu", "training.amp=false", "training.require_precision=bf16"])
    with pytest.raises(LotteryError, match="require_precision.*fp16"):
        load_config(None, ["device=cpu", "training.require_precision=fp16"])


def test_the_runner_checks_the_precision_where_the_run_trains(monkeypatch, tmp_path):
    """A config validated on a bf16 driver, then run on a node without bf16 (a trial elsewhere):
    refused before any run or checkpoint is created."""
    from pipelines import runner

    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: True)
    cfg = load_config(None, ["device=cpu", "training.require_precision=bf16",
                             f"tracking.results_dir={tmp_path}"])
    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(LotteryError, match="would compute in fp32"):
        runner.run(cfg)
    assert list(tmp_path.iterdir()) == []


def test_the_schema_version_is_part_of_every_identity(monkeypatch):
    before = identity("device=cpu")
    monkeypatch.setattr(config.identity, "IDENTITY_SCHEMA", config.IDENTITY_SCHEMA + 1)
    assert identity("device=cpu") != before


def test_resolved_device_kind_and_precision_are_in_the_identity_never_auto():
    cpu, cuda = load_config(None, ["device=cpu"]), load_config(None, ["device=cuda"])
    assert (cpu.device_kind(), cpu.precision()) == ("cpu", "fp32")
    assert (cuda.device_kind(), cuda.precision()) == ("cuda", "bf16")   # the engine autocasts on CUDA
    assert cpu.identity() != cuda.identity()
    assert identity("device=cuda:0") == identity("device=cuda:1") == cuda.identity()  # the kind, not the index
    auto = load_config(None, ["device=auto"])
    assert auto.identity_payload()["device"] in ("cpu", "cuda")
    assert auto.identity() == (cuda if auto.device_kind() == "cuda" else cpu).identity()


def test_data_content_and_country_change_the_identity_the_data_path_does_not():
    base = identity("device=cpu")
    assert identity("device=cpu", "data.root=/somewhere/else") == base
    assert identity("device=cpu", "data.fingerprint=0123456789abcdef") != base
    assert identity("device=cpu", "evaluation.country_iso_code=CAN") != base
    assert identity("device=cpu", "data.test_seed=1") != base


def test_settings_a_control_does_not_read_leave_its_identity_alone():
    uniform = identity("pruning.control=uniform", "pruning.p=3")
    assert identity("pruning.control=uniform", "pruning.p=3", "pruning.criterion=snip",
                    "pruning.images_per_class=5", "pruning.draw=3") == uniform
    assert identity("pruning.criterion=random", "pruning.target=output", "pruning.temperature=5") == \
        identity("pruning.criterion=random")
    assert identity("pruning.criterion=random", "pruning.draw=1") != identity("pruning.criterion=random")
    assert identity("pruning.draw=1") == identity()          # GraSP draws nothing
    assert identity("pruning.control=same_stage_random", "pruning.draw=1") != \
        identity("pruning.control=same_stage_random")
    assert identity("pruning.target=output") == identity()   # GraSP reads weights, not activations
    assert identity("pruning.criterion=hrank", "pruning.target=output") != identity("pruning.criterion=hrank")


def test_reinit_of_and_filter_match_count_only_where_they_are_read():
    assert identity("pruning.reinit_of=ticket_rewind") == identity()
    assert identity("pipeline=reinit", "pruning.reinit_of=ticket_rewind") != identity("pipeline=reinit")
    assert identity("pipeline=filter_ticket", "pruning.filter_match=macs") != identity("pipeline=filter_ticket")
    assert identity("pruning.filter_match=macs") == identity()


@pytest.mark.parametrize("overrides,message", [
    (["pipeline=filter_ticket", "pruning.control=inverted"],
     r"pruning.control=inverted applies to ticket_init and ticket_rewind, not pipeline=filter_ticket"),
    (["pruning.criterion=random", "pruning.control=inverted"], r"criterion=random is already the random control"),
    (["pruning.criterion=kl", "pruning.control=shuffled_labels"],
     r"criterion 'kl' reads no labels; criteria that do: .*grasp.*pls.*snip"),
    (["pruning.criterion=synflow", "pruning.control=random_inputs"], r"criterion 'synflow' reads no data"),
    (["pruning.control=uniform", "pruning.p=30"], r"pruning.p=30 exceeds the 9 blocks resnet32 may lose"),
    (["pruning.control=coin"], "unknown pruning.control 'coin'; choose one of: " + ", ".join(control_names())),
])
def test_controls_that_make_no_sense_are_refused_at_load(overrides, message):
    with pytest.raises(LotteryError, match=message):
        load_config(None, overrides)


def test_describe_names_the_control_and_the_draw():
    assert load_config(None, ["pruning.control=uniform", "pruning.p=3"]).describe() == \
        "ticket_init resnet32 uniform p=3 seed=0"
    assert load_config(None, ["pruning.control=inverted", "pruning.criterion=snip"]).describe() == \
        "ticket_init resnet32 snip p=1 inverted seed=0"
    assert load_config(None, ["pruning.criterion=random", "pruning.draw=2"]).describe() == \
        "ticket_init resnet32 random p=1 draw=2 seed=0"
    assert load_config(None, ["pipeline=reinit", "pruning.reinit_of=ticket_rewind"]).describe() == \
        "reinit resnet32 grasp p=1 of=rewind seed=0"
