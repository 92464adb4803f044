"""The 15 CIFAR-10-C corruptions (Hendrycks & Dietterich 2019) at 5 severities, with the CIFAR constants.

    corrupt(images_uint8, "fog", severity=3, seed=0) -> uint8 images of the same shape

The constants are those of the authors' `make_cifar_c.py` (smaller than ImageNet-C's), and the
frost textures are the six photographs shipped in the `imagecorruptions` package (read as files:
that package's module needs `pkg_resources`, gone from current setuptools). Two are documented
substitutes, recorded in `SUBSTITUTES`: the original motion blur and snow call ImageMagick (Wand),
which this project does not depend on; we blur along a line with a one-sided Gaussian kernel of
the same radius and sigma instead. Results are deterministic for a seed (same seed → same bytes).
"""
from collections.abc import Callable
from io import BytesIO

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter, map_coordinates
from skimage.color import hsv2rgb, rgb2hsv

from lottery_core.errors import LotteryError, choose

SEVERITIES = (1, 2, 3, 4, 5)
SUBSTITUTES = {
    "motion_blur": "line-kernel motion blur instead of ImageMagick's, same radius and sigma",
    "snow": "snow layer motion-blurred with the same line kernel instead of ImageMagick's",
}

# ---- noise -------------------------------------------------------------------------------


def gaussian_noise(x: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    c = [0.04, 0.06, 0.08, 0.09, 0.10][s - 1]
    return x + rng.normal(size=x.shape, scale=c)


def shot_noise(x, s, rng):
    c = [500, 250, 100, 75, 50][s - 1]
    return rng.poisson(x * c) / c


def impulse_noise(x, s, rng):
    c = [0.01, 0.02, 0.03, 0.05, 0.07][s - 1]
    u = rng.random(x.shape)
    out = x.copy()
    out[u < c / 2] = 0.0          # pepper
    out[(u >= c / 2) & (u < c)] = 1.0   # salt
    return out

# ---- blur --------------------------------------------------------------------------------


def defocus_blur(x, s, rng):
    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][s - 1]
    return _filter(x, _disk(radius, alias))


def glass_blur(x, s, rng):
    sigma, delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][s - 1]
    x = np.uint8(_gaussian(x, sigma) * 255) / 255.0
    n, h, w, _ = x.shape
    for _ in range(iterations):   # local pixel shuffling, as the recipe (vectorized over images)
        for row in range(h - delta, delta, -1):
            for col in range(w - delta, delta, -1):
                d = rng.integers(-delta, delta, size=(n, 2))
                r2, c2 = row + d[:, 1], col + d[:, 0]
                idx = np.arange(n)
                a, b = x[idx, row, col].copy(), x[idx, r2, c2].copy()
                x[idx, row, col], x[idx, r2, c2] = b, a
    return _gaussian(x, sigma)


def motion_blur(x, s, rng):
    radius, sigma = [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)][s - 1]
    return np.stack([_motion_blur(img, radius, sigma, rng.uniform(-45, 45)) for img in x])


def zoom_blur(x, s, rng):
    zooms = [np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
             np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)][s - 1]
    out = np.zeros_like(x)
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    h, w = x.shape[1:3]
    for z in zooms:               # clipped zoom: upscale by z (bicubic-like), keep the centre
        size = (int(np.ceil(h * z)), int(np.ceil(w * z)))
        big = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)
        top, left = (size[0] - h) // 2, (size[1] - w) // 2
        out += big[:, :, top:top + h, left:left + w].permute(0, 2, 3, 1).numpy()
    return (x + out) / (len(zooms) + 1)

# ---- weather -----------------------------------------------------------------------------


def snow(x, s, rng):
    c = [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][s - 1]
    out = []
    for img in x:
        layer = rng.normal(size=img.shape[:2], loc=c[0], scale=c[1])
        layer = _clipped_zoom(layer, c[2])
        layer[layer < c[3]] = 0
        layer = np.clip(layer.squeeze(), 0, 1)
        layer = _motion_blur(layer[..., None], c[4], c[5], rng.uniform(-135, -45))[..., 0]
        layer = (np.round(layer * 255).astype(np.uint8) / 255.0)[..., None][:img.shape[0], :img.shape[1]]
        gray = (img @ np.array([0.299, 0.587, 0.114]))[..., None]
        img = c[6] * img + (1 - c[6]) * np.maximum(img, gray * 1.5 + 0.5)
        out.append(img + layer + np.rot90(layer, k=2))
    return np.stack(out)


def frost(x, s, rng):
    a, b = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][s - 1]
    textures = _frost_textures()
    out = np.empty_like(x)
    h, w = x.shape[1:3]
    for i, img in enumerate(x):
        tex = textures[rng.integers(len(textures))]
        top, left = rng.integers(0, tex.shape[0] - h), rng.integers(0, tex.shape[1] - w)
        out[i] = a * img + b * tex[top:top + h, left:left + w]
    return out


def fog(x, s, rng):
    strength, decay = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][s - 1]
    h, w = x.shape[1:3]
    out = np.empty_like(x)
    for i, img in enumerate(x):
        peak = img.max()
        size = 1 << (max(h, w) - 1).bit_length()
        fractal = _plasma_fractal(size, decay, rng)[:h, :w, None]
        out[i] = (img + strength * fractal) * peak / (peak + strength)
    return out


def brightness(x, s, rng):
    c = [0.05, 0.1, 0.15, 0.2, 0.3][s - 1]
    hsv = rgb2hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return hsv2rgb(hsv)

# ---- digital -----------------------------------------------------------------------------


def contrast(x, s, rng):
    c = [0.75, 0.5, 0.4, 0.3, 0.15][s - 1]
    means = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - means) * c + means


def elastic_transform(x, s, rng):
    size = x.shape[1]
    alpha, sigma, affine = [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                            (0.1, 0.03, 0.03)][s - 1]
    alpha, sigma, affine = size * alpha, size * sigma, size * affine
    out = np.empty_like(x)
    h, w = x.shape[1:3]
    for i, img in enumerate(x):
        # random affine: move three points by up to `affine` pixels
        centre, half = np.array([h, w]) / 2, min(h, w) / 3
        src = np.float32([centre + half, [centre[0] + half, centre[1] - half], centre - half])
        dst = src + rng.uniform(-affine, affine, size=src.shape).astype(np.float32)
        m = _affine_from_points(dst, src)
        dy = gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
        dx = gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
        yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        ys = m[0, 0] * yy + m[0, 1] * xx + m[0, 2] + dy
        xs = m[1, 0] * yy + m[1, 1] * xx + m[1, 2] + dx
        for ch in range(img.shape[2]):
            out[i, ..., ch] = map_coordinates(img[..., ch], [ys, xs], order=1, mode="reflect")
    return out


def pixelate(x, s, rng):
    c = [0.95, 0.9, 0.85, 0.75, 0.65][s - 1]
    h, w = x.shape[1:3]
    out = []
    for img in _to_uint8(x):
        small = Image.fromarray(img).resize((int(w * c), int(h * c)), Image.BOX)
        out.append(np.asarray(small.resize((w, h), Image.BOX)) / 255.0)
    return np.stack(out)


def jpeg_compression(x, s, rng):
    quality = [80, 65, 58, 50, 40][s - 1]
    out = []
    for img in _to_uint8(x):
        buffer = BytesIO()
        Image.fromarray(img).save(buffer, "JPEG", quality=quality)
        out.append(np.asarray(Image.open(buffer)) / 255.0)
    return np.stack(out)


CORRUPTION_FNS: dict[str, Callable] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur, "zoom_blur": zoom_blur,
    "snow": snow, "frost": frost, "fog": fog, "brightness": brightness,
    "contrast": contrast, "elastic_transform": elastic_transform, "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}
CORRUPTIONS = tuple(CORRUPTION_FNS)


def corrupt(images: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """Corrupt uint8 images (N, 3, H, W) with `name` at `severity` (1-5); uint8 out, same device.

    Deterministic: the random draws come from a generator seeded by (seed, name, severity).
    """
    choose("corruption", name, CORRUPTION_FNS)
    check_severity(severity)
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise LotteryError(f"corrupt needs uint8 images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
    rng = np.random.default_rng([seed, CORRUPTIONS.index(name), severity])
    x = images.permute(0, 2, 3, 1).cpu().numpy().astype(np.float64) / 255.0
    y = CORRUPTION_FNS[name](x, severity, rng)
    out = torch.from_numpy(_to_uint8(np.clip(y, 0, 1))).permute(0, 3, 1, 2).contiguous()
    return out.to(images.device)


def check_severity(severity) -> None:
    if severity not in SEVERITIES:
        raise LotteryError(f"severity {severity!r} is outside 1-5")

# ---- helpers -----------------------------------------------------------------------------


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0)


def _filter(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """2-D correlation of every channel of every image with `kernel` (reflect borders), via torch."""
    t = torch.from_numpy(x).permute(0, 3, 1, 2).reshape(-1, 1, *x.shape[1:3])
    k = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float64))[None, None]
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    t = torch.nn.functional.pad(t, (pw, pw, ph, ph), mode="reflect")
    y = torch.nn.functional.conv2d(t, k)
    return y.reshape(x.shape[0], 3, *x.shape[1:3]).permute(0, 2, 3, 1).numpy()


def _affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 affine matrix mapping three (row, col) points `src` onto `dst`."""
    a = np.hstack([src, np.ones((3, 1))])
    return np.linalg.solve(a, dst).T


_TEXTURES: list[np.ndarray] = []


def _frost_textures() -> list[np.ndarray]:
    """The six frost photographs shipped with imagecorruptions, scaled by 0.2 as the CIFAR recipe does."""
    if not _TEXTURES:
        import importlib.util
        from pathlib import Path

        spec = importlib.util.find_spec("imagecorruptions")
        if spec is None or not spec.submodule_search_locations:
            raise LotteryError("frost needs the textures of the imagecorruptions package (pip install imagecorruptions)")
        folder = Path(next(iter(spec.submodule_search_locations))) / "frost"
        for path in sorted(folder.glob("frost*")):
            img = Image.open(path).convert("RGB")
            img = img.resize((max(40, int(img.width * 0.2)), max(40, int(img.height * 0.2))), Image.BICUBIC)
            _TEXTURES.append(np.asarray(img) / 255.0)
    return _TEXTURES


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """A normalized disk kernel of `radius` pixels, softened by a Gaussian of sigma `alias_blur`."""
    half = 8 if radius <= 8 else int(np.ceil(radius)) + 1
    ys, xs = np.mgrid[-half:half + 1, -half:half + 1]
    kernel = ((xs**2 + ys**2) <= radius**2).astype(np.float64)
    kernel /= kernel.sum()
    return gaussian_filter(kernel, alias_blur)


def _motion_blur(img: np.ndarray, radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """Blur (H, W, C) along a line at `angle_deg`: a one-sided Gaussian (sigma) over ~2*radius taps."""
    width = max(1, int(2 * radius + 1))
    weights = np.exp(-np.arange(width) ** 2 / (2 * sigma**2))
    weights /= weights.sum()
    dy, dx = np.sin(np.deg2rad(angle_deg)), np.cos(np.deg2rad(angle_deg))
    out = np.zeros_like(img)
    h, w = img.shape[:2]
    for i, weight in enumerate(weights):
        sy, sx = -int(np.ceil(i * dy - 0.5)), -int(np.ceil(i * dx - 0.5))
        if abs(sy) >= h or abs(sx) >= w:
            break
        ys = np.clip(np.arange(h) - sy, 0, h - 1)
        xs = np.clip(np.arange(w) - sx, 0, w - 1)
        out += weight * img[ys][:, xs]
    return out


def _clipped_zoom(img: np.ndarray, zoom: float) -> np.ndarray:
    """Zoom a 2-D array by `zoom` (bilinear) and keep its centre, same shape."""
    h, w = img.shape
    t = torch.from_numpy(np.ascontiguousarray(img))[None, None]
    size = (int(np.ceil(h * zoom)), int(np.ceil(w * zoom)))
    big = torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
    top, left = (size[0] - h) // 2, (size[1] - w) // 2
    return big[top:top + h, left:left + w]


def _plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """A size x size diamond-square fractal in [0, 1] (size a power of two); roughness `decay`."""
    grid = np.zeros((size, size))
    step, scale = size, 100.0
    while step >= 2:
        half = step // 2
        # squares: centre of every step x step cell = mean of its corners + noise
        corners = grid[0:size:step, 0:size:step]
        mean = (corners + np.roll(corners, -1, 0) + np.roll(corners, -1, 1) + np.roll(np.roll(corners, -1, 0), -1, 1)) / 4
        grid[half:size:step, half:size:step] = mean + rng.uniform(-scale, scale, mean.shape)
        # diamonds: edge midpoints = mean of their four neighbours + noise
        for r0, c0 in ((0, half), (half, 0)):
            up = np.roll(grid, half, 0)[r0:size:step, c0:size:step]
            down = np.roll(grid, -half, 0)[r0:size:step, c0:size:step]
            left = np.roll(grid, half, 1)[r0:size:step, c0:size:step]
            right = np.roll(grid, -half, 1)[r0:size:step, c0:size:step]
            grid[r0:size:step, c0:size:step] = (up + down + left + right) / 4 + rng.uniform(-scale, scale, up.shape)
        step, scale = half, scale / decay
    grid -= grid.min()
    return grid / grid.max()
