import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
# OMP_NUM_THREADS=1 (what a one-thread worker computes) is honoured: CI runs the numerical tests so
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def write_image_folder(root: Path, classes: int = 4, train_per_class: int = 8, test_per_class: int = 4,
                       size: int = 32, seed: int = 0) -> Path:
    """A tiny, learnable ImageFolder (train/<class>/*.png, test/<class>/*.png): class k is a colour."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    palette = rng.integers(0, 256, size=(classes, 3))
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for k in range(classes):
            folder = root / split / f"class_{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                noise = rng.integers(-40, 41, size=(size, size, 3))
                pixels = np.clip(palette[k] + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    """Identities hold the resolved precision, which on a CPU depends on its bf16 flags: a test that
    pins an identity pins the machine too, so that it holds on every CPU (bf16 CPUs are tested
    explicitly)."""
    import lottery_core.train.precision as precision_rule

    monkeypatch.setattr(precision_rule, "cpu_has_native_bf16", lambda: False)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    """A session-wide tiny data set: 4 classes, 8 train and 4 test 32x32 PNGs per class."""
    return write_image_folder(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """One `mlflow server` on 127.0.0.1 for the session (SQLite behind it): its URI. Tests that
    share it use experiments of their own; a test that stops its server starts its own."""
    from helpers import free_port, start_mlflow_server, stop

    port = free_port()
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow_server"), port)
    yield f"http://127.0.0.1:{port}"
    stop(server)
