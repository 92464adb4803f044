"""Golden results: the identities and metrics of a few tiny runs, pinned before the issue-11 refactor.

A refactor (files split, rules moved to one home) must change no result. These runs cover every
pipeline that trains (dense, a GraSP ticket at initialization, a KL ticket rewound to θ1, a
filter ticket, the reinit control) plus the evaluation stage (a corruption and FGSM), in fp32 on
the CPU so that the values hold on any x86 CPU with the pinned torch. A change that alters one of
these numbers on purpose must say so and re-pin it here.
"""
import pytest
from mlflow.tracking import MlflowClient

from pipelines.config import load_config
from pipelines.context import with_fingerprint
from pipelines.runner import run
from pipelines.tracking import tracking_uri

BASE = {
    "model": {"name": "resnet20"},
    "training": {"epochs": 4, "batch_size": 8, "lr": 0.02, "keep_epochs": [0, 1], "amp": False},
    "pruning": {"criterion": "grasp", "p": 2, "images_per_class": 2},
    "evaluation": {"corruptions": ["gaussian_noise"], "severities": [1], "corruption_images": 8,
                   "attacks": ["fgsm"], "epsilons": [0.03], "attack_images": 8, "cka_images": 8},
    "device": "cpu",
}

# overrides -> (identity, {metric: value, "train_loss": per-epoch history}); accuracies are over 16
# test images; every float is compared to 1e-5 (relative and absolute).
GOLDEN = {
    ('pipeline=dense',): (
        'e58c8aba52ed', {
            'acc': 75.0,
            'loss': 0.3474624752998352,
            'macs': 40550656,
            'params': 269332,
            'memory_bytes': 3338592,
            'filters': 688,
            'corruption_acc': 100.0,
            'adv_acc.fgsm.eps8': 75.0,
            'train_loss': [2.1309523582458496, 1.2319936752319336, 0.1844141185283661, 0.3783669173717499],
        }),
    ('pipeline=ticket_init',): (
        '9c0943f446fe', {
            'acc': 100.0,
            'loss': 0.30215537548065186,
            'macs': 31113472,
            'params': 190676,
            'memory_bytes': 2532448,
            'filters': 528,
            'corruption_acc': 100.0,
            'adv_acc.fgsm.eps8': 75.0,
            'delta_acc': 25.0,
            'macs_reduction_pct': 23.27258034987153,
            'cka_vs_dense': 0.8440675298214138,
            'train_loss': [2.1381916999816895, 1.2896419763565063, 0.4387790560722351, 0.6526932716369629],
        }),
    ('pipeline=ticket_rewind', 'pruning.criterion=kl', 'pruning.rewind_epoch=1'): (
        '353576104f80', {
            'acc': 75.0,
            'loss': 0.39595913887023926,
            'macs': 31113472,
            'params': 176788,
            'memory_bytes': 2673504,
            'filters': 496,
            'corruption_acc': 100.0,
            'adv_acc.fgsm.eps8': 50.0,
            'delta_acc': 0.0,
            'macs_reduction_pct': 23.27258034987153,
            'cka_vs_dense': 0.9776549452408133,
            'train_loss': [1.1239027976989746, 0.5595856308937073, 0.48717936873435974],
        }),
    ('pipeline=filter_ticket',): (
        'ed36b2f5cc90', {
            'acc': 75.0,
            'loss': 0.6626611948013306,
            'macs': 16699648,
            'params': 155540,
            'memory_bytes': 2182240,
            'filters': 528,
            'corruption_acc': 75.0,
            'adv_acc.fgsm.eps8': 75.0,
            'delta_acc': 0.0,
            'macs_reduction_pct': 58.81781049362063,
            'cka_vs_dense': 0.5259924097056822,
            'train_loss': [2.4446229934692383, 1.3809058666229248, 0.7361326217651367, 1.0085691213607788],
        }),
    ('pipeline=reinit',): (
        '4955cd7a1c60', {
            'acc': 75.0,
            'loss': 0.9448224902153015,
            'macs': 31113472,
            'params': 190676,
            'memory_bytes': 2532448,
            'filters': 528,
            'corruption_acc': 100.0,
            'adv_acc.fgsm.eps8': 100.0,
            'delta_acc': 0.0,
            'macs_reduction_pct': 23.27258034987153,
            'cka_vs_dense': 0.9803334424165938,
            'train_loss': [1.9684226512908936, 0.7841304540634155, 0.2316420078277588, 0.5207219123840332],
        }),
}
PINNED = ("acc", "loss", "macs", "params", "memory_bytes", "filters", "corruption_acc",
          "adv_acc.fgsm.eps8", "delta_acc", "macs_reduction_pct", "cka_vs_dense")


def config(tmp, root, overrides):
    source = {**BASE, "data": {"name": "folder", "root": str(root)},
              "tracking": {"results_dir": str(tmp / "runs"), "experiment": "golden"}}
    return with_fingerprint(load_config(source, list(overrides)))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, tiny_folder):
    tmp = tmp_path_factory.mktemp("golden")
    return {overrides: (config(tmp, tiny_folder, overrides), run(config(tmp, tiny_folder, overrides)))
            for overrides in GOLDEN}  # in order: the dense run first, the tickets compare with it


@pytest.mark.parametrize("overrides", list(GOLDEN))
def test_golden_identity_and_metrics(outcomes, overrides):
    cfg, outcome = outcomes[overrides]
    identity, metrics = GOLDEN[overrides]
    measured = {k: outcome.metrics[k] for k in PINNED if k in outcome.metrics}
    history = MlflowClient(tracking_uri(cfg)).get_metric_history(outcome.run_id, "train_loss")
    measured["train_loss"] = [m.value for m in sorted(history, key=lambda m: m.step)]
    print(overrides, cfg.identity(), measured)
    assert cfg.identity() == identity
    assert measured.keys() == metrics.keys()
    for key, value in metrics.items():
        assert measured[key] == pytest.approx(value, rel=1e-5, abs=1e-5), key
