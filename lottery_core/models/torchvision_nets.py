"""ImageNet-style residual networks from torchvision, untouched (names like `layer2.3`, `features.4`)."""
import torch.nn as nn

from lottery_core.models.registry import register_model


def torchvision_model(name: str):
    """A builder for a torchvision architecture with random weights (no download), registered below.
    torchvision is imported when one is built (checking a CIFAR ResNet's config does not load it)."""

    def build(num_classes: int = 10, **options) -> nn.Module:
        import torchvision.models as tvm

        return getattr(tvm, name)(weights=None, num_classes=num_classes, **options)

    build.__doc__ = f"torchvision {name} with random weights."
    return build


for _name in ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "vgg11_bn"):
    register_model(_name)(torchvision_model(_name))
