"""Vision transformers for 32x32 images: torchvision's `VisionTransformer` with small patches.

`vit_tiny`: patch 4 (an 8x8 grid of patches, 64 tokens plus the class token = 65), 6 encoder
layers, hidden dimension 96, 3 heads of 32, MLP 192, no dropout; 460,906 parameters and 33.9 M
MACs per image (`accounting.count_macs`, attention included), the compute of a CIFAR ResNet20.

Two changes to torchvision's network, both in `build_vit`:
- Encoder layers are numbered (`encoder.layers.3`, like `layer2.3`), not named
  (`encoder.layers.encoder_layer_3`): surgery maps weights by index after a layer is removed.
  torchvision's pretrained state dicts therefore do not load; these models train from scratch.
- The classifier head gets torch's default Linear init instead of zeros. torchvision zero-inits
  it for fine-tuning; at zero the logits are constant and no gradient reaches the encoder, so at
  θ_0 every gradient or output criterion (SNIP, GraSP, KL) would score every layer exactly 0.
"""
from __future__ import annotations  # annotations name torchvision's class without importing it

from typing import TYPE_CHECKING

import torch.nn as nn

from lottery_core.models.registry import register_model

if TYPE_CHECKING:
    from torchvision.models.vision_transformer import VisionTransformer

# name: (patch size, encoder layers, heads, hidden dimension, MLP dimension)
VIT_SIZES = {"vit_tiny": (4, 6, 3, 96, 192)}


def build_vit(patch_size: int, num_layers: int, num_heads: int, hidden_dim: int, mlp_dim: int,
              num_classes: int = 10, image_size: int = 32) -> VisionTransformer:
    """A torchvision ViT for `image_size`² images with numbered encoder layers and a live head
    (torchvision is imported here, when one is built)."""
    from torchvision.models.vision_transformer import VisionTransformer

    model = VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=num_layers,
                              num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=mlp_dim, num_classes=num_classes)
    model.encoder.layers = nn.Sequential(*model.encoder.layers)
    model.heads.head.reset_parameters()
    return model


def vit(name: str):
    """A builder for `VIT_SIZES[name]` (every size is registered below)."""
    patch, layers, heads, hidden, mlp = VIT_SIZES[name]

    def build(num_classes: int = 10) -> VisionTransformer:
        return build_vit(patch, layers, heads, hidden, mlp, num_classes=num_classes)

    build.__doc__ = (f"{name}: ViT for 32x32 images, patch {patch}, {layers} encoder layers, hidden {hidden}, "
                     f"{heads} heads, MLP {mlp}.")
    return build


for _name in VIT_SIZES:
    register_model(_name)(vit(_name))
