"""Model registry. `build(name, num_classes=10, **options)`; `names()` lists what is registered.

Adding an architecture: write one file with a builder `f(num_classes, **options) -> nn.Module`
and add one `register(...)` line below.
"""
from lottery_core.models.cifar_resnet import INITS, SHORTCUTS, BasicBlock, CifarResNet, cifar_resnet
from lottery_core.models.registry import build, names, options, register
from lottery_core.models.torchvision_nets import torchvision_model

for _depth in (20, 32, 44, 56, 110):
    register(f"resnet{_depth}", cifar_resnet(_depth))
for _name in ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "vgg11_bn"):
    register(_name, torchvision_model(_name))

__all__ = ["build", "names", "options", "register", "BasicBlock", "CifarResNet", "INITS", "SHORTCUTS"]
