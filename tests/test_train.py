"""lottery_core.train: schedules, rewinding, hooks, exact resume, precision, refusals and fallbacks."""
import math
from dataclasses import replace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lottery_core.data import ImageData
from lottery_core.errors import LotteryError
from lottery_core.train import (
    TrainSettings,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    lr_at,
    momentum_at,
    train,
)
from lottery_core.train import precision as precision_rule

pytestmark = pytest.mark.numerical   # values oneDNN's kernels compute: CI reruns them under AVX2 and 1 thread


class Tiny(nn.Module):
    """conv-BN-ReLU, global pooling, dropout (so that resuming must restore the torch RNG), linear."""

    def __init__(self, classes: int = 4, width: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        return self.fc(self.drop(F.adaptive_avg_pool2d(x, 1).flatten(1)))


def colours(per_class: int = 16, test_per_class: int = 8, classes: int = 4, size: int = 12, seed: int = 0) -> ImageData:
    """An easy task: class k is a colour, plus pixel noise."""
    gen = torch.Generator().manual_seed(seed)
    palette = torch.randint(0, 256, (classes, 3, 1, 1), generator=gen)

    def split(n):
        labels = torch.arange(classes).repeat_interleave(n)
        noise = torch.randint(-50, 51, (len(labels), 3, size, size), generator=gen)
        return (palette[labels] + noise).clamp(0, 255).to(torch.uint8), labels

    (tr, trl), (te, tel) = split(per_class), split(test_per_class)
    empty = torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return ImageData(tr, trl, empty, torch.zeros(0, dtype=torch.int64), te, tel, num_classes=classes,
                     classes=tuple(f"c{k}" for k in range(classes)), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                     name="colours", source="memory")


DATA = colours()
SETTINGS = TrainSettings(epochs=4, batch_size=16, lr=0.05, milestones=(0.5,), threads=1)


def fresh(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return Tiny()


class Stop(Exception):
    pass


class StopAfter:
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, metrics, state):
        if epoch == self.epoch:
            raise Stop


class Record:
    def __init__(self):
        self.calls = []

    def on_epoch_end(self, epoch, metrics, state):
        self.calls.append((epoch, dict(metrics), state.checkpoint_path, state.model, state.optimizer))


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    model = fresh()
    result = train(model, DATA, SETTINGS, seed=7, checkpoint_dir=tmp_path_factory.mktemp("full"))
    return weights(model), result


def test_resume_after_a_stop_ends_with_bit_identical_weights(uninterrupted, tmp_path):
    with pytest.raises(Stop):
        train(fresh(), DATA, SETTINGS, seed=7, checkpoint_dir=tmp_path, hooks=[StopAfter(1)])
    torch.manual_seed(123)  # a different global RNG state: the checkpoint must restore its own
    model = fresh(seed=99)  # a different initialisation: the checkpoint must overwrite it
    result = train(model, DATA, SETTINGS, seed=7, checkpoint_dir=tmp_path)
    assert result.resumed_from_epoch == 2
    assert [m["epoch"] for m in result.history] == [0, 1, 2, 3]
    assert same_weights(weights(model), uninterrupted[0])
    assert result.final["test_acc"] == uninterrupted[1].final["test_acc"]
    assert [p.name for _, p in list_checkpoints(tmp_path)] == ["epoch-0003.pt", "epoch-0004.pt"]  # the last two
    again = train(fresh(), DATA, SETTINGS, seed=7, checkpoint_dir=tmp_path)      # finished: nothing to do
    assert again.resumed_from_epoch == 4 and len(again.history) == 4


def test_checkpoints_load_with_weights_only(uninterrupted, tmp_path):
    train(fresh(), DATA, TrainSettings(epochs=1, batch_size=16, threads=1), checkpoint_dir=tmp_path)
    raw = torch.load(latest_checkpoint(tmp_path), weights_only=True)
    assert raw["epoch"] == 1 and set(raw["model"]) == set(Tiny().state_dict())
    assert {"optimizer", "scheduler", "rng", "history", "fingerprint"} <= set(raw)
    assert {"torch", "python", "numpy", "cuda"} <= set(raw["rng"])


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_with_a_warning(uninterrupted, tmp_path):
    with pytest.raises(Stop):
        train(fresh(), DATA, SETTINGS, seed=7, checkpoint_dir=tmp_path, hooks=[StopAfter(2)])
    newest = latest_checkpoint(tmp_path)
    assert newest.name == "epoch-0003.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.raises(LotteryError, match="corrupt or truncated"):
        load_checkpoint(newest)
    model = fresh()
    with pytest.warns(RuntimeWarning, match="epoch-0003.pt is corrupt or truncated"):
        result = train(model, DATA, SETTINGS, seed=7, checkpoint_dir=tmp_path)
    assert result.resumed_from_epoch == 2 and len(result.warnings) == 1
    assert same_weights(weights(model), uninterrupted[0])


def test_a_checkpoint_of_another_architecture_is_refused_and_nothing_is_loaded(uninterrupted, tmp_path):
    train(fresh(), DATA, TrainSettings(epochs=1, batch_size=16, threads=1), checkpoint_dir=tmp_path)
    torch.manual_seed(0)
    other = Tiny(width=6)
    before = weights(other)
    with pytest.raises(LotteryError, match="different architecture") as err:
        train(other, DATA, TrainSettings(epochs=1, batch_size=16, threads=1), checkpoint_dir=tmp_path)
    assert "\n" not in str(err.value) and "conv.weight" in str(err.value)
    assert same_weights(weights(other), before)
    with pytest.raises(LotteryError, match="lr=0.1.*lr=0.2"):
        train(fresh(), DATA, TrainSettings(epochs=1, batch_size=16, lr=0.2, threads=1), checkpoint_dir=tmp_path)
    with pytest.raises(LotteryError, match="seed=0.*seed=1"):
        train(fresh(), DATA, TrainSettings(epochs=1, batch_size=16, threads=1), seed=1, checkpoint_dir=tmp_path)


def test_rewinding_enters_the_schedule_at_epoch_i(uninterrupted):
    full = uninterrupted[1]
    model = fresh()
    record = Record()
    result = train(model, DATA, SETTINGS, seed=7, start_epoch=2, hooks=[record])
    assert [m["epoch"] for m in result.history] == [2, 3] and [c[0] for c in record.calls] == [2, 3]
    assert [m["lr"] for m in result.history] == [m["lr"] for m in full.history[2:]] == pytest.approx([0.005] * 2)
    assert [m["lr"] for m in full.history[:2]] == [0.05, 0.05]
    assert result.resumed_from_epoch is None


def test_schedules():
    step = TrainSettings(epochs=160, lr=0.1)
    assert [lr_at(step, e) for e in (0, 79, 80, 119, 120, 159)] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    cosine = TrainSettings(epochs=10, lr=0.1, schedule="cosine", warmup_epochs=2)
    assert lr_at(cosine, 0, 0, 10) == pytest.approx(0.1 / 20) and lr_at(cosine, 1, 9, 10) == pytest.approx(0.1)
    assert lr_at(cosine, 2, 0, 10) == pytest.approx(0.1) and lr_at(cosine, 6, 0, 10) == pytest.approx(0.05)
    assert lr_at(cosine, 9, 9, 10) < 0.001


def test_hooks_see_every_epoch_with_its_metrics_and_checkpoint(tmp_path):
    record = Record()
    data = colours(per_class=8)
    data = ImageData(data.train_images, data.train_labels, data.test_images[:4], data.test_labels[:4],
                     data.test_images, data.test_labels, num_classes=4, classes=data.classes, mean=data.mean,
                     std=data.std, name="colours", source="memory")
    model = fresh()
    result = train(model, data, TrainSettings(epochs=3, batch_size=8, threads=1), checkpoint_dir=tmp_path,
                   hooks=[record])
    assert [c[0] for c in record.calls] == [0, 1, 2]
    for epoch, metrics, path, hook_model, optimizer in record.calls:
        assert {"epoch", "lr", "train_loss", "train_acc", "test_acc", "test_loss", "val_acc", "val_loss",
                "epoch_time_s", "images_per_s"} <= set(metrics)
        assert metrics["epoch"] == epoch and metrics["epoch_time_s"] > 0 and metrics["images_per_s"] > 0
        assert path.name == f"epoch-{epoch + 1:04d}.pt"
        assert hook_model is model and isinstance(optimizer, torch.optim.SGD)
    assert result.final == result.history[-1] and len(result.epoch_times_s) == 3
    assert result.total_time_s == pytest.approx(sum(result.epoch_times_s)) and result.wall_time_s >= result.total_time_s


class NaNAfter(Tiny):
    """Returns NaN logits from the `calls`-th training forward pass on."""

    def __init__(self, calls):
        super().__init__()
        self.calls, self.seen = calls, 0

    def forward(self, x):
        out = super().forward(x)
        if self.training:
            self.seen += 1
            if self.seen > self.calls:
                return out * float("nan")
        return out


def test_a_non_finite_loss_names_epoch_and_step_and_keeps_the_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = NaNAfter(calls=4 + 1)  # 4 steps per epoch: epoch 1, step 1 is the first NaN
    with pytest.raises(LotteryError, match=r"non-finite training loss \(nan\) at epoch 1, step 1 of 4") as err:
        train(model, DATA, SETTINGS, checkpoint_dir=tmp_path)
    assert "epoch-0001.pt" in str(err.value)
    assert [p.name for _, p in list_checkpoints(tmp_path)] == ["epoch-0001.pt"]
    assert load_checkpoint(tmp_path / "epoch-0001.pt")["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())  # checked before the step on CPU


def test_a_tiny_model_learns_an_easy_task():
    model = fresh()
    result = train(model, DATA, TrainSettings(epochs=20, batch_size=16, lr=0.1, schedule="cosine", threads=1))
    assert result.history[0]["train_loss"] > result.final["train_loss"]
    assert result.final["test_acc"] >= 75.0  # chance is 25%


@pytest.mark.parametrize("options,match", [
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"epochs": 3, "lr": -1}, "lr must be a number"),
    ({"epochs": 3, "lr": float("nan")}, "lr must be a number"),
    ({"epochs": 3, "schedule": "linear"}, "unknown schedule 'linear'"),
    ({"epochs": 3, "milestones": (0.75, 0.5)}, "milestones must be increasing"),
    ({"epochs": 3, "milestones": (80,)}, "milestones must be increasing fractions"),
    ({"epochs": 3, "warmup_epochs": 3}, "warmup_epochs"),
    ({"epochs": 3, "momentum": 0.0, "nesterov": True}, "nesterov needs momentum"),
    ({"epochs": 3, "gamma": 0}, "gamma must be a number"),
    ({"epochs": 3, "threads": 0}, "threads must be an integer"),
    ({"epochs": 3, "channels_last": "yes"}, "channels_last"),
])
def test_bad_settings_get_one_line(options, match):
    with pytest.raises(LotteryError, match=match) as err:
        TrainSettings(**options)
    assert "\n" not in str(err.value)


def test_bad_start_epoch_and_hooks_are_refused():
    with pytest.raises(LotteryError, match="start_epoch must be an integer in 0..3"):
        train(fresh(), DATA, SETTINGS, start_epoch=4)
    with pytest.raises(LotteryError, match="on_epoch_end"):
        train(fresh(), DATA, SETTINGS, hooks=[object()])


def test_channels_last_trains_the_same_function():
    a = fresh()
    train(a, DATA, TrainSettings(epochs=1, batch_size=16, channels_last=False, amp=False, threads=1))
    b = fresh()  # the same initialisation and the same dropout masks
    train(b, DATA, TrainSettings(epochs=1, batch_size=16, channels_last=True, amp=False, threads=1))
    assert b.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not a.conv.weight.is_contiguous(memory_format=torch.channels_last)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(x, y, atol=1e-5), name


ONE_CYCLE = TrainSettings(epochs=4, batch_size=16, lr=0.05, schedule="onecycle", pct_start=0.3, momentum=0.95,
                          nesterov=True, threads=1)


def test_one_cycle_is_torchs_one_cycle_lr_step_for_step_momentum_included():
    for settings, steps in ((ONE_CYCLE, 4), (TrainSettings(epochs=10, schedule="onecycle", momentum=0.9), 40)):
        p = nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=settings.lr, momentum=settings.momentum)
        ref = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=settings.lr, epochs=settings.epochs, steps_per_epoch=steps, pct_start=settings.pct_start,
            div_factor=settings.div_factor, final_div_factor=settings.final_div_factor,
            base_momentum=settings.base_momentum, max_momentum=settings.momentum)
        for t in range(settings.epochs * steps):
            epoch, step = divmod(t, steps)
            assert lr_at(settings, epoch, step, steps) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
            assert momentum_at(settings, epoch, step, steps) == pytest.approx(opt.param_groups[0]["momentum"],
                                                                             rel=1e-12)
            opt.step()
            ref.step()
    assert momentum_at(SETTINGS, 3, 0, 4) == SETTINGS.momentum        # other schedules: constant momentum


def test_one_cycle_training_resumes_exactly_and_rewinds_without_replay(tmp_path):
    full = fresh()
    whole = train(full, DATA, ONE_CYCLE, seed=3)
    with pytest.raises(Stop):
        train(fresh(), DATA, ONE_CYCLE, seed=3, checkpoint_dir=tmp_path, hooks=[StopAfter(1)])
    resumed = fresh(seed=5)
    result = train(resumed, DATA, ONE_CYCLE, seed=3, checkpoint_dir=tmp_path)
    assert result.resumed_from_epoch == 2 and same_weights(weights(resumed), weights(full))
    rewound = train(fresh(), DATA, ONE_CYCLE, seed=3, start_epoch=2)
    assert [m["lr"] for m in rewound.history] == [m["lr"] for m in whole.history[2:]]


@pytest.mark.parametrize("schedule_options,match", [
    ({"schedule": "onecycle", "warmup_epochs": 1}, "warmup_epochs must be 0 with schedule onecycle"),
    ({"schedule": "onecycle", "momentum": 0.8}, r"base_momentum \(0.85\) must not exceed momentum \(0.8\)"),
    ({"pct_start": 1.0}, r"pct_start must be a number in \(0, 1\)"),
    ({"label_smoothing": 1.0}, r"label_smoothing must be a number in \[0, 1\)"),
])
def test_bad_one_cycle_and_smoothing_settings_get_one_line(schedule_options, match):
    with pytest.raises(LotteryError, match=match):
        TrainSettings(epochs=3, **schedule_options)


def test_label_smoothing_is_applied_to_the_training_loss_only():
    # smoothing 0.5 over 4 classes: targets (0.625, 0.125, 0.125, 0.125), whose entropy 1.07 nats
    # bounds the training loss from below; the optimum p = 0.625 has plain cross-entropy 0.47
    bound = -(0.625 * math.log(0.625) + 3 * 0.125 * math.log(0.125))
    settings = TrainSettings(epochs=16, batch_size=16, lr=0.2, schedule="cosine", amp=False, threads=1)
    plain = train(fresh(), DATA, settings)
    smooth = train(fresh(), DATA, replace(settings, label_smoothing=0.5))
    assert plain.final["train_loss"] < bound - 0.3
    assert all(m["train_loss"] >= bound for m in smooth.history)
    assert smooth.final["test_loss"] < bound - 0.3          # evaluation: plain cross-entropy


class Dtypes:
    """Records the dtype of every conv output and of the BN statistics during training."""

    def __init__(self, model):
        self.seen = set()
        model.conv.register_forward_hook(lambda m, i, o: self.seen.add(o.dtype))


@pytest.mark.parametrize("native,amp,expected", [(True, True, torch.bfloat16), (True, False, torch.float32),
                                                 (False, True, torch.float32)])
def test_amp_computes_convolutions_in_bf16_on_a_cpu_with_native_bf16_only(monkeypatch, native, amp, expected):
    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: native)
    model = fresh()
    dtypes = Dtypes(model)
    result = train(model, DATA, TrainSettings(epochs=1, batch_size=16, amp=amp, threads=1))
    assert dtypes.seen == {expected}
    assert all(p.dtype == torch.float32 for p in model.parameters())      # fp32 master weights
    assert model.bn.running_mean.dtype == model.bn.running_var.dtype == torch.float32
    assert torch.isfinite(torch.tensor(result.final["train_loss"]))


def test_precision_resolution_and_flags(tmp_path):
    assert precision_rule.precision("cuda") == "bf16" and precision_rule.precision("cuda", amp=False) == "fp32"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert precision_rule.native_bf16_flags(str(cpuinfo)) == ("avx512_bf16",)
    older = tmp_path / "cpuinfo-avx2"   # (the flags are read once per file: cached)
    older.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert precision_rule.native_bf16_flags(str(older)) == ()
    assert precision_rule.native_bf16_flags(str(tmp_path / "missing")) == ()


def test_an_fp32_checkpoint_is_not_resumed_in_bf16(monkeypatch, tmp_path):
    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: True)
    fp32 = TrainSettings(epochs=2, batch_size=16, amp=False, threads=1)
    with pytest.raises(Stop):
        train(fresh(), DATA, fp32, checkpoint_dir=tmp_path, hooks=[StopAfter(0)])
    with pytest.raises(LotteryError, match="written with precision=fp32, this run has precision=bf16"):
        train(fresh(), DATA, TrainSettings(epochs=2, batch_size=16, threads=1), checkpoint_dir=tmp_path)
