"""Batched image operations behind the CIFAR-10-C corruptions: numpy and OpenCV, no per-pixel
Python (per-image loops only around OpenCV calls). Images are (N, H, W, C) arrays; floats are in
[0, 1] unless stated.

Each helper reproduces the operation the original recipe calls (`make_cifar_c.py` of Hendrycks &
Dietterich 2019): the same kernel, the same sampling geometry, the same border mode.
"""
import functools
import importlib.util
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter, zoom

FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


class AssetMissing(LookupError):
    """A file a corruption needs (the frost photographs) is not on this machine."""


def floor_uint8(x: np.ndarray) -> np.ndarray:
    """The recipe's float -> uint8 step: `np.uint8(np.clip(x, 0, 1) * 255)` (truncates, does not round)."""
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def gaussian_nearest(x: np.ndarray, sigma: float) -> np.ndarray:
    """skimage's `gaussian(x, sigma, multichannel=True)`: blur H and W only, 'nearest' borders, 4 sigma."""
    return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=4.0)


@functools.cache
def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The recipe's defocus kernel: a normalized disk on a 17x17 grid (float32), antialiased by a
    3x3 Gaussian with OpenCV, as the recipe does."""
    grid = np.arange(-8, 9) if radius <= 8 else np.arange(-radius, radius + 1)
    xs, ys = np.meshgrid(grid, grid)
    disk = ((xs**2 + ys**2) <= radius**2).astype(np.float32)
    disk /= disk.sum()
    kernel = cv2.GaussianBlur(disk, ksize=(3, 3) if radius <= 8 else (5, 5), sigmaX=alias_blur)
    kernel.flags.writeable = False  # cached: shared by every call
    return kernel


def filter2d(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """OpenCV's `filter2D` (correlation, reflect-101 borders) on every image of x (N, H, W, C), as
    the recipe calls it; per image, since OpenCV's own loops beat a batched torch conv here."""
    return np.stack([cv2.filter2D(img, -1, kernel) for img in x]) if len(x) else x.copy()


@functools.cache
def zoom_matrix(size: int, factor: float) -> np.ndarray:
    """The recipe's `clipped_zoom` along one axis as a (size x size) matrix: crop the centre
    ceil(size / factor) pixels, zoom them with scipy's order-1 spline, trim the centre `size`.

    Built by zooming the identity with scipy itself, so the sampling geometry is scipy's exactly.
    """
    crop = int(np.ceil(size / factor))
    top = (size - crop) // 2
    zoomed = zoom(np.eye(crop), (factor, 1), order=1)  # (round(crop * factor), crop)
    trim = (zoomed.shape[0] - size) // 2
    matrix = np.zeros((size, size))
    matrix[:, top:top + crop] = zoomed[trim:trim + size]
    matrix.flags.writeable = False  # cached: shared by every call
    return matrix


def clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """`clipped_zoom` of every image in x (N, H, W, C) or (N, H, W), square images; dtype kept."""
    m = zoom_matrix(x.shape[1], float(factor))
    planes = np.moveaxis(x, (1, 2), (-2, -1)) if x.ndim == 4 else x
    out = (m @ planes.astype(np.float64) @ m.T).astype(x.dtype)  # float64 inside, as scipy's zoom
    return np.moveaxis(out, (-2, -1), (1, 2)) if x.ndim == 4 else out


def motion_blur(x: np.ndarray, radius: float, sigma: float, angles_deg: np.ndarray) -> np.ndarray:
    """ImageMagick's MotionBlurImage (the recipe calls it through Wand), one angle per image.

    Kernel: width 2*ceil(radius)+1, weights exp(-i^2 / 2 sigma^2) normalized; tap i reads the pixel
    at offset (ceil(i sin a - 0.5), ceil(i cos a - 0.5)) (rows, columns); borders repeat the edge
    pixel (ImageMagick's default virtual pixels). x (N, H, W, C) floats in any unit; same out.
    """
    n, h, w = x.shape[:3]
    width = int(2 * np.ceil(radius) + 1)
    taps = np.arange(width)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))[:, None]
    dy = np.ceil(taps[None] * np.sin(a) - 0.5).astype(np.int64)  # (N, width)
    dx = np.ceil(taps[None] * np.cos(a) - 0.5).astype(np.int64)
    pixels = x.reshape(n * h * w, -1)
    first_row = (np.arange(n) * h)[:, None]
    out = np.zeros((n, h, w, pixels.shape[1]))
    for i in range(width):
        rows = np.clip(np.arange(h)[None] + dy[:, i, None], 0, h - 1) + first_row  # (N, H)
        cols = np.clip(np.arange(w)[None] + dx[:, i, None], 0, w - 1)  # (N, W)
        out += weights[i] * pixels[rows[:, :, None] * w + cols[:, None, :]]
    return out.reshape(x.shape)


def plasma_fractal(n: int, size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """n diamond-square height maps (size x size, size a power of two) in [0, 1], as the recipe's
    `plasma_fractal`: the noise added at each level is wibble * U(-wibble, wibble), wibble = 100
    divided by `decay` per level (so its amplitude falls by decay squared)."""
    grid = np.zeros((n, size, size))
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2
        corners = grid[:, 0::step, 0::step]
        squares = corners + np.roll(corners, -1, axis=1)
        squares = squares + np.roll(squares, -1, axis=2)
        grid[:, half::step, half::step] = squares / 4 + wibble * rng.uniform(-wibble, wibble, squares.shape)
        centres, corners = grid[:, half::step, half::step], grid[:, 0::step, 0::step]
        # diamonds on the corner rows: centres above/below, corners left/right (wrapping around)
        rows = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        grid[:, 0::step, half::step] = rows / 4 + wibble * rng.uniform(-wibble, wibble, rows.shape)
        # diamonds on the centre rows: centres left/right, corners above/below
        cols = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        grid[:, half::step, 0::step] = cols / 4 + wibble * rng.uniform(-wibble, wibble, cols.shape)
        step, wibble = half, wibble / decay
    grid -= grid.min(axis=(1, 2), keepdims=True)
    return grid / grid.max(axis=(1, 2), keepdims=True)


_HSV_CASES = np.array([(0, 1, 2), (3, 0, 2), (2, 0, 1), (2, 3, 0), (1, 2, 0), (0, 2, 3)])  # of (v, t, p, q)


def add_brightness(x: np.ndarray, amount: float) -> np.ndarray:
    """RGB -> HSV, V + amount clipped to 1, -> RGB: skimage's `rgb2hsv`/`hsv2rgb` arithmetic (as
    the recipe calls them), step for step, with gathers instead of boolean masks (~5x faster)."""
    v = x.max(-1)
    delta = np.ptp(x, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(delta == 0, 0.0, delta / v)
        h = np.where(x[..., 0] == v, (x[..., 1] - x[..., 2]) / delta, 0.0)
        h = np.where(x[..., 1] == v, 2.0 + (x[..., 2] - x[..., 0]) / delta, h)
        h = np.where(x[..., 2] == v, 4.0 + (x[..., 0] - x[..., 1]) / delta, h)
    h = np.where(delta == 0, 0.0, (h / 6.0) % 1.0)
    v = np.clip(v + amount, 0, 1)
    hi = np.floor(h * 6)
    f = h * 6 - hi
    parts = np.stack([v, v * (1 - (1 - f) * s), v * (1 - s), v * (1 - f * s)], axis=-1)  # v, t, p, q
    return np.take_along_axis(parts, _HSV_CASES[hi.astype(np.uint8) % 6], axis=-1)


def frost_textures() -> list[np.ndarray]:
    """The six frost photographs shipped with `imagecorruptions`, scaled by 0.2 with OpenCV's
    bilinear resize as the CIFAR recipe does; RGB uint8. Raises AssetMissing when they are absent."""
    return list(_frost_textures(_frost_folder()))


def _frost_folder() -> Path:
    spec = importlib.util.find_spec("imagecorruptions")
    folders = list(spec.submodule_search_locations or []) if spec else []
    folder = Path(folders[0]) / "frost" if folders else None
    if folder is None or not all((folder / name).is_file() for name in FROST_FILES):
        where = folder or "the imagecorruptions package (not installed)"
        raise AssetMissing(f"frost needs the six frost photographs {', '.join(FROST_FILES)} of the "
                           f"imagecorruptions package; not found in {where}")
    return folder


@functools.lru_cache(maxsize=1)
def _frost_textures(folder: Path) -> tuple[np.ndarray, ...]:
    textures = []
    for name in FROST_FILES:
        bgr = cv2.imread(str(folder / name))  # the recipe reads with OpenCV (alpha dropped)
        if bgr is None:
            raise AssetMissing(f"frost texture {folder / name} cannot be decoded")
        textures.append(np.ascontiguousarray(cv2.resize(bgr, (0, 0), fx=0.2, fy=0.2)[..., ::-1]))
    return tuple(textures)
