"""Helpers shared by the tests (not fixtures): silence a block, give BatchNorm non-trivial statistics,
write a tiny sweep file, start and kill `lottery` processes."""
import os
import signal
import socket
import subprocess
import sys
import time
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(folder: Path, port: int) -> subprocess.Popen:
    """`mlflow server` on 127.0.0.1:`port` (SQLite and artifacts in `folder`), once it listens."""
    folder.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'server.db'}", "--artifacts-destination", str(folder / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "ab"), start_new_session=True)
    deadline = time.time() + 240   # a loaded 2-core machine takes over a minute to import the server
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    raise RuntimeError(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)


def logged_run(client, experiment_id: str, tags: dict, metrics: dict, status: str = "FINISHED") -> str:
    """A run as the report reads it, in a store the test builds: a ResNet32 run at θ_0 with no
    control unless `tags` say otherwise, its final `metrics` at step 0, ended with `status`."""
    from mlflow.entities import Metric

    tags = {"model": "resnet32", "rewind_epoch": "0", "control": "none", **tags}
    run = client.create_run(experiment_id, tags=tags)
    client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()])
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id
