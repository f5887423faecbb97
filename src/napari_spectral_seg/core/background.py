"""Which side is the object, and how bright is the background where it is.

Two things a threshold assumes and images often break:

* **Polarity.** Fluorescent objects are brighter than their background;
  brightfield, H&E and phase-contrast objects are darker. ``polarity="auto"``
  calls the objects dark only where the histogram makes it clear: once the
  slow variation across the field (its median in coarse blocks) is taken
  out, the bright class of Otsu's split holds most of the image *and* most of
  its border (objects are the minority and rarely frame the field). Dark
  objects are segmented on the inverted image.
* **Uneven background.** Under an illumination gradient one global threshold
  loses the dim objects on the dark side. ``background="auto"`` estimates the
  background as a smooth surface, the low end of the intensities in blocks a
  few objects wide, and subtracts it where it varies by more than a fifth of
  the object-to-background contrast; a flat background is left alone.

What was decided is recorded (``polarity_used``, ``background_used``,
``background_range``). The shares and block sizes are fields of
:class:`~.auto.config.AutoConfig` (``config=``; default ``AutoConfig()``).
numpy and scipy only.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from .auto.config import AutoConfig, resolve_config
from .mask import otsu_threshold

__all__ = [
    "background_block",
    "choose_polarity",
    "chooses_polarity",
    "correct_intensity",
    "estimate_background",
    "estimates_background",
    "surface_at",
]


def _border(image: np.ndarray) -> np.ndarray:
    faces = [np.take(image, index, axis=axis).ravel() for axis in range(image.ndim) for index in (0, -1)]
    return np.concatenate(faces)


def chooses_polarity(params) -> bool:
    """Whether :func:`correct_intensity` chooses the polarity from the image (``polarity="auto"``)."""
    return params.polarity == "auto"


def estimates_background(params, thresholded: bool, colour: bool) -> bool:
    """Whether :func:`correct_intensity` estimates the uneven background (it may then find it flat).

    Only with ``background="auto"``, where a threshold makes the mask (the
    background matters only then) and on one channel.
    """
    return params.background == "auto" and thresholded and not colour


def choose_polarity(intensity: np.ndarray, config: AutoConfig | None = None) -> str:
    """``"dark"`` where the histogram and the border clearly say the objects are darker, else ``"bright"``.

    Parameters
    ----------
    intensity : ndarray of float, shape S
        The image (channel mean for colour images).
    config : AutoConfig, optional
        ``polarity_blocks``, ``dark_share_of_image``, ``dark_share_of_border``.

    Returns
    -------
    {"bright", "dark"}
    """
    # Against the field's slow variation, so an illumination gradient is not taken for the classes.
    config = resolve_config(config)
    blocks = np.maximum(np.asarray(intensity.shape) // config.polarity_blocks, 1)
    residual = _block_surface(intensity, blocks, 50.0, residual=True)
    level = otsu_threshold(residual)
    bright = residual > level
    if not bright.any() or bright.all():
        return "bright"
    share = float(bright.mean())
    border_share = float((_border(residual) > level).mean())
    dark = share > config.dark_share_of_image and border_share > config.dark_share_of_border
    return "dark" if dark else "bright"


def estimate_background(
    intensity: np.ndarray, radius: float, unit: np.ndarray, config: AutoConfig | None = None
) -> np.ndarray:
    """A smooth background surface: a low percentile per block, interpolated back to full size.

    Parameters
    ----------
    intensity : ndarray of float, shape S
    radius : float
        Typical object radius, in pixels of the finest axis.
    unit : ndarray
        Pixel size per axis relative to the finest axis.
    config : AutoConfig, optional
        ``background_block_diameters``, ``background_percentile``.

    Returns
    -------
    ndarray of float, shape S
    """
    config = resolve_config(config)
    block = background_block(intensity.shape, radius, unit, config)
    return _block_surface(intensity, block, config.background_percentile)


def background_block(shape, radius: float, unit, config: AutoConfig | None = None) -> np.ndarray:
    """Pixels per background block and axis, for an image of ``shape`` with objects of ``radius``."""
    config = resolve_config(config)
    block = np.maximum(np.round(config.background_block_diameters * 2.0 * radius / unit), 4).astype(int)
    # At least four blocks along every long axis: a background that varies
    # within the field needs several samples (and a gradient inflates the radius).
    return np.minimum(block, np.maximum(np.asarray(shape) // 4, 1))


def _block_surface(intensity: np.ndarray, block: np.ndarray, percentile: float, residual: bool = False) -> np.ndarray:
    """A percentile of each block, smoothed and interpolated back to every pixel.

    With ``residual``, ``intensity`` minus that surface instead, formed a
    slab at a time so no full-size surface is held.
    """
    block = np.asarray(block, dtype=int)
    counts = -(-np.asarray(intensity.shape) // block)
    coarse = _block_percentiles(intensity, block, counts, percentile)
    coarse = ndi.gaussian_filter(coarse, 1.0, mode="nearest")
    return _interpolate_centres(coarse, block, intensity, residual)


def _block_percentiles(intensity: np.ndarray, block: np.ndarray, counts: np.ndarray, percentile: float) -> np.ndarray:
    """The percentile of each block (edge-padded at the far ends), one slab of blocks at a time.

    A slab is one block thick along the first axis: its transposed copy is
    all the extra memory, instead of a padded and a transposed copy of the
    whole image.
    """
    ndim = intensity.ndim
    coarse = np.empty(tuple(counts), dtype=np.float64)
    pad_rest = [(0, int(c * b - s)) for c, b, s in zip(counts[1:], block[1:], intensity.shape[1:])]
    # Blocks as separate axes: (b0, n1, b1, ...) -> (n1, ..., b0*b1*...).
    shape = [int(block[0])] + [int(v) for pair in zip(counts[1:], block[1:]) for v in pair]
    order = list(range(1, 2 * ndim - 1, 2)) + [0] + list(range(2, 2 * ndim - 1, 2))
    for slab in range(int(counts[0])):
        rows = intensity[slab * block[0] : (slab + 1) * block[0]]
        padded = np.pad(rows, [(0, int(block[0]) - rows.shape[0]), *pad_rest], mode="edge")
        values = padded.reshape(shape).transpose(order).reshape(*counts[1:], -1)
        # ``padded`` is a fresh copy (np.pad always copies): partitioned in place.
        coarse[slab] = np.percentile(values, percentile, axis=-1, overwrite_input=True)
    return coarse


# Rows of the output per slab of the interpolation (a few hundred KiB: stays in cache).
_SLAB_PIXELS = 1 << 16


def _linear_weights(pixels, b: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbouring block centres of each pixel (an int: that many from 0; or an index array),
    for blocks ``b`` wide, ``c`` of them, and the weight of the upper one."""
    pixels = np.arange(pixels) if np.ndim(pixels) == 0 else np.asarray(pixels)
    position = np.clip((pixels + 0.5) / b - 0.5, 0, c - 1)
    low = np.minimum(np.floor(position).astype(int), max(c - 2, 0))
    return low, np.minimum(low + 1, c - 1), position - low


def _interpolate_other_axes(coarse: np.ndarray, block, pixels) -> np.ndarray:
    """Every axis but the first interpolated from block centres to ``pixels`` (per axis: a count or indices)."""
    partial = coarse
    for axis in range(coarse.ndim - 1, 0, -1):
        low, high, frac = _linear_weights(pixels[axis], block[axis], coarse.shape[axis])
        frac = frac.reshape((-1,) + (1,) * (coarse.ndim - 1 - axis))
        partial = np.take(partial, low, axis=axis) * (1.0 - frac) + np.take(partial, high, axis=axis) * frac
    return partial


def surface_at(coarse: np.ndarray, block, pixels) -> np.ndarray:
    """The surface of block-centre values ``coarse`` at the product of per-axis pixel indices.

    The same arithmetic as the whole image's interpolation, value for value,
    so a part of the image (a block of a blockwise run) gets exactly the
    numbers the whole image's surface has there.
    """
    partial = _interpolate_other_axes(coarse, block, pixels)
    low, high, frac = _linear_weights(pixels[0], block[0], coarse.shape[0])
    spread = (slice(None),) + (None,) * (coarse.ndim - 1)
    out = np.multiply(partial[low], (1.0 - frac)[spread])
    out += partial[high] * frac[spread]
    return out


def _interpolate_centres(coarse: np.ndarray, block: np.ndarray, intensity: np.ndarray, residual: bool) -> np.ndarray:
    """Values at block centres to every pixel: multilinear, constant beyond the outer centres.

    Separable: every axis but the first is interpolated on the small array
    (``c0 x n1 x ...``), then the first one slab of rows at a time into the
    output, with no full-size coordinate arrays (a general interpolation
    needs them). ``residual``: ``intensity`` minus the surface.
    """
    partial = _interpolate_other_axes(coarse, block, intensity.shape)
    low, high, frac = _linear_weights(intensity.shape[0], block[0], coarse.shape[0])
    out = np.empty(intensity.shape, dtype=np.float64)
    step = max(1, _SLAB_PIXELS // max(partial[0].size, 1))
    spread = (slice(None),) + (None,) * (coarse.ndim - 1)
    for start in range(0, intensity.shape[0], step):
        rows = slice(start, start + step)
        slab = out[rows]
        np.multiply(partial[low[rows]], (1.0 - frac[rows])[spread], out=slab)
        slab += partial[high[rows]] * frac[rows][spread]
        if residual:
            np.subtract(intensity[rows], slab, out=slab)
    return out


def correct_intensity(
    data: np.ndarray,
    n_spatial: int,
    params,
    thresholded: bool,
    radius_of,
    unit: np.ndarray,
    parameters: dict,
    config: AutoConfig | None = None,
):
    """The image as the threshold and the graph should see it: objects bright, background flat.

    Parameters
    ----------
    data : ndarray of float, shape S or S + (C,)
    n_spatial : int
        Number of spatial axes.
    params : SegmentationParams
        Its ``polarity`` and ``background``.
    thresholded : bool
        Whether a threshold makes the mask (the background matters only then).
    radius_of : callable
        ``radius_of(intensity)``: the typical object radius (pixels of the finest axis).
    unit : ndarray
        Pixel size per axis relative to the finest axis.
    parameters : dict
        Receives ``polarity_used``, ``background_used`` and ``background_range``.
    config : AutoConfig, optional
        The shares of the two decisions (default: ``AutoConfig()``).

    Returns
    -------
    ndarray of float, same shape (``data`` itself where nothing changes)
    """
    config = resolve_config(config)
    colour = data.ndim > n_spatial
    intensity = data.mean(axis=-1) if colour else data
    polarity = choose_polarity(intensity, config) if chooses_polarity(params) else params.polarity
    parameters["polarity_used"] = polarity
    if polarity == "dark":
        top = float(data.max())
        data = top - data
        intensity = top - intensity
    parameters["background_used"], parameters["background_range"] = "flat", 0.0
    if not estimates_background(params, thresholded, colour):
        return data
    level = otsu_threshold(intensity)
    above, below = intensity[intensity > level], intensity[intensity <= level]
    if not above.size or not below.size:
        return data
    contrast = float(np.median(above) - np.median(below))
    surface = estimate_background(intensity, radius_of(intensity), unit, config)
    spread = float(np.percentile(surface, 95) - np.percentile(surface, 5))
    parameters["background_range"] = round(spread, 6)
    if contrast <= 0 or spread <= config.background_variation * contrast:
        return data
    parameters["background_used"] = "subtracted"
    return data - (surface - surface.min())
