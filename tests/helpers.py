"""Helpers shared by the tests (not fixtures): silence a block, give BatchNorm non-trivial statistics."""
import torch

from lottery_core import surgery


def silence(model, name):
    """Zero the last BN (γ and β) of block `name`: its residual branch then outputs 0."""
    bn = surgery.last_bn(model, name)
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()


def randomize_bn_stats(model):
    """Seeded, non-trivial running statistics, so that eval-mode BatchNorm is not the identity."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
