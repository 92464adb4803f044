"""Golden results: the identities and metrics of a few tiny runs, the same on every x86-64 CPU.

A refactor (files split, rules moved to one home) must change no result. These runs cover every
pipeline that trains (dense, a GraSP ticket at initialization, a KL ticket rewound to θ1, a
filter ticket, the reinit control) plus the evaluation stage (a corruption and FGSM), in fp32 on
the CPU. A change that alters one of these numbers on purpose must say so and re-pin it here
(`python -m tests.test_golden_results` prints the measured values).

Why a child process in reference mode. In the default mode the trained values depend on the
machine: oneDNN picks its convolution kernels, and with them the order of summation, by the
processor's instruction set and the thread count, and four epochs of training amplify the
difference (the dense run's final loss was 0.34746 on one AMD EPYC, 0.34063 on another, 0.33766
with ONEDNN_MAX_CPU_ISA=AVX2; its accuracy moved from 75 % to 93.75 % with one thread). So the
runs train in a fresh interpreter whose every kernel is the processor-independent one
(`REFERENCE_ENV`): oneDNN off (`torch.backends.mkldnn.enabled = False`: convolutions go to ATen's
im2col + GEMM), ATen's vectorised kernels at their baseline build (`ATEN_CPU_CAPABILITY=default`,
not AVX2 or AVX-512 code paths with other lane widths), MKL's GEMM on its conditional numerical
reproducibility path (`MKL_CBWR=COMPATIBLE`, the same results on all Intel and compatible
processors) and one thread (a reduction split over threads sums in another order). Then every
float is compared to 1e-6. Checked here: the values are bit-identical whether the parent runs with
two threads, `OMP_NUM_THREADS=1`, `ONEDNN_MAX_CPU_ISA=AVX2` or `MKL_ENABLE_INSTRUCTIONS=AVX2`
(`python -m benchmarks.golden_spread`).
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.numerical]

REPO = Path(__file__).resolve().parents[1]
REFERENCE_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1",
                 "MKL_NUM_THREADS": "1"}

BASE = {
    "model": {"name": "resnet20"},
    "training": {"epochs": 4, "batch_size": 8, "lr": 0.02, "keep_epochs": [0, 1], "amp": False},
    "pruning": {"criterion": "grasp", "p": 2, "images_per_class": 2},
    "evaluation": {"corruptions": ["gaussian_noise"], "severities": [1], "corruption_images": 8,
                   "attacks": ["fgsm"], "epsilons": [0.03], "attack_images": 8, "cka_images": 8},
    "device": "cpu",
    "threads": 1,
}

# overrides -> (identity, removed blocks, {metric: value, "train_loss": per-epoch history}), measured in
# reference mode; accuracies are over 16 test images; every float is compared to 1e-6.
GOLDEN = {
    ('pipeline=dense',): (
        'e58c8aba52ed', '-', {
            'acc': 75.0,
            'loss': 0.32897013425827026,
            'macs': 40550656,
            'params': 269332,
            'memory_bytes': 3338592,
            'filters': 688,
            'corruption_acc': 100.0,
            'adv_acc.fgsm.eps8': 75.0,
            'train_loss': [2.126772880554199, 1.221953272819519, 0.18774864077568054, 0.414792537689209],
        }),
    ('pipeline=ticket_init',): (
        '9c0943f446fe', 'layer1.1,layer3.2', {
            'acc': 100.0,
            'loss': 0.30855822563171387,
            'macs': 31113472,
            'params': 190676,
            'memory_bytes': 2532448,
            'filters': 528,
            'corruption_acc': 100.0,
            'adv_acc.fgsm.eps8': 75.0,
            'delta_acc': 25.0,
            'macs_reduction_pct': 23.27258034987153,
            'cka_vs_dense': 0.8258198586407903,
            'train_loss': [2.137639045715332, 1.2855905294418335, 0.44140300154685974, 0.6552717685699463],
        }),
    ('pipeline=ticket_rewind', 'pruning.criterion=kl', 'pruning.rewind_epoch=1'): (
        '353576104f80', 'layer3.1,layer2.1', {
            'acc': 75.0,
            'loss': 0.3943322002887726,
            'macs': 31113472,
            'params': 176788,
            'memory_bytes': 2673504,
            'filters': 496,
            'corruption_acc': 100.0,
            'adv_acc.fgsm.eps8': 50.0,
            'delta_acc': 0.0,
            'macs_reduction_pct': 23.27258034987153,
            'cka_vs_dense': 0.9888250858926494,
            'train_loss': [1.1205893754959106, 0.575559675693512, 0.49525994062423706],
        }),
    ('pipeline=filter_ticket',): (
        'ed36b2f5cc90', 'layer1.1,layer3.2', {
            'acc': 75.0,
            'loss': 0.3565758764743805,
            'macs': 16699648,
            'params': 155540,
            'memory_bytes': 2182240,
            'filters': 528,
            'corruption_acc': 75.0,
            'adv_acc.fgsm.eps8': 75.0,
            'delta_acc': 0.0,
            'macs_reduction_pct': 58.81781049362063,
            'cka_vs_dense': 0.5143036681820644,
            'train_loss': [2.4431891441345215, 1.3089532852172852, 0.636583685874939, 1.0523090362548828],
        }),
    ('pipeline=reinit',): (
        '4955cd7a1c60', 'layer1.1,layer3.2', {
            'acc': 75.0,
            'loss': 0.839603066444397,
            'macs': 31113472,
            'params': 190676,
            'memory_bytes': 2532448,
            'filters': 528,
            'corruption_acc': 100.0,
            'adv_acc.fgsm.eps8': 100.0,
            'delta_acc': 0.0,
            'macs_reduction_pct': 23.27258034987153,
            'cka_vs_dense': 0.9504381913294626,
            'train_loss': [1.9657806158065796, 0.7854855060577393, 0.24935296177864075, 0.5170523524284363],
        }),
}
PINNED = ("acc", "loss", "macs", "params", "memory_bytes", "filters", "corruption_acc",
          "adv_acc.fgsm.eps8", "delta_acc", "macs_reduction_pct", "cka_vs_dense")
CASES = tuple(GOLDEN)   # in order: the dense run first, the tickets compare with it


def config(tmp, root, overrides):
    from pipelines.config import load_config
    from pipelines.context import with_fingerprint

    source = {**BASE, "data": {"name": "folder", "root": str(root)},
              "tracking": {"results_dir": str(tmp / "runs"), "experiment": "golden"}}
    return with_fingerprint(load_config(source, list(overrides)))


def measure_cases(tmp, root, cases=CASES) -> dict:
    """Run each case in this process; {case: {"identity", "removed_blocks", every pinned metric,
    "train_loss": history}}."""
    from mlflow.tracking import MlflowClient

    from pipelines.runner import run
    from pipelines.tracking import tracking_uri

    measured = {}
    for overrides in cases:
        cfg = config(tmp, root, overrides)
        outcome = run(cfg)
        client = MlflowClient(tracking_uri(cfg))
        history = client.get_metric_history(outcome.run_id, "train_loss")
        measured[overrides] = {
            "identity": cfg.identity(),
            "removed_blocks": client.get_run(outcome.run_id).data.tags.get("removed_blocks", "-"),
            **{k: outcome.metrics[k] for k in PINNED if k in outcome.metrics},
            "train_loss": [m.value for m in sorted(history, key=lambda m: m.step)]}
    return measured


def measure_in_reference_mode(extra_env: dict | None = None) -> dict:
    """The cases run by `python -m tests.test_golden_results` in a fresh interpreter with
    REFERENCE_ENV (and `extra_env`): {"override override": measured values}."""
    env = {**os.environ, **(extra_env or {}), **REFERENCE_ENV}
    child = subprocess.run([sys.executable, "-m", "tests.test_golden_results"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=1200)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    """The child: oneDNN off, one thread, the cases on the tiny data set; one JSON line on stdout."""
    import torch

    from tests.conftest import write_image_folder

    missing = {k: v for k, v in REFERENCE_ENV.items() if os.environ.get(k) != v}
    if missing:
        raise SystemExit(f"run with {missing} in the environment (read when torch loads)")
    torch.backends.mkldnn.enabled = False
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_image_folder(Path(tmp) / "data")
        measured = measure_cases(Path(tmp), root)
    print(json.dumps({" ".join(case): values for case, values in measured.items()}))


@pytest.fixture(scope="module")
def outcomes():
    return measure_in_reference_mode()


@pytest.mark.parametrize("overrides", CASES)
def test_golden_identity_and_metrics(outcomes, overrides):
    measured = outcomes[" ".join(overrides)]
    identity, removed, metrics = GOLDEN[overrides]
    print(overrides, measured)
    assert measured["identity"] == identity
    assert measured["removed_blocks"] == removed
    assert measured.keys() - {"identity", "removed_blocks"} == metrics.keys()
    for key, value in metrics.items():
        assert measured[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key


if __name__ == "__main__":
    main()
