"""Helpers shared by the tests (not fixtures): silence a block, give BatchNorm non-trivial statistics,
write a tiny sweep file, start and kill `lottery` processes."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from lottery_core import surgery


def silence(model, name):
    """Zero the weight and bias of block `name`'s silencers (a conv block's last BN, γ and β; a
    transformer layer's attention output projection and last MLP Linear): its residual branches
    then output 0."""
    with torch.no_grad():
        for module in surgery.silencers(model, name):
            module.weight.zero_()
            module.bias.zero_()


def randomize_bn_stats(model):
    """Seeded, non-trivial running statistics, so that eval-mode BatchNorm is not the identity."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


def tiny_sweep_file(folder: Path, data: Path, results: Path, grid: dict, *, epochs: int, experiment: str,
                    tracking: dict | None = None, **extra) -> Path:
    """`folder/sweep.yaml`: resnet20 on the tiny data set, `epochs` epochs, the given grid, one CPU
    per trial, two at a time, one retry; `tracking` and `extra` add to its sections."""
    spec = {"base": {"model": {"name": "resnet20"}, "data": {"name": "folder", "root": str(data)},
                     "training": {"epochs": epochs, "batch_size": 32, "lr": 0.05, "keep_epochs": [0]},
                     "pruning": {"images_per_class": 2},
                     "evaluation": {"corruptions": [], "attacks": [], "cka_images": 0},
                     "tracking": {"results_dir": str(results), "experiment": experiment, **(tracking or {})}},
            "grid": grid, "resources": {"cpu": 1}, "max_concurrent": 2, "retries": 1, **extra}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def lottery(*args: str) -> list[str]:
    """The command line of `lottery ARGS` in this interpreter."""
    return [sys.executable, "-m", "pipelines.cli", *args]


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL what is left of a process's session (a local Ray it started outlives it)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
