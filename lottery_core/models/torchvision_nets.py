"""ImageNet-style residual networks from torchvision, untouched (names like `layer2.3`, `features.4`)."""
import torch.nn as nn
import torchvision.models as tvm

from lottery_core.models.registry import register_model


def torchvision_model(name: str):
    """A builder for a torchvision architecture with random weights (no download), registered below."""
    factory = getattr(tvm, name)

    def build(num_classes: int = 10, **options) -> nn.Module:
        return factory(weights=None, num_classes=num_classes, **options)

    build.__doc__ = f"torchvision {name} with random weights."
    return build


for _name in ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "vgg11_bn"):
    register_model(_name)(torchvision_model(_name))
