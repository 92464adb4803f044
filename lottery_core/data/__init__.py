"""Data held in memory: decoded once into a uint8 tensor cache, batched and augmented on the device.

    data = load_data("cifar10", "/path/to/cifar10", train_size=5000, val_size=500, seed=0)
    for x, y in train_batches(data, 128, seed=0, epoch=3):     # seeded per (seed, epoch)
        ...
    for x, y in eval_batches(data.test_images, data.test_labels, data.mean, data.std, 500):
        ...
"""
from lottery_core.data.batches import (
    PAD,
    crop_flip,
    epoch_generator,
    eval_batches,
    normalize_constants,
    num_batches,
    to_float,
    train_batches,
)
from lottery_core.data.dataset import DATASETS, ImageData, balanced_subsets, load_data
from lottery_core.data.folder import (
    IMAGE_EXTENSIONS,
    channel_stats,
    decode,
    default_cache_dir,
    load_folder,
)

__all__ = [
    "DATASETS", "IMAGE_EXTENSIONS", "PAD", "ImageData", "balanced_subsets", "channel_stats", "crop_flip",
    "decode", "default_cache_dir", "epoch_generator", "eval_batches", "load_data", "load_folder",
    "normalize_constants", "num_batches", "to_float", "train_batches",
]
