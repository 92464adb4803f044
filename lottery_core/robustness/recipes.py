"""The 15 CIFAR-10-C corruption recipes (Hendrycks & Dietterich 2019) at 5 severities, CIFAR constants.

Each corruption is one function `f(x_uint8 (N, 32, 32, 3), severity, rng) -> uint8` plus one line
in `CORRUPTION_FNS`. Constants and steps follow the authors' `make_cifar_c.py` (smaller than
ImageNet-C's), including its quirks: floats become uint8 by truncation, frost draws from the first
five textures only, and glass blur's pixel "swap" copies one pixel onto the other (numpy views).
Checked against a per-image transcription of the recipe run with the same libraries: the six
corruptions without random draws (defocus, zoom, brightness, contrast, pixelate, JPEG) give its
bytes, and so do the others when fed the same draws. Draws come from numpy's Generator in
batches, so they are not the official files' draws, but their distribution is. Two corruptions do
not run the original tool, recorded in `SUBSTITUTES`: motion blur and snow call ImageMagick (Wand)
in the recipe; here ImageMagick's motion-blur kernel is reimplemented (same width, weights,
offsets and edge pixels), not checked byte-for-byte against ImageMagick, which this machine lacks.
Frost needs the photographs shipped with `imagecorruptions`; without them it raises
`CorruptionUnavailable`.
"""
from collections.abc import Callable
from io import BytesIO

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, map_coordinates

from lottery_core.errors import LotteryError
from lottery_core.robustness import image_ops as ops

SEVERITIES = (1, 2, 3, 4, 5)
SIZE = 32  # the recipe is written for 32x32 images
SUBSTITUTES = {
    "motion_blur": "ImageMagick's motion-blur kernel reimplemented in numpy (no Wand); same width, "
                   "weights and offsets, not byte-checked against ImageMagick",
    "snow": "snow layer streaked with the same reimplemented ImageMagick motion blur (no Wand)",
}


class CorruptionUnavailable(LotteryError):
    """A corruption cannot run on this machine (a missing asset); the message says why."""


# ---- noise ---------------------------------------------------------------------------------------


def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    c = [0.04, 0.06, 0.08, 0.09, 0.10][severity - 1]
    return ops.floor_uint8(x / 255.0 + rng.normal(size=x.shape, scale=c))


def shot_noise(x, severity, rng):
    c = [500, 250, 100, 75, 50][severity - 1]
    return ops.floor_uint8(rng.poisson(x / 255.0 * c) / c)


def impulse_noise(x, severity, rng):
    """Salt and pepper on a fraction c of the values, half each (skimage's 's&p', per channel)."""
    c = [0.01, 0.02, 0.03, 0.05, 0.07][severity - 1]
    out = x / 255.0
    flipped = rng.random(x.shape) < c
    salt = rng.random(x.shape) < 0.5
    out[flipped & salt] = 1.0
    out[flipped & ~salt] = 0.0
    return ops.floor_uint8(out)

# ---- blur ----------------------------------------------------------------------------------------


def defocus_blur(x, severity, rng):
    radius, alias_blur = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    return ops.floor_uint8(ops.filter2d(x / 255.0, ops.disk_kernel(radius, alias_blur)))


def glass_blur(x, severity, rng):
    """Blur, shuffle pixels locally, blur again. In the recipe each visited pixel (bottom-right to
    top-left) takes the value of a neighbour at offset (dy, dx) in {-1, 0}^2; those neighbours are
    visited later, so one pass is a single gather of the values before the pass (done here)."""
    sigma, delta, passes = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][severity - 1]
    assert delta == 1, "the one-gather pass holds for max_delta = 1 (all CIFAR severities)"
    y = ops.floor_uint8(ops.gaussian_nearest(x / 255.0, sigma))
    n, h, w = y.shape[:3]
    visited = np.arange(delta + 1, h - delta + 1)  # rows/columns 2..31, as range(32 - 1, 1, -1)
    images = np.arange(n)[:, None, None]
    for _ in range(passes):
        d = rng.integers(-delta, delta, size=(n, len(visited), len(visited), 2))  # (dx, dy)
        rows = visited[None, :, None] + d[..., 1]
        cols = visited[None, None, :] + d[..., 0]
        y[:, visited[0]:visited[-1] + 1, visited[0]:visited[-1] + 1] = y[images, rows, cols]
    return ops.floor_uint8(ops.gaussian_nearest(y / 255.0, sigma))


def motion_blur(x, severity, rng):
    radius, sigma = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    angles = rng.uniform(-45, 45, size=len(x))
    blurred = ops.motion_blur(x.astype(np.float64), radius, sigma, angles)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)  # ImageMagick writes 8-bit PNG


def zoom_blur(x, severity, rng):
    factors = [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
               np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)][severity - 1]
    x = (x / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for factor in factors:
        out += ops.clipped_zoom(x, factor)
    return ops.floor_uint8((x + out) / (len(factors) + 1))

# ---- weather -------------------------------------------------------------------------------------


def snow(x, severity, rng):
    loc, scale, zoom, threshold, radius, sigma, keep = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][severity - 1]
    x = (x / 255.0).astype(np.float32)
    layer = ops.clipped_zoom(rng.normal(size=x.shape[:3], loc=loc, scale=scale), zoom)
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8)  # an 8-bit grey image, as the recipe
    angles = rng.uniform(-135, -45, size=len(x))
    layer = np.rint(ops.motion_blur(layer[..., None].astype(np.float64), radius, sigma, angles))
    layer = np.clip(layer, 0, 255) / 255.0
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # OpenCV's RGB2GRAY weights
    x = keep * x + (1 - keep) * np.maximum(x, grey[..., None] * 1.5 + 0.5)
    return ops.floor_uint8(x + layer + np.rot90(layer, k=2, axes=(1, 2)))


def frost(x, severity, rng):
    a, b = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][severity - 1]
    try:
        textures = ops.frost_textures()
    except ops.AssetMissing as err:
        raise CorruptionUnavailable(str(err)) from None
    n, h, w = x.shape[:3]
    crops = np.empty_like(x)
    for i, which in enumerate(rng.integers(5, size=n)):  # the recipe draws randint(5): frost1-5
        texture = textures[which]
        top, left = rng.integers(0, texture.shape[0] - h), rng.integers(0, texture.shape[1] - w)
        crops[i] = texture[top:top + h, left:left + w]
    return np.clip(a * x + b * crops.astype(np.float64), 0, 255).astype(np.uint8)


def fog(x, severity, rng):
    strength, decay = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    x = x / 255.0
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    x = x + strength * ops.plasma_fractal(len(x), SIZE, decay, rng)[..., None]
    return ops.floor_uint8(x * peak / (peak + strength))


def brightness(x, severity, rng):
    c = [0.05, 0.1, 0.15, 0.2, 0.3][severity - 1]
    return ops.floor_uint8(ops.add_brightness(x / 255.0, c))

# ---- digital -------------------------------------------------------------------------------------


def contrast(x, severity, rng):
    c = [0.75, 0.5, 0.4, 0.3, 0.15][severity - 1]
    x = x / 255.0
    means = x.mean(axis=(1, 2), keepdims=True)  # per image and channel
    return ops.floor_uint8((x - means) * c + means)


def elastic_transform(x, severity, rng):
    """A random affine (three points moved by up to `shift` pixels; OpenCV, reflect-101 borders),
    then a smooth random displacement field (Gaussian-blurred uniform noise, scaled by `alpha`)."""
    alpha, sigma, shift = (SIZE * c for c in [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06),
                                              (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)][severity - 1])
    x = (x / 255.0).astype(np.float32)
    n, h, w, c = x.shape
    centre, half = np.float32([w, h]) // 2, min(h, w) // 3
    points = np.float32([centre + half, [centre[0] + half, centre[1] - half], centre - half])  # (x, y)
    moved = points + rng.uniform(-shift, shift, size=(n, 3, 2)).astype(np.float32)
    warped = np.stack([_warp_affine(img, points, dst) for img, dst in zip(x, moved, strict=True)])
    fields = gaussian_filter(rng.uniform(-1, 1, size=(n, 2, h, w)), sigma=(0, 0, sigma, sigma),
                             mode="reflect", truncate=3) * alpha
    dx, dy = fields[:, 0].astype(np.float32), fields[:, 1].astype(np.float32)
    index, rows, cols, chans = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    coords = [index, rows + dy[..., None], cols + dx[..., None], chans]
    return ops.floor_uint8(map_coordinates(warped, coords, order=1, mode="reflect"))


def _warp_affine(img: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """OpenCV's affine warp taking the points `src` to `dst` (bilinear, reflect-101), as the recipe."""
    m = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REFLECT_101)


def pixelate(x, severity, rng):
    c = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    small = (int(SIZE * c), int(SIZE * c))
    return np.stack([np.asarray(Image.fromarray(img).resize(small, Image.BOX).resize((SIZE, SIZE), Image.BOX))
                     for img in x])


def jpeg_compression(x, severity, rng):
    quality = [80, 65, 58, 50, 40][severity - 1]
    out = np.empty_like(x)
    for i, img in enumerate(x):
        buffer = BytesIO()
        Image.fromarray(img).save(buffer, "JPEG", quality=quality)
        out[i] = np.asarray(Image.open(buffer))
    return out


CORRUPTION_FNS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur,
    "zoom_blur": zoom_blur, "snow": snow, "frost": frost, "fog": fog, "brightness": brightness,
    "contrast": contrast, "elastic_transform": elastic_transform, "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}
CORRUPTIONS = tuple(CORRUPTION_FNS)
