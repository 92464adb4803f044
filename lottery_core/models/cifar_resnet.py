"""CIFAR ResNets of depth 6n+2 (He et al. 2016, section 4.2): widths 16/32/64, three stages.

Module names follow torchvision (`conv1`, `bn1`, `layer1.0.conv1`, ..., `fc`), so that a block
is named `layer2.3` and state-dict keys map by name after surgery.

Shortcut variants for the two stride-2 blocks (`shortcut=`):
  "A"    zero-padding identity, no parameters (the default; He et al. option A)
  "B"    1x1 conv + BatchNorm (He et al. option B)
  "conv" 1x1 conv without BatchNorm (the paper authors' own code)

Initialisation (`init=`):
  "kaiming" every conv and linear weight from kaiming_normal_ (fan_in, gain sqrt 2; He et al.
            2015, the ResNet papers' init; the default)
  "torch"   torch's module defaults (kaiming_uniform_ with a = sqrt 5: weights ~2.4x smaller),
            which trains better at short budgets here (benchmarks/recipe.md)
BatchNorm starts at gamma = 1, beta = 0 in both.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from lottery_core.errors import choose
from lottery_core.models.registry import register_model

SHORTCUTS = ("A", "B", "conv")
INITS = ("kaiming", "torch")


class PadShortcut(nn.Module):
    """Option A: subsample by 2 and zero-pad the new channels. No parameters."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::2, ::2]
        pad = self.out_channels - x.shape[1]
        return F.pad(x, (0, 0, 0, 0, pad // 2, pad - pad // 2))


class BasicBlock(nn.Module):
    """y = relu(x + bn2(conv2(relu(bn1(conv1(x)))))); `downsample` is None on identity blocks."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            if shortcut == "A":
                self.downsample = PadShortcut(out_channels)
            elif shortcut == "B":
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )
            else:
                self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class CifarResNet(nn.Module):
    """Stem conv 3x3/16, three stages of BasicBlocks (16, 32, 64 channels), global pool, fc."""

    def __init__(self, blocks_per_stage: int | list[int], num_classes: int = 10, shortcut: str = "A",
                 widths: tuple[int, int, int] = (16, 32, 64), init: str = "kaiming"):
        super().__init__()
        choose("shortcut", shortcut, SHORTCUTS)
        choose("init", init, INITS)
        if isinstance(blocks_per_stage, int):
            blocks_per_stage = [blocks_per_stage] * 3
        self.shortcut = shortcut
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_channels = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks_per_stage, strict=True), start=1):
            stride = 1 if stage == 1 else 2
            blocks = []
            for i in range(count):
                blocks.append(BasicBlock(in_channels, width, stride if i == 0 else 1, shortcut))
                in_channels = width
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        if init == "kaiming":
            for m in self.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    nn.init.kaiming_normal_(m.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (after global pooling), shape (N, 64)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def cifar_resnet(depth: int):
    """A builder for depth 6n+2 (`register_model`ed below for 20, 32, 44, 56 and 110)."""
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")

    def build(num_classes: int = 10, shortcut: str = "A", init: str = "kaiming") -> CifarResNet:
        return CifarResNet((depth - 2) // 6, num_classes=num_classes, shortcut=shortcut, init=init)

    build.__doc__ = f"ResNet{depth} for 32x32 images; shortcut in {SHORTCUTS}; init in {INITS}."
    return build


for _depth in (20, 32, 44, 56, 110):
    register_model(f"resnet{_depth}")(cifar_resnet(_depth))
