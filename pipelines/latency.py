"""Inference latency of every finished run, measured after the training, with the machine to itself.

    outcome = measure_runs(tracking_uri, "block-tickets", sweep="demo-...",
                           settings=LatencySettings(batch_sizes=(1, 128), device="cpu", threads=1))

A latency taken while training trials share the cores means little, so the runs do not time
themselves: this pass runs afterwards (`lottery latency`, or a sweep file's `latency:` key, once
every trial has finished). For each FINISHED run it rebuilds the run's architecture without
weights (latency does not depend on them) from what the run logged:

- the dense network from the params `model.name`, `model.shortcut`, `model.init` and the data set
  (`data.name`: CIFAR-10/100 are 10/100 classes of 3x32x32 images; a `folder` data set is read
  at the run's `data.root`, or $LOTTERY_DATA_DIR, for its class count and image size);
- block tickets (ticket_init, ticket_rewind, reinit, iterative) by removing the blocks of the tag
  `removed_blocks` (dense names) with `surgery.remove_blocks`;
- filter tickets by replaying the artifact `filter_plan.json`'s Torch-Pruning history
  (`surgery.replay_pruning`).

The rebuilt network's MACs and parameters must equal the run's logged `macs` and `params`; a run
where they differ is refused in one line before anything is timed (its tags do not describe its
network). Runs that
cannot be rebuilt (no `macs` metric, no `removed_blocks` tag, folder data that is not there) are
skipped with the reason. Identical architectures are timed once and the result shared.

One pass for all: every distinct network of the runs, the dense one included, is timed in the same
`rounds` rounds, each round visiting all of them in a fresh random order (`time_networks`), so a
slow moment of the machine falls on all networks alike and a speed-up is read per round (dense
round r / ticket round r, `pipelines.report.timing`). Inference is timed by `accounting.latency`
(eval mode, no grad, float32, NCHW, median of `repeats` passes after `warmup`), a training step by
`accounting.train_step_seconds`. The run gets the metrics `latency_b<n>_ms` (milliseconds per
forward pass of a batch of n), with `train_batch` also `train_step_b<n>_ms` (milliseconds per SGD
training step of a batch of n, in the engine's precision: the isolated training speed that runs
sharing the cores cannot measure), each the median over the rounds; the tags of `CONDITION_TAGS`
(with `latency_pass`, the pass's id) and of `NETWORK_TAGS` (`latency_network`, a digest of the
architecture; `latency_rounds`, the milliseconds of every round). A pass times all the runs it is
given or none: when every run that can be rebuilt already has every requested metric, nothing is
timed unless `force`; otherwise all of them are timed again, so that their speed-ups come from one
pass. A run that is no longer FINISHED when its turn comes (reopened by a resume) is left alone.
"""
import contextlib
import functools
import hashlib
import json
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from lottery_core import accounting, models, surgery
from lottery_core.data.dataset import DATASETS
from lottery_core.emissions import cpu_model
from lottery_core.errors import LotteryError
from lottery_core.train import cpus_given
from lottery_core.train.device import resolve_device
from lottery_core.train.precision import precision
from lottery_core.train.runtime import CPU_CHANNELS_LAST
from pipelines.config import ModelConfig
from pipelines.config.pipeline_registry import get_pipeline, pipeline_names
from pipelines.latency_settings import (
    CONDITION_TAGS,
    NETWORK_TAGS,
    LatencySettings,
    metric_name,
    train_step_metric,
)
from pipelines.report.runs import load_runs

CIFAR_INPUT = (3, 32, 32)
FILTER_PLAN = "filter_plan.json"


@dataclass
class LatencyOutcome:
    """What one pass did: runs that got the metrics, runs skipped (run id → reason), networks timed,
    the conditions (the tags logged, `latency_pass` among them) and the seed of the visiting orders."""

    measured: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    networks: int = 0
    conditions: dict[str, str] = field(default_factory=dict)
    seed: int | None = None

    def summary(self) -> str:
        done = (f"latency of {len(self.measured)} run(s) measured ({self.networks} distinct network(s); "
                + ", ".join(f"{k.removeprefix('latency_')} {v}" for k, v in self.conditions.items()) + ")"
                if self.measured else "no run measured")
        return f"{done}; {len(self.skipped)} skipped" if self.skipped else done


@dataclass(frozen=True)
class Rebuilt:
    """A run's architecture, rebuilt: the network (no trained weights), its input size, the key
    that identical architectures share, and a short label for the console."""

    network: nn.Module
    input_size: tuple[int, ...]
    key: str
    label: str


def measure_runs(tracking_uri: str, experiment: str, sweep: str | None = None,
                 settings: LatencySettings | None = None, force: bool = False,
                 say: Callable[[str], None] = print) -> LatencyOutcome:
    """Time every FINISHED run of `experiment` (or of `sweep`) in one interleaved pass and log its
    latency metrics and tags (module docstring), with `settings` (default: `LatencySettings()`).
    `say` gets one line per run skipped, per round and per network timed."""
    settings = settings or LatencySettings()
    device = resolve_device(settings.device)   # a GPU this machine lacks: one line, nothing done
    client = MlflowClient(tracking_uri)
    wanted = settings.metrics()
    outcome = LatencyOutcome()
    runs = [client.get_run(run_id) for run_id in load_runs(tracking_uri, experiment, sweep).run_id]
    if not force and all(all(m in run.data.metrics for m in wanted) for run in runs):
        outcome.skipped = {run.info.run_id: "already measured (--force measures again)" for run in runs}
        return outcome
    todo: dict[str, list[str]] = {}     # architecture key -> run ids
    networks: dict[str, Rebuilt] = {}
    for run in runs:
        try:
            rebuilt = rebuild(client, run)
        except SkipRun as why:
            outcome.skipped[run.info.run_id] = str(why)
            say(f"skipped run {run.info.run_id} ({run.info.run_name}): {why}")
            continue
        check_rebuild(run, rebuilt)
        networks.setdefault(rebuilt.key, rebuilt)
        todo.setdefault(rebuilt.key, []).append(run.info.run_id)
    timed = {run.info.run_id for run in runs if run.info.run_id not in outcome.skipped}
    if not force and all(all(m in run.data.metrics for m in wanted) for run in runs if run.info.run_id in timed):
        outcome.skipped.update({run_id: "already measured (--force measures again)" for run_id in timed})
        return outcome   # only runs that cannot be rebuilt lack the metrics
    outcome.seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(2 ** 32)
    outcome.conditions = conditions(device, settings, outcome.seed)
    with _threads(settings.threads):
        outcome.conditions["latency_threads"] = str(torch.get_num_threads())
        rounds = time_networks({key: networks[key] for key in todo}, device, settings, outcome.seed, say)
    for key, run_ids in todo.items():
        outcome.networks += 1
        measured = {name: statistics.median(ms) for name, ms in rounds[key].items()}
        say(f"{networks[key].label}: " + ", ".join(f"{name} {ms:.2f}" for name, ms in measured.items())
            + f" ({len(run_ids)} run(s))")
        tags = {**outcome.conditions, **dict(zip(NETWORK_TAGS, (network_digest(key), json.dumps(
            rounds[key], separators=(",", ":"))), strict=True))}   # latency_network, latency_rounds
        for run_id in run_ids:
            if client.get_run(run_id).info.status != "FINISHED":   # reopened meanwhile: not ours to touch
                outcome.skipped[run_id] = "no longer FINISHED"
                continue
            log_latency(client, run_id, measured, tags)
            outcome.measured.append(run_id)
    return outcome


def network_digest(key: str) -> str:
    """The tag `latency_network`: 12 hex digits of the architecture's key (`Rebuilt.key`), the same
    for every run of that architecture."""
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


class SkipRun(Exception):
    """A run whose architecture cannot be rebuilt from what it logged (the reason is the message)."""


def rebuild(client: MlflowClient, run) -> Rebuilt:
    """The run's architecture without trained weights (module docstring); SkipRun with the reason
    when the run did not log what that takes."""
    params, tags = run.data.params, run.data.tags
    pipeline = tags.get("pipeline")
    if "model.name" not in params:
        raise SkipRun("no model.name param (not a pipeline run)")
    num_classes, input_size = data_shape(params)
    model = ModelConfig(name=params["model.name"], shortcut=params.get("model.shortcut", ModelConfig.shortcut),
                        init=params.get("model.init", ModelConfig.init))
    with torch.random.fork_rng(devices=[]):   # the caller's random stream is not consumed
        dense = models.build(model.name, num_classes=num_classes, **model.builder_options())
    what = f"{model.name}{sorted(model.builder_options().items())} {num_classes} classes {'x'.join(map(str, input_size))}"
    if pipeline == "dense":
        return Rebuilt(dense, input_size, f"{what} dense", f"{model.name} dense")
    if pipeline in block_pipelines():
        if "removed_blocks" not in tags:
            raise SkipRun("no removed_blocks tag")
        removed = sorted(b for b in tags["removed_blocks"].split(",") if b and b != "none")
        minimum = int(params.get("pruning.min_blocks_per_stage", surgery.DEFAULT_MIN_BLOCKS_PER_STAGE))
        try:
            ticket = surgery.remove_blocks(dense, removed, minimum)
        except LotteryError as err:
            raise LotteryError(f"run {run.info.run_id} ({run.info.run_name}): its removed_blocks "
                               f"{tags['removed_blocks']!r} cannot be removed from {model.name}: {err}") from None
        return Rebuilt(ticket, input_size, f"{what} without {','.join(removed) or 'none'}",
                       f"{model.name} without {','.join(removed) or 'no block'}")
    if pipeline == "filter_ticket":
        history = _artifact_json(client, run.info.run_id, FILTER_PLAN).get("pruning_history")
        if history is None:
            raise SkipRun(f"no {FILTER_PLAN} with a pruning_history")
        ticket = surgery.replay_pruning(dense, history, input_size)
        digest = hashlib.blake2b(json.dumps(history, sort_keys=True).encode(), digest_size=8).hexdigest()
        return Rebuilt(ticket, input_size, f"{what} filters {digest}",
                       f"{model.name} filter ticket ({accounting.count_filters(ticket)} filters, cut {digest})")
    raise SkipRun(f"pipeline {pipeline!r} has no rebuild rule")


def data_shape(params: Mapping[str, str]) -> tuple[int, tuple[int, ...]]:
    """(classes, input size (C, H, W)) of the run's data set: CIFAR's by name, a folder's read from
    its root (the run's `data.root`, else $LOTTERY_DATA_DIR); SkipRun when that folder is not there."""
    name = params.get("data.name", "cifar10")
    if name in DATASETS and DATASETS[name][0] is not None:
        return DATASETS[name][0], CIFAR_INPUT
    root = params.get("data.root")
    root = root if root and root != "None" else os.environ.get("LOTTERY_DATA_DIR")
    if not root:
        raise SkipRun(f"data set {name!r} without data.root: its class count and image size are unknown")
    try:
        return _folder_shape(str(Path(root).expanduser().resolve()))
    except LotteryError as err:
        raise SkipRun(f"data set {name!r} at {root} cannot be read for its class count and image size: {err}") from None


@functools.lru_cache(maxsize=8)
def _folder_shape(root: str) -> tuple[int, tuple[int, ...]]:
    from lottery_core.data import load_data

    data = load_data("folder", root)
    return data.num_classes, tuple(data.test_images.shape[1:])


def check_rebuild(run, rebuilt: Rebuilt) -> None:
    """LotteryError (one line naming the run) when the rebuilt network's MACs or parameter count are
    not the run's logged `macs` and `params`: its tags or plan do not describe the network it
    trained. (Both, because every block of a CIFAR ResNet costs the same MACs: a block of the wrong
    stage is caught by its parameters.)"""
    logged = {key: run.data.metrics.get(key) for key in ("macs", "params")}
    if logged["macs"] is None:
        raise SkipRun("no macs metric to check the rebuilt architecture against")
    found = {"macs": accounting.count_macs(rebuilt.network, rebuilt.input_size),
             "params": accounting.count_params(rebuilt.network)}
    for key, value in found.items():
        if logged[key] is not None and value != round(logged[key]):
            raise LotteryError(f"run {run.info.run_id} ({run.info.run_name}): the architecture rebuilt from its tags "
                               f"has {value:,} {key}, the run logged {round(logged[key]):,}; its removed_blocks tag "
                               f"or plan does not describe its network, so no latency was measured")


def visit_orders(keys, rounds: int, seed: int, sub_passes: int = 2) -> list[list[list[str]]]:
    """The order in which each round's sub-passes visit the networks: `rounds` lists of `sub_passes`
    permutations of `keys` (sorted first, so the orders depend on the keys and the seed only), each
    a fresh draw of `random.Random(seed)`."""
    rng = random.Random(seed)
    keys = sorted(keys)
    return [[rng.sample(keys, len(keys)) for _ in range(sub_passes)] for _ in range(rounds)]


def time_networks(networks: Mapping[str, Rebuilt], device: torch.device, settings: LatencySettings, seed: int,
                  say: Callable[[str], None] = lambda line: None) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per network, metric and round on `device` (each list in round order): one
    forward pass per batch size (`latency_b<n>_ms`, `accounting.latency`) and, with
    `settings.train_batch`, one training step (`train_step_b<n>_ms`, `accounting.train_step_seconds`
    in the engine's precision and memory format on that device); each the median of
    `settings.repeats` calls after `settings.warmup`, rounded to 0.1 µs.

    Interleaved: in each of `settings.rounds` rounds every network is visited, in an order drawn
    afresh each round (`visit_orders(networks, rounds, seed)`), so a slow moment of the machine — a
    burst of other work, a change of clock — falls on all networks of that round alike and cancels
    in the round's speed-ups (dense round r / ticket round r). A round has two sub-passes, each in
    its own random order: first every network's inference (all batch sizes), then every network's
    training step. They are not mixed in one order because a training step (bf16, channels-last,
    large buffers) changes the timing of the inference passes right after it by up to ±40 % on a
    CPU: mixed, an inference visit would be slowed or not by the luck of the draw. For the same
    reason each inference sub-pass after a training sub-pass starts with one untimed inference visit
    (of its first network). Both sub-passes of a round lie within minutes of each other, so the
    round's training speed-ups and its inference speed-ups each compare networks timed side by side.
    `say` gets one line per round."""
    on_device = {key: rebuilt.network.to(device) for key, rebuilt in networks.items()}
    times: dict[str, dict[str, list[float]]] = {key: {m: [] for m in settings.metrics()} for key in networks}
    bf16 = precision(device, True) == "bf16"
    channels_last = device.type == "cuda" or CPU_CHANNELS_LAST
    train = settings.train_batch

    def infer(key: str) -> dict[str, float]:
        return {metric_name(b): accounting.latency(on_device[key], b, networks[key].input_size, settings.repeats,
                                                   settings.warmup) for b in settings.batch_sizes}

    for r, (inference_order, training_order) in enumerate(visit_orders(networks, settings.rounds, seed), 1):
        started = time.monotonic()
        if r > 1 and train:
            infer(inference_order[0])   # settles the caches after the last round's training steps
        for key in inference_order:
            for name, seconds in infer(key).items():
                times[key][name].append(round(1000.0 * seconds, 4))
        for key in training_order if train else ():
            times[key][train_step_metric(train)].append(round(1000.0 * accounting.train_step_seconds(
                on_device[key], train, networks[key].input_size, bf16, channels_last, settings.repeats,
                settings.warmup), 4))
        say(f"round {r}/{settings.rounds}: {len(networks)} network(s) in {time.monotonic() - started:.0f} s")
    return times


def log_latency(client: MlflowClient, run_id: str, measured: Mapping[str, float], tags: Mapping[str, str]) -> None:
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(name, float(ms), now, 0) for name, ms in measured.items()])
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def conditions(device: torch.device, settings: LatencySettings, seed: int) -> dict[str, str]:
    """The tags that say how and in which pass the latency was measured (threads are filled in once
    they are set); the pass id is the UTC time and 6 random hex digits."""
    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        where = f"cpu ({cpu_model() or 'unknown model'})"
    method = (f"median over {settings.rounds} interleaved rounds (random order, seed {seed}) of the median of "
              f"{settings.repeats} passes after {settings.warmup} warm-up; float32, eval mode")
    if settings.train_batch:
        method += (f"; training step of {settings.train_batch} images in "
                   f"{precision(device, True)}{', channels-last' if device.type == 'cuda' or CPU_CHANNELS_LAST else ''}")
    now = time.gmtime()
    pass_id = f"{time.strftime('%Y%m%dT%H%M%SZ', now)}-{secrets.token_hex(3)}"
    # device, threads, torch, method, measured at, pass
    return dict(zip(CONDITION_TAGS, (where, "", torch.__version__, method, time.strftime("%Y-%m-%d %H:%M UTC", now),
                                     pass_id), strict=True))


@contextlib.contextmanager
def _threads(threads: int | None):
    """torch's intra-op threads for the block (None: as many CPUs as this process is given)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or cpus_given())
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def block_pipelines() -> set[str]:
    """The pipelines whose runs are the dense network less the blocks of their `removed_blocks` tag."""
    return {n for n in pipeline_names() if get_pipeline(n).prunes and get_pipeline(n).level == "block"}


def _artifact_json(client: MlflowClient, run_id: str, path: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except Exception:   # MLflow raises several kinds for an artifact that is not there
            return {}
        return json.loads(Path(local).read_text())


__all__ = ["LatencyOutcome", "Rebuilt", "SkipRun", "check_rebuild", "measure_runs", "network_digest", "rebuild",
           "time_networks", "visit_orders"]
