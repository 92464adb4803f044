"""The evaluation stage shared by every pipeline, and the comparison with the dense run.

Metric names (final, logged once at step 0; `pipelines.run_schema`): acc, loss, top5, macs, params,
memory_bytes, filters, train_time_s (total SGD time), mean_epoch_train_time_s (its mean per epoch),
wall_time_s, energy_kwh, emissions_kg, corruption_acc[.<name>], shifted_acc.<set>,
adv_acc.<attack>.eps<k> (ε = k/255), cka_vs_dense, and versus dense the keys of
`pipelines.comparison.compare`: delta_acc (points), winning (1 or 0), <x>_reduction_pct,
speedup (dense / ticket mean SGD time per epoch), ideal_speedup (dense MACs / ticket MACs),
delta_<robustness metric>. None of them is also a per-epoch key (those are `epoch_*`).
"""
import statistics
import tempfile
from pathlib import Path

import torch

from lottery_core import accounting, robustness
from lottery_core.evaluate import evaluate
from lottery_core.similarity import features, linear_cka
from pipelines import layout, steps
from pipelines.comparison import COMPARISON_KEYS, ROBUSTNESS_PREFIXES, compare
from pipelines.context import RunContext
from pipelines.experiments import Trained
from pipelines.run_schema import LEGACY_METRICS

# Final metrics by name (see the module docstring): what an Optuna search may optimize.
RUN_METRICS = ("acc", "loss", "top5", "macs", "params", "memory_bytes", "filters", "train_time_s",
               "mean_epoch_train_time_s", "wall_time_s", "energy_kwh", "emissions_kg", "val_acc")
VERSUS_DENSE = (*COMPARISON_KEYS, "cka_vs_dense")


def metric_problem(name: str, pipeline: str, val_size: int) -> str | None:
    """Why a run of `pipeline` never reports final metric `name` (None when it does, or may:
    robustness metrics depend on the evaluation settings)."""
    if name.startswith(ROBUSTNESS_PREFIXES) or name.startswith(tuple(f"delta_{p}" for p in ROBUSTNESS_PREFIXES)):
        return None
    if name == "val_acc" and val_size == 0:
        return "val_acc needs data.val_size > 0"
    if name in VERSUS_DENSE:
        return None if pipeline != "dense" else f"{name} compares a ticket with its dense run; a dense run has none"
    if name in RUN_METRICS:
        return None
    if name in LEGACY_METRICS:
        history, final = LEGACY_METRICS[name]
        return (f"{name!r} is no final metric: the per-epoch one is now {history!r}"
                + (f" and the final one {final!r}" if final else ""))
    return (f"no run reports a metric {name!r}; final metrics: {', '.join(RUN_METRICS + VERSUS_DENSE)}, "
            f"and {', '.join(p + '...' for p in ROBUSTNESS_PREFIXES)}")


def evaluate_run(ctx: RunContext, trained: Trained, emissions) -> tuple[dict[str, float], dict[str, str]]:
    """All final metrics of a trained network, and tags (comparison status, emissions status)."""
    d, ev, model = ctx.data, ctx.cfg.evaluation, trained.model
    metrics: dict[str, float] = {}
    tags: dict[str, str] = {}
    metrics.update(evaluate(model, d.test_images, d.test_labels, d.mean, d.std))
    metrics["test_images"] = len(d.test_labels)  # the same images for every seed (data.test_seed)
    if len(d.val_images):
        metrics["val_acc"] = evaluate(model, d.val_images, d.val_labels, d.mean, d.std)["acc"]
    cost = accounting.measure(model, tuple(d.test_images.shape[1:]))
    metrics.update({k: v for k, v in cost.as_dict().items()})
    # training time proper (SGD steps), without the per-epoch evaluation and checkpoint: the total
    # and its mean per epoch (the history's `train_time_s` is logged as `epoch_train_time_s`)
    epoch_times = [h.get("train_time_s", h["epoch_time_s"]) for h in trained.result.history]
    metrics["train_time_s"] = sum(epoch_times)
    metrics["mean_epoch_train_time_s"] = statistics.fmean(epoch_times) if epoch_times else float("nan")
    metrics["wall_time_s"] = trained.result.total_time_s
    metrics["epochs_trained"] = len(epoch_times)
    # the epochs the last attempt found in its checkpoint (0: it trained from the start)
    metrics["resumed_from_epoch"] = trained.result.resumed_from_epoch or 0
    tags["emissions_status"] = _emissions(emissions, metrics)
    metrics.update(_robustness(ctx, model))
    own_features = _cka_features(ctx, model) if ev.cka_images > 0 else None
    if own_features is not None:   # a comparison made after both runs finished reads them
        _log_tensor(ctx, own_features, layout.CKA_FEATURES)
    dense = trained.dense if trained.dense is not None else (
        steps.find_dense(ctx) if ctx.cfg.pipeline != "dense" else None)
    if ctx.cfg.pipeline == "dense":
        tags["comparison"] = "self"
    elif dense is None:
        tags["comparison"] = f"missing: no finished dense run with identity {ctx.cfg.dense().identity()}"
    else:
        tags["comparison"] = f"ok: dense run {dense.run_id}"
        missing = steps.weights_missing(ctx, dense, layout.FINAL) if ev.cka_images > 0 else None
        if missing is not None:  # measured where its dense run trained (or its weights were copied)
            tags["cka"] = (f"skipped: dense run {dense.run_id} was imported from records, which hold no weights "
                           f"(copy {missing.parent} here to measure it)")
        elif ev.cka_images > 0:
            metrics["cka_vs_dense"] = _cka(ctx, own_features, dense)
        metrics.update(compare(metrics, dense.metrics, ev.xi))
    return metrics, tags


def _emissions(result, metrics: dict) -> str:
    if result is None or result.emissions_kg is None:
        reason = getattr(result, "reason", None) or "tracker gave no result"
        return f"unknown: {reason}"
    metrics.update({"energy_kwh": result.energy_kwh, "emissions_kg": result.emissions_kg,
                    "cpu_energy_kwh": result.cpu_energy_kwh, "gpu_energy_kwh": result.gpu_energy_kwh,
                    "ram_energy_kwh": result.ram_energy_kwh, "emissions_duration_s": result.duration_s,
                    "emissions_overhead_s": result.overhead_s})
    return "measured"


def _subset(ctx: RunContext, n: int):
    """A random subset of n test images (the test set may be ordered by class), seeded by
    `data.test_seed`: the same images for every run seed, so seeds pair image by image."""
    d = ctx.data
    n = min(n, len(d.test_images))
    g = torch.Generator().manual_seed(ctx.cfg.data.test_seed)
    idx = torch.randperm(len(d.test_images), generator=g)[:n].to(d.test_images.device)
    return d.test_images[idx], d.test_labels[idx]


def _robustness(ctx: RunContext, model) -> dict[str, float]:
    d, ev = ctx.data, ctx.cfg.evaluation
    out: dict[str, float] = {}
    names = robustness.CORRUPTIONS if "all" in ev.corruptions else ev.corruptions
    if names and ev.corruption_images > 0:
        images, labels = _subset(ctx, ev.corruption_images)
        # the corrupted sets depend on the images, corruptions, severities and seed, not on the model:
        # made once per node and reused by every run there (robustness.corruption_cache)
        report = robustness.corruption_accuracy(model, images, labels, d.mean, d.std, names=tuple(names),
                                                severities=ev.severities, seed=ctx.cfg.data.test_seed,
                                                cache_dir=robustness.default_cache_dir())
        cache = report["cache"]
        ctx.set_tags({"corruption_set": f"reused: {cache['key'][:12]}" if cache["status"] == "reused"
                      else cache["status"]})
        out["corruption_acc"] = report["mean"]
        out.update({f"corruption_acc.{name}": acc for name, acc in report["per_corruption"].items()})
        if report["substitutes"]:
            ctx.set_tags({"corruption_substitutes": "; ".join(f"{k}: {v}" for k, v in report["substitutes"].items())})
    for kind, directory in (("cifar10_c", ev.cifar10_c_dir), ("cifar10_1", ev.cifar10_1_dir),
                            ("cifar10_2", ev.cifar10_2_dir)):
        if directory:
            out[f"shifted_acc.{kind}"] = robustness.shifted_accuracy(model, directory, kind, d.mean, d.std)
    if ev.attacks and ev.attack_images > 0:
        images, labels = _subset(ctx, ev.attack_images)
        for attack in ev.attacks:
            for eps in ev.epsilons:
                out[f"adv_acc.{attack}.eps{round(eps * 255)}"] = robustness.adversarial_accuracy(
                    model, images, labels, d.mean, d.std, attack=attack, eps=eps, seed=ctx.cfg.data.test_seed)
    return out


def _cka_features(ctx: RunContext, model) -> torch.Tensor:
    """Penultimate features of `model` on the run's CKA images (`evaluation.cka_images`, the same
    images for every seed and run: `_subset`), n x d on the CPU."""
    from lottery_core.normalize import Normalize

    images, _ = _subset(ctx, ctx.cfg.evaluation.cka_images)
    normalize = Normalize(ctx.data.mean, ctx.data.std).to(images.device)
    return features(model, [(normalize(images[i:i + 250].float() / 255), None) for i in range(0, len(images), 250)])


def _cka(ctx: RunContext, own_features: torch.Tensor, dense) -> float:
    dense_model = steps.new_model(ctx)
    dense_model.load_state_dict(steps.dense_weights(ctx, dense, layout.FINAL))
    return linear_cka(own_features, _cka_features(ctx, dense_model))


def _log_tensor(ctx: RunContext, tensor: torch.Tensor, artifact_path: str) -> None:
    folder, _, name = artifact_path.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        torch.save(tensor.contiguous(), path)
        ctx.log_file(path, folder or None)
