"""A trained network as an MLflow model, with its plan, and as an ONNX file beside it.

    info = log_network(client, run_id, experiment_id, ticket, plan=plan.to_dict())
    with tracking_store(uri):
        ticket = mlflow.pytorch.load_model(info.model_uri)     # the physically shallower network

`log_network` calls `mlflow.pytorch.log_model` for a CPU, eval-mode copy of the network in the
*pickle* format: loading gives back the network's own class (a `CifarResNet` with fewer blocks
in its stages, its `removed_blocks` and `dense_key_map`), which needs this project installed
where it is loaded (the model's requirements name `block-tickets`). MLflow 3's default, "pt2",
would give back a traced graph module instead, not our class. The logged model belongs to the run
(it is listed among the run's outputs and named after the pipeline); its MLmodel metadata holds
the removed blocks, the block counts, the plan (every block's score) and what the input is
(normalized images, with the data set's mean and std); its params repeat the removed blocks and
block counts, so that models can be searched by them.

`log_trained` is what a pipeline run does at its end, by its settings: `tracking.log_model`
(the MLflow model) and `tracking.export_onnx` (the run artifact `onnx/<pipeline>.onnx`, see
`lottery_core.export`). Both are off by default: they change no result and no identity.
"""
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import torch.nn as nn
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service import utils as _tracking_state

from lottery_core import surgery
from lottery_core.errors import LotteryError
from lottery_core.export import cpu_copy

ONNX_FOLDER = "onnx"   # the run's artifact folder of ONNX files
# What loading the pickled network needs: torch, MLflow's pickler, and this project (its classes).
REQUIREMENTS = ("torch", "cloudpickle", "block-tickets")


@contextlib.contextmanager
def tracking_store(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API (which `mlflow.pytorch.log_model` and `load_model` use) at `uri`
    for the block, then restore exactly what was set before, `$MLFLOW_TRACKING_URI` included
    (`mlflow.set_tracking_uri` writes that variable, and `pipelines.tracking` reads it)."""
    # the URI that `mlflow.set_tracking_uri` set, or None: MLflow has no public getter that says
    # "none set" (`get_tracking_uri` answers its default then), and exactly that is restored
    previous, variable = _tracking_state._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        if variable is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = variable


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Only errors from `logger` for the block: MLflow warns at every pickled model that pickle
    runs code when loaded; we pickle on purpose (module docstring), a warning per run says nothing."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def network_record(model: nn.Module, plan: Mapping | None = None, input_size: tuple[int, ...] = (3, 32, 32),
                   mean=None, std=None) -> dict:
    """What the logged model's metadata says: removed blocks, blocks kept and of the dense
    network, the plan, and the input (normalized float32 images (batch, C, H, W))."""
    removed = list(getattr(model, "removed_blocks", ()) or ())
    blocks = len(surgery.residual_blocks(model))   # 0 for a network without residual blocks (vgg11_bn)
    record = {"architecture": type(model).__name__, "removed_blocks": removed, "blocks": blocks,
              "dense_blocks": blocks + len(removed),
              "input": {"shape": ["batch", *input_size], "dtype": "float32",
                        "normalized": "(pixels in [0, 1] - mean) / std, per channel"}}
    if mean is not None and std is not None:
        record["input"].update(mean=[float(v) for v in mean], std=[float(v) for v in std])
    if plan is not None:
        record["plan"] = dict(plan)
    return record


def log_network(client: MlflowClient, run_id: str, experiment_id: str, model: nn.Module, *,
                name: str = "ticket", plan: Mapping | None = None, input_size: tuple[int, ...] = (3, 32, 32),
                mean=None, std=None, tags: Mapping[str, str] | None = None):
    """Log `model` as an MLflow model of run `run_id` (see the module docstring); returns MLflow's
    `ModelInfo` (`model_uri` = "models:/<model id>"). `model` itself is not changed."""
    record = network_record(model, plan, input_size, mean, std)
    params = {"removed_blocks": ",".join(record["removed_blocks"]) or "none", "blocks": str(record["blocks"]),
              "dense_blocks": str(record["dense_blocks"]), "architecture": record["architecture"]}
    logged = client.create_logged_model(experiment_id, name=name, source_run_id=run_id, params=params,
                                        tags={k: str(v) for k, v in (tags or {}).items()})
    import mlflow.pytorch  # here: a run that logs no model does not pay for its import

    network = cpu_copy(model)
    with tracking_store(client.tracking_uri), _quiet("mlflow.pytorch"):
        # the logged model made above carries the experiment and the run; `run_id` (Model.log's own
        # argument) lists it among the run's outputs
        return mlflow.pytorch.log_model(network, name=name, model_id=logged.model_id, run_id=run_id,
                                        serialization_format="pickle", pip_requirements=requirements(),
                                        metadata={"block_ticket": record})


def log_onnx(client: MlflowClient, run_id: str, model: nn.Module, name: str = "ticket",
             input_size: tuple[int, ...] = (3, 32, 32)) -> str:
    """Export `model` to ONNX (`lottery_core.export.export_onnx`) and log it as the run artifact
    `onnx/<name>.onnx`; returns that artifact path."""
    from lottery_core import export  # here: torch.onnx and onnxscript load only when asked

    with tempfile.TemporaryDirectory() as tmp:
        path = export.export_onnx(model, Path(tmp) / f"{name}.onnx", input_size)
        client.log_artifact(run_id, str(path), ONNX_FOLDER)
    return f"{ONNX_FOLDER}/{name}.onnx"


def log_trained(ctx, trained) -> dict[str, str]:
    """At the end of a run: the MLflow model (`tracking.log_model`) and the ONNX artifact
    (`tracking.export_onnx`) of the trained network; returns the tags that say where they are. A
    network that cannot be exported gets the tag `onnx` = "failed: <why>" and the run goes on."""
    t = ctx.cfg.tracking
    if not (t.log_model or t.export_onnx):
        return {}
    d = ctx.data
    input_size = tuple(d.test_images.shape[1:])
    name, tags = ctx.cfg.pipeline, {}
    if t.log_model:
        # a block ticket's plan (a filter ticket's is the block ticket that set its size: not its own)
        block_ticket = getattr(trained.model, "removed_blocks", None) is not None
        plan = trained.plan.to_dict() if trained.plan is not None and block_ticket else None
        run_tags = ctx.client.get_run(ctx.run_id).data.tags
        info = log_network(ctx.client, ctx.run_id, ctx.experiment_id, trained.model, name=name, plan=plan,
                           input_size=input_size, mean=d.mean, std=d.std,
                           tags={k: run_tags[k] for k in ("identity", "pipeline", "model", "criterion", "p", "seed")
                                 if k in run_tags})
        tags["logged_model"] = info.model_uri
    if t.export_onnx:
        try:
            tags["onnx"] = log_onnx(ctx.client, ctx.run_id, trained.model, name, input_size)
        except LotteryError as err:   # an output-only step: the trained run stays good without it
            tags["onnx"] = f"failed: {err}"[:4000]
            print(f"warning: ONNX export skipped: {err}", file=sys.stderr, flush=True)
    ctx.set_tags(tags)
    return tags


def requirements() -> list[str]:
    """Pinned pip requirements of a logged network: `REQUIREMENTS` at the versions installed here
    (given, so that MLflow does not load the model in a subprocess to infer them; `block-tickets`
    is left out where this project runs from a checkout that is not installed)."""
    out = []
    for dist in REQUIREMENTS:
        try:
            out.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            pass
    return out
