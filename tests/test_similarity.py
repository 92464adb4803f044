import pytest
import torch

from lottery_core import models
from lottery_core.evaluate import evaluate
from lottery_core.similarity import feature_cka, linear_cka, penultimate_features

pytestmark = pytest.mark.numerical   # values oneDNN's kernels compute: CI reruns them under AVX2 and 1 thread


def test_linear_cka_properties():
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))
    assert abs(linear_cka(x, x) - 1) < 1e-12
    assert abs(linear_cka(x, 3 * x @ q) - 1) < 1e-9  # invariant to rotation and scale
    assert linear_cka(x, torch.randn(50, 8, generator=torch.Generator().manual_seed(2))) < 0.5


def test_penultimate_features_of_cifar_resnet():
    model = models.build("resnet20").eval()
    x = torch.rand(3, 3, 32, 32)
    feats, logits = penultimate_features(model, x)
    assert feats.shape == (3, 64) and torch.allclose(logits, model(x))
    assert feature_cka(model, model, [(x, None)]) > 0.999999


def test_evaluate_counts_correct_predictions():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 6, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(6, 3))
    images = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 0]], dtype=torch.uint8).view(4, 3, 1, 1)
    labels = torch.tensor([0, 1, 2, 2])
    metrics = evaluate(model, images, labels, mean=(0, 0, 0), std=(1, 1, 1))
    assert metrics["acc"] == 75.0 and metrics["top5"] == 100.0
