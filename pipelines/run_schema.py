"""What a run logs to MLflow: every metric, tag, param and artifact, with its unit and meaning.

    declared("adv_acc.fgsm.eps8", "metric")     # the Entry `adv_acc.<attack>.eps<k>`
    undeclared(run.data.tags, "tag")             # keys no entry declares (MLflow's `mlflow.*` allowed)

One entry per key or per family of keys: `<placeholder>` stands for one name (no dots), `<n>`,
`<k>` and `<i>` for digits, `<sweep>` for a sweep name (which may hold dots). `runs` says which
runs log it. The documentation's table (docs/reference/mlflow.md, written by `python -m
pipelines.reference`) is generated from this tuple, and a test checks that the keys a real run
logs are all declared here: a new metric or tag needs its entry. Plain data: imports nothing
heavy (no torch, no MLflow).

One meaning per metric key: a metric key is either a history, logged once per epoch (step = the
epoch, from 0), once per round (step = the round) or once per attempt at training the run (step =
the attempt: `attempt_first_epoch`), or a single final value at step 0, logged when
the run has been evaluated (again only to replace it, as a re-timed latency); never both. MLflow's
run page and `run.data.metrics` show a key's value at its highest step, so a key with both would
show its last epoch's value where the final one was meant (`Entry.step` says which a key is;
`metric_step`). Every per-epoch key carries the `epoch_` prefix (`epoch_test_acc` beside the final
`acc`, `epoch_train_time_s` beside the total `train_time_s`), except the training curves `lr`,
`train_loss` and `train_acc`, which have no final counterpart; round histories carry `round_`.
`EPOCH_KEYS` maps the training loop's in-memory history keys (`lottery_core.train`) to the logged
ones, and `LEGACY_METRICS` the keys of runs logged before this rule to theirs (`lottery records
import`).

Accuracy: `acc` is the primary endpoint, the float32 evaluation of the trained network on the
whole test split; `epoch_test_acc` (evaluated during training, in the training precision, bf16 on
a GPU) is for learning curves only. Training time: `epoch_train_time_s` is one epoch's SGD steps,
`train_time_s` their sum over the epochs trained and `mean_epoch_train_time_s` their mean; a
ticket's `train_time_reduction_pct` compares the sums and its `speedup` the means, so with as many
epochs as its dense run 100 (1 − 1 / speedup) = train_time_reduction_pct.
"""
import re
from dataclasses import dataclass

from pipelines.comparison import REDUCTIONS

KINDS = ("metric", "tag", "param", "artifact")
SYSTEM_TAG_PREFIX = "mlflow."   # MLflow's own tags (user, source, git commit, ...), not ours to declare

EVERY = "every pipeline run"
TICKETS = "tickets (every pipeline but dense)"
BLOCK_TICKETS = "ticket_init, ticket_rewind, filter_ticket, reinit"
ITERATIVE = "iterative"
ROUND = "round child runs of an iterative run"
PARENT = "sweep parent runs"
LATENCY = "runs timed by `lottery latency`"


@dataclass(frozen=True)
class Entry:
    """One logged key (or family of keys). `step`: for metrics, what the MLflow step counts
    (`epoch`, `round`, or `0` for a final value logged once)."""

    name: str
    kind: str
    unit: str
    meaning: str
    runs: str = EVERY
    step: str = ""

    def pattern(self) -> re.Pattern:
        """The regular expression of the keys this entry declares."""
        parts = re.split(r"(<[a-z_ ]+>)", self.name)
        out = []
        for part in parts:
            if part in ("<n>", "<k>", "<i>"):
                out.append(r"\d+")
            elif part == "<sweep>":
                out.append(r".+")
            elif part.startswith("<"):
                out.append(r"[^.]+")
            else:
                out.append(re.escape(part))
        return re.compile("".join(out) + r"\Z")


def _m(name, unit, meaning, runs=EVERY, step="0"):
    return Entry(name, "metric", unit, meaning, runs, step)


def _t(name, unit, meaning, runs=EVERY):
    return Entry(name, "tag", unit, meaning, runs)


def _p(name, unit, meaning, runs=EVERY):
    return Entry(name, "param", unit, meaning, runs)


def _a(name, unit, meaning, runs=EVERY):
    return Entry(name, "artifact", unit, meaning, runs)


_EPOCH = "every pipeline run (and the round runs that train)"

# one value per attempt at training a run (step = the attempt, from 0): the ledger `lottery records
# check` reads to show that a resumed run trained no epoch twice (pipelines.audit)
ATTEMPT_METRICS = (
    _m("attempt_first_epoch", "epoch", "the first epoch the attempt trained: 0 from the start, k when it resumed "
       "from a checkpoint holding epochs 0..k−1 (logged when the attempt's first epoch ends)", _EPOCH, "attempt"),
    _m("attempt_epochs_retrained", "count", "epochs MLflow already held from `attempt_first_epoch` on, which the "
       "attempt trains again (its checkpoint was older than the log); 0: nothing trained twice", _EPOCH, "attempt"),
)

EPOCH_METRICS = (
    _m("lr", "learning rate", "learning rate at the end of the epoch", _EPOCH, "epoch"),
    _m("train_loss", "nats", "mean cross-entropy of the epoch's training batches", _EPOCH, "epoch"),
    _m("train_acc", "%", "accuracy on the epoch's (augmented) training batches", _EPOCH, "epoch"),
    _m("epoch_train_time_s", "s", "time of the epoch's SGD steps (no evaluation, no checkpoint); "
       "summed: `train_time_s`", _EPOCH, "epoch"),
    _m("epoch_eval_time_s", "s", "time of the epoch's test/validation evaluation", _EPOCH, "epoch"),
    _m("epoch_checkpoint_time_s", "s", "time to write the epoch's checkpoint", _EPOCH, "epoch"),
    _m("epoch_wall_time_s", "s", "wall time of the epoch: SGD steps + evaluation + checkpoint", _EPOCH, "epoch"),
    _m("epoch_images_per_s", "images/s", "training images per second of the epoch's SGD steps", _EPOCH, "epoch"),
    _m("epoch_steps", "count", "SGD steps in the epoch", _EPOCH, "epoch"),
    _m("epoch_test_acc", "%", "test accuracy after the epoch, in the training precision (bf16 on a GPU; "
       "every `training.eval_every` epochs and after the last): for learning curves only, the run's "
       "accuracy is `acc`", _EPOCH, "epoch"),
    _m("epoch_test_loss", "nats", "mean test cross-entropy after the epoch (curves only; final: `loss`)",
       _EPOCH, "epoch"),
    _m("epoch_test_top5", "%", "top-5 test accuracy after the epoch (data sets with >= 5 classes; curves only; "
       "final: `top5`)", _EPOCH, "epoch"),
    _m("epoch_val_acc", "%", "validation accuracy after the epoch (`data.val_size` > 0; curves only; final: "
       "`val_acc`)", _EPOCH, "epoch"),
    _m("epoch_val_loss", "nats", "mean validation cross-entropy after the epoch (`data.val_size` > 0)",
       _EPOCH, "epoch"),
    _m("epoch_val_top5", "%", "top-5 validation accuracy after the epoch (`data.val_size` > 0)", _EPOCH, "epoch"),
)

# the training loop's per-epoch history key (`lottery_core.train`) -> the key a run logs per epoch
# (MLflow, Ray); a key not named here is logged as `epoch_<key>`
EPOCH_KEYS = {"lr": "lr", "train_loss": "train_loss", "train_acc": "train_acc",
              "train_time_s": "epoch_train_time_s", "eval_time_s": "epoch_eval_time_s",
              "checkpoint_time_s": "epoch_checkpoint_time_s", "epoch_time_s": "epoch_wall_time_s",
              "images_per_s": "epoch_images_per_s", "steps": "epoch_steps",
              "test_acc": "epoch_test_acc", "test_loss": "epoch_test_loss", "test_top5": "epoch_test_top5",
              "val_acc": "epoch_val_acc", "val_loss": "epoch_val_loss", "val_top5": "epoch_val_top5"}


def epoch_key(key: str) -> str:
    """The key a per-epoch metric of the training loop's history is logged under (`EPOCH_KEYS`)."""
    return EPOCH_KEYS.get(key, f"epoch_{key}")


def epoch_metrics(metrics) -> dict[str, float]:
    """One epoch of the training loop's history as the run logs it: numbers only (no `epoch`, no
    booleans), under their logged keys (`epoch_key`)."""
    return {epoch_key(k): float(v) for k, v in metrics.items()
            if k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool)}


# Runs logged before the rule above (records exported then) used the training loop's keys, and three
# of them (val_acc, train_time_s, epoch_time_s) held a history and a final value at step 0 at once.
# legacy key -> (the name of its per-epoch history now, the name of its final value now or None)
LEGACY_METRICS = {old: (new, {"val_acc": "val_acc", "train_time_s": "train_time_s",
                              "epoch_time_s": "mean_epoch_train_time_s"}.get(old))
                  for old, new in EPOCH_KEYS.items() if old != new}

_ROBUSTNESS = "runs whose `evaluation` asks for it"

FINAL_METRICS = (
    _m("acc", "%", "test accuracy of the trained network, float32, on the whole test split unless "
       "`data.test_size`: the primary endpoint"),
    _m("loss", "nats", "mean test cross-entropy of the trained network"),
    _m("top5", "%", "top-5 test accuracy (data sets with >= 5 classes)"),
    _m("test_images", "count", "test images behind `acc` (the same images for every seed)"),
    _m("val_acc", "%", "validation accuracy of the trained network, float32 (`data.val_size` > 0)"),
    _m("macs", "MACs", "multiply-accumulates of one forward pass of one image (convolutions, linears, "
       "attention; `torch.utils.flop_counter`)"),
    _m("params", "count", "parameters of the trained network"),
    _m("activations", "count", "output values of every convolution, BatchNorm, ReLU, linear and pooling call "
       "for one image"),
    _m("memory_bytes", "bytes", "4 bytes per parameter and per output of every convolution, BatchNorm, "
       "ReLU, linear and pooling call for one image"),
    _m("filters", "count", "convolution filters (output channels) of the network"),
    _m("train_time_s", "s", "time of the SGD steps of every epoch trained, summed (no evaluation or checkpoint): "
       "the sum of `epoch_train_time_s`"),
    _m("mean_epoch_train_time_s", "s", "mean SGD time of one epoch: `train_time_s` / `epochs_trained`"),
    _m("wall_time_s", "s", "wall time of the training loop: its epochs' SGD steps, evaluations and checkpoints "
       "(per epoch: `epoch_wall_time_s`)"),
    _m("epochs_trained", "count", "epochs in the training history (a ticket rewound to θ_i: n − i)"),
    _m("resumed_from_epoch", "epoch", "epochs the last attempt found in its checkpoint (0: trained from the start)"),
    _m("energy_kwh", "kWh", "energy of the run (CPU + GPU + RAM; codecarbon, offline)"),
    _m("cpu_energy_kwh", "kWh", "CPU share of `energy_kwh`"),
    _m("gpu_energy_kwh", "kWh", "GPU share of `energy_kwh` (the GPUs the run was given; on a shared GPU "
       "`gpu_share` of its energy)"),
    _m("gpu_share", "fraction", "the share of its GPUs charged to a run on CUDA (Ray's fractional request; "
       "tag `energy_rule`)"),
    _m("ram_energy_kwh", "kWh", "RAM share of `energy_kwh`"),
    _m("emissions_kg", "kg CO₂eq", "emissions of `energy_kwh` with the grid of `evaluation.country_iso_code`"),
    _m("emissions_duration_s", "s", "time the emissions tracker measured"),
    _m("emissions_overhead_s", "s", "time spent inside codecarbon's start and stop"),
    _m("corruption_acc", "%", "mean accuracy over the generated CIFAR-10-C corruptions and severities", _ROBUSTNESS),
    _m("corruption_acc.<corruption>", "%", "accuracy under one corruption, mean over the severities", _ROBUSTNESS),
    _m("shifted_acc.<set>", "%", "accuracy on a shifted test set: cifar10_c (official files), cifar10_1, cifar10_2",
       _ROBUSTNESS),
    _m("adv_acc.<attack>.eps<k>", "%", "accuracy under a gradient attack (fgsm, pgd) of L∞ budget ε = k/255",
       _ROBUSTNESS),
    _m("cka_vs_dense", "0..1", "linear CKA of penultimate features, ticket vs its dense run (`evaluation.cka_images`)",
       TICKETS),
    _m("delta_acc", "points", "acc(ticket) − acc(dense run of the same seed)", TICKETS),
    _m("winning", "1 or 0", "1 when acc(ticket) + `evaluation.xi` >= acc(dense)", TICKETS),
    *(_m(f"{name}_reduction_pct", "%", f"100 (1 − ticket / dense) of `{key}`", TICKETS)
      for key, name in REDUCTIONS.items()),
    _m("speedup", "×", "dense mean_epoch_train_time_s / ticket mean_epoch_train_time_s: training speed-up "
       "per epoch, measured while the runs trained (equal epochs: 100 (1 − 1 / speedup) = "
       "train_time_reduction_pct)", TICKETS),
    _m("ideal_speedup", "×", "dense macs / ticket macs: the speed-up if time followed MACs", TICKETS),
    _m("delta_corruption_acc", "points", "corruption_acc(ticket) − corruption_acc(dense)", TICKETS),
    _m("delta_corruption_acc.<corruption>", "points", "ticket − dense accuracy under one corruption", TICKETS),
    _m("delta_shifted_acc.<set>", "points", "ticket − dense accuracy on a shifted test set", TICKETS),
    _m("delta_adv_acc.<attack>.eps<k>", "points", "ticket − dense accuracy under an attack", TICKETS),
    _m("latency_b<n>_ms", "ms", "median time of one forward pass of a batch of n (eval mode, float32), "
       "measured after training with the machine to itself", LATENCY),
    _m("train_step_b<n>_ms", "ms", "median time of one SGD step of a batch of n in the engine's precision "
       "(`lottery latency --train-batch n`)", LATENCY),
)

ITERATIVE_METRICS = (
    *(_m(f"round_{key}", unit, f"{meaning} of each round's ticket", ITERATIVE, "round")
      for key, unit, meaning in (("blocks_removed", "count", "blocks removed so far"), ("macs", "MACs", "MACs"),
                                 ("params", "count", "parameters"),
                                 ("macs_fraction", "0..1", "fraction of the dense MACs"),
                                 ("val_acc", "%", "validation accuracy (trained rounds)"),
                                 ("test_acc", "%", "float32 test accuracy, the `acc` of its round run "
                                  "(trained rounds)"))),
    _m("blocks_removed", "count", "blocks the round's ticket lacks (dense network's count minus its own)", ROUND),
    _m("macs_fraction", "0..1", "the round's ticket MACs / dense MACs", ROUND),
    _m("loses", "1 or 0", "1 when the round's validation accuracy is more than `pruning.stop_xi` below dense "
       "(trained rounds)", ROUND),
    _m("macs", "MACs", "MACs of the round's ticket", ROUND),
    _m("params", "count", "parameters of the round's ticket", ROUND),
    _m("acc", "%", "test accuracy of the round's ticket (trained rounds)", ROUND),
    _m("val_acc", "%", "validation accuracy of the round's ticket (trained rounds)", ROUND),
)

TAGS = (
    _t("pipeline", "name", "dense, ticket_init, ticket_rewind, filter_ticket, reinit or iterative"),
    _t("model", "name", "architecture (`model.name`)"),
    _t("dataset", "name", "`data.name`"),
    _t("criterion", "name", "the criterion (`uniform` for the uniform control; `none` on dense runs)"),
    _t("control", "name", "`pruning.control` (`none` on dense runs)"),
    _t("draw", "integer", "random draw index (`pruning.draw`)"),
    _t("reinit_of", "name", "reinit: whose architecture it retrains (empty elsewhere)"),
    _t("p", "count", "blocks to remove (0 on dense runs)"),
    _t("planned_stage_counts", "a/b/c", "`pruning.stage_counts` as asked (empty: the criterion's choice)"),
    _t("rewind_epoch", "epoch", "rewind point i (0 where the pipeline does not rewind)"),
    _t("seed", "integer", "the run's seed"),
    _t("identity", "12 hex digits", "the config hash that names the run everywhere"),
    _t("dense_identity", "12 hex digits", "identity of the dense run this run is compared with"),
    _t("device_kind", "cpu or cuda", "the resolved device"),
    _t("precision", "fp32 or bf16", "the resolved training precision"),
    _t("data_fingerprint", "blake2b-<16 hex>", "digest of the decoded data set"),
    _t("code_version", "text", "git commit of the code (12 hex digits, `-dirty` with local changes), else `unknown`"),
    _t("iterative_mode", "init or rewind", "`pruning.iterative_mode`", f"{ITERATIVE}, {ROUND}"),
    _t("blocks_per_round", "count", "`pruning.blocks_per_round` (k)", ITERATIVE),
    _t("resumed", "true", "the run was reopened after an interrupted attempt"),
    _t("sweep", "name", "the sweep that created the run", f"sweep trials, {PARENT}"),
    _t("in_sweep.<sweep>", "true", "membership of a sweep (a finished run reused by a sweep gets it too)",
       "sweep trials"),
    _t("sweep_parent", "true", "marks a sweep's parent run", PARENT),
    _t("removed_blocks", "comma-separated block names", "the blocks removed (`none` for none); filter tickets: "
       "those of the block ticket that set their size", f"{BLOCK_TICKETS}, {ITERATIVE}, {ROUND}"),
    _t("stage_counts", "a/b/c", "blocks removed per stage, stage 1 first", f"{BLOCK_TICKETS}, {ITERATIVE}"),
    _t("blocks_removed", "count", "blocks the kept ticket (or the round's ticket) lacks", f"{ITERATIVE}, {ROUND}"),
    _t("rounds", "count", "rounds run", ITERATIVE),
    _t("kept_round", "round", "the round whose ticket the run keeps", ITERATIVE),
    _t("stop_reason", "text", "why the rounds stopped (target p, MACs budget, or a losing round)", ITERATIVE),
    _t("round", "round", "the round's number, from 1", ROUND),
    _t("iterative_parent", "run id", "the iterative run the round belongs to", ROUND),
    _t("iterative_identity", "12 hex digits", "identity of that iterative run", ROUND),
    _t("round_removed", "comma-separated block names", "blocks removed in this round (dense names)", ROUND),
    _t("failure", "text", "why the run could not start (a trial given a GPU that CUDA cannot use)"),
    _t("energy_rule", "text", "how a run on a GPU is charged its energy (a share of a shared GPU)"),
    _t("emissions_status", "text", "`measured`, or `unknown: <why>` when codecarbon gave nothing"),
    _t("comparison", "text", "`self` (dense), `ok: dense run <id>` (`(filled in after both finished)` when a "
       "sweep's ticket finished before its dense run), or `missing: ...` (no dense run: no Δ, never 0)"),
    _t("cka", "text", "why `cka_vs_dense` was not measured (the dense run was imported without weights, or "
       "finished after the ticket)", TICKETS),
    _t("corruption_set", "text", "`built`, `reused: <key>` or `uncached: <why>`: whether the run built its corrupted test images or "
       "found them in the node's cache (`LOTTERY_CACHE_DIR`)", _ROBUSTNESS),
    _t("corruption_substitutes", "text", "corruptions generated with a substitute (motion blur, snow)",
       _ROBUSTNESS),
    _t("warning", "text", "a warning of the training loop (e.g. a corrupt checkpoint skipped)"),
    _t("logged_model", "models:/ URI", "the MLflow model of the trained network (`tracking.log_model`)"),
    _t("onnx", "artifact path", "`onnx/<pipeline>.onnx`, or `failed: <why>` (`tracking.export_onnx`)"),
    _t("latency_device", "text", "device (and CPU or GPU model) the latency was measured on", LATENCY),
    _t("latency_threads", "count", "torch threads of the latency measurement", LATENCY),
    _t("latency_torch", "version", "torch version of the latency measurement", LATENCY),
    _t("latency_method", "text", "rounds, repeats, warm-up, precision of the latency measurement", LATENCY),
    _t("latency_measured_at", "UTC time", "when the latency was measured", LATENCY),
    _t("latency_pass", "UTC time-6 hex", "the timing pass that measured the run (`20261207T101500Z-a1b2c3`): "
       "speed-ups are read within one pass", LATENCY),
    _t("latency_network", "12 hex digits", "digest of the rebuilt architecture: runs of identical architectures "
       "share it and one timing", LATENCY),
    _t("latency_rounds", "JSON", "ms per round of each metric the pass timed, in round order: "
       "`{metric: [ms of round 1, round 2, ...]}`", LATENCY),
    _t("verdict", "text", "the report's verdict of the run's configuration over the sweep's seeds, in words "
       "(one seed: no verdict); shown in the UI's view of the sweep", "sweep trials opened by `lottery ui`"),
    _t("imported_from_records", "file name", "the record file the run was recreated from "
       "(`lottery records import`)", "imported runs"),
    _t("mlflow.runName", "text", "the run's name, e.g. `ticket_init resnet32 grasp p=3 seed=0`"),
    _t("mlflow.parentRunId", "run id", "the sweep's parent run (trials) or the iterative run (rounds)",
       f"sweep trials, {ROUND}"),
    _t("mlflow.note.content", "text", "the sweep's description", PARENT),
)

PARAMS = (
    *(_p(name, "as declared", "the config field of the same name (docs/reference/config.md)")
      for name in ("pipeline", "seed", "device", "threads")),
    _p("<section>.<field>", "as declared", "every field of the config's sections, flattened "
       "(docs/reference/config.md); tuples as lists, criterion options as pairs in `pruning.options`"),
    _p("round", "round", "the round's number", ROUND),
    _p("blocks_removed", "count", "blocks removed so far", ROUND),
    _p("removed_this_round", "count", "blocks removed in this round", ROUND),
    _p("blocks_per_round", "count", "k", ROUND),
    _p("trials", "count", "grid points, or the Optuna search's samples", PARENT),
    _p("resources", "JSON", "CPUs and GPUs per trial, as Ray was asked (`auto` sized at launch)", PARENT),
    _p("resources_requested", "JSON or auto", "the sweep file's `resources`", PARENT),
    _p("code_version", "git commit", "the driver's code version, which every trial records", PARENT),
    _p("max_concurrent", "count", "trials at once (0 or None: as many as fit)", PARENT),
    _p("retries", "count", "retries of a failed trial", PARENT),
    _p("storage", "path or URI", "Ray Tune's storage", PARENT),
)

ARTIFACTS = (
    _a("plan.json", "JSON", "every block's score, the removed and kept blocks, the control and the per-stage "
       "counts", f"{BLOCK_TICKETS}, {ITERATIVE}, {ROUND}"),
    _a("filter_plan.json", "JSON", "the filter ticket's target and Torch-Pruning history", "filter_ticket"),
    _a("rounds.json", "JSON", "one row per round beside the one-shot ticket of the same p", ITERATIVE),
    _a("rounds.csv", "CSV", "the same rows as a table", ITERATIVE),
    _a("weights/theta_<i>.pt", "state dict", "θ_i, the weights after i epochs (`training.keep_epochs`)",
       "dense"),
    _a("weights/final.pt", "state dict", "the trained network's weights"),
    _a("cka/penultimate_features.pt", "float32 tensor [n, d]", "penultimate features on the CKA images "
       "(`evaluation.cka_images` > 0): a ticket that finished before its dense run gets `cka_vs_dense` "
       "from both runs' features"),
    _a("plots/block_scores.png", "PNG", "the block scores", "tickets that score blocks"),
    _a("plots/learning_curves.png", "PNG", "test accuracy and training loss per epoch, beside the dense run's"),
    _a("plots/iterative_rounds.png", "PNG", "each round against the one-shot tickets", ITERATIVE),
    _a("onnx/<pipeline>.onnx", "ONNX", "the trained network (`tracking.export_onnx`)"),
    _a("sweep.json", "JSON", "the validated sweep: every trial's config, resources, storage", PARENT),
    _a("report/", "folder", "the sweep's report (tables, plots, report.md)", PARENT),
)

ENTRIES: tuple[Entry, ...] = (*EPOCH_METRICS, *ATTEMPT_METRICS, *FINAL_METRICS, *ITERATIVE_METRICS, *TAGS, *PARAMS, *ARTIFACTS)


def entries(kind: str) -> tuple[Entry, ...]:
    """The entries of one kind (metric, tag, param, artifact)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return tuple(e for e in ENTRIES if e.kind == kind)


def declared(key: str, kind: str) -> Entry | None:
    """The first entry of `kind` that declares `key`, or None."""
    return next((e for e in entries(kind) if e.pattern().match(key)), None)


def metric_step(key: str) -> str | None:
    """What the MLflow step of metric `key` counts: `epoch`, `round` or `attempt` for a history, `0` for a final
    value logged once; None when no entry declares it. ValueError when entries of both kinds declare
    it (the rule of the module docstring)."""
    steps = {e.step for e in entries("metric") if e.pattern().match(key)}
    if len(steps) > 1:
        raise ValueError(f"metric {key!r} is declared both as a history and as a final value: {sorted(steps)}")
    return next(iter(steps), None)


def undeclared(keys, kind: str) -> list[str]:
    """The keys no entry of `kind` declares, sorted; tags under `mlflow.` are MLflow's own."""
    return sorted(k for k in keys
                  if declared(k, kind) is None and not (kind == "tag" and k.startswith(SYSTEM_TAG_PREFIX)))


__all__ = ["ENTRIES", "EPOCH_KEYS", "Entry", "KINDS", "LEGACY_METRICS", "declared", "entries", "epoch_key",
           "epoch_metrics", "metric_step", "undeclared"]
