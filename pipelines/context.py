"""What one pipeline run carries: its config, data, device, MLflow run and folders."""
import functools
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn
from mlflow.tracking import MlflowClient

from lottery_core.data import ImageData, load_data
from lottery_core.errors import LotteryError
from lottery_core.files import atomic_writer
from pipelines import layout
from pipelines.config import RunConfig


@dataclass
class RunContext:
    """One run: config, resolved device, data in memory, MLflow client + run id, local folders."""

    cfg: RunConfig
    client: MlflowClient
    experiment_id: str
    run_id: str
    device: torch.device
    checkpoint_dir: Path
    hooks: tuple = ()
    _data: ImageData | None = field(default=None, repr=False)

    @property
    def data(self) -> ImageData:
        """The data set, decoded once (uint8 cache) and held on the device; loaded on first use."""
        if self._data is None:
            d = self.cfg.data
            data = load_data(d.name, data_root(self.cfg), train_size=d.train_size, test_size=d.test_size,
                             val_size=d.val_size, seed=self.cfg.seed, test_seed=d.test_seed, device=self.device)
            check_fingerprint(self.cfg, data.fingerprint, data.source)
            self._data = data
        return self._data

    @property
    def weights_dir(self) -> Path:
        """Where this run keeps θ_i snapshots (also logged to MLflow under `weights/`)."""
        path = layout.weights_dir(self.cfg.results_path(), self.cfg.identity())
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None and _is_number(v)}
        for key, value in clean.items():
            self.client.log_metric(self.run_id, key, value, step=step or 0)

    def set_tags(self, tags: dict[str, object]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_json(self, obj, artifact_path: str) -> None:
        """Write `obj` as JSON and log it as an artifact at `artifact_path` (e.g. 'plan.json')."""
        folder, _, name = artifact_path.rpartition("/")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
            self.client.log_artifact(self.run_id, str(path), folder or None)

    def log_file(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def save_weights(self, model: nn.Module, which: int | str) -> Path:
        """Save `model`'s state dict as θ_which (`which` an epoch, or `layout.FINAL`) to the weights
        folder and log it under `weights/` (names: `layout.weights_name`)."""
        path = self.weights_dir / layout.weights_name(which)
        with atomic_writer(path) as handle:
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, handle)
        self.log_file(path, layout.WEIGHTS)
        return path


def with_fingerprint(cfg: RunConfig) -> RunConfig:
    """`cfg` with `data.fingerprint` filled in from the data it names (read here), or checked
    against it when the config already records one. LotteryError when the data cannot be read."""
    found, source = data_fingerprint(cfg.data.name, data_root(cfg))
    check_fingerprint(cfg, found, source)
    return replace(cfg, data=replace(cfg.data, fingerprint=found))


def check_fingerprint(cfg: RunConfig, found: str, source: str) -> None:
    """LotteryError when the config records another data fingerprint than the data at `source`."""
    if cfg.data.fingerprint is not None and cfg.data.fingerprint != found:
        raise LotteryError(f"the data at {source} has fingerprint {found}, but this run's config records "
                           f"data.fingerprint={cfg.data.fingerprint}: it is other data (point data.root at "
                           f"the data the sweep was made for, or drop data.fingerprint)")


@functools.lru_cache(maxsize=8)
def data_fingerprint(name: str, root: str | None) -> tuple[str, str]:
    """(fingerprint, source) of data set `name` at `root` (read once per process and folder)."""
    data = load_data(name, root)  # the whole source: the fingerprint covers every image
    return data.fingerprint, data.source


def data_root(cfg: RunConfig) -> str | None:
    """The data directory: the setting, else $LOTTERY_DATA_DIR, else None (torchvision download)."""
    root = cfg.data.root or os.environ.get("LOTTERY_DATA_DIR")
    return str(Path(root).expanduser().resolve()) if root else None


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
