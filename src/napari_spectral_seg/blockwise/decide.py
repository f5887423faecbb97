"""Whole-image decisions, taken once and passed to every block as fixed numbers.

In memory, ``segment`` takes some decisions from the whole image: the
smoothing width and smallest piece (``sigma="auto"``, ``min_size="auto"``),
Otsu's threshold of the smoothed image, the typical object size of auto
mode, and the background level of the object edges (the median of the
smoothed pixels at or below the threshold). Here each is computed on
workers, block by block, and combined on the client from small summaries:

- ``sigma`` and ``min_size``: measured by the core on a central sample of
  the image (the whole image when it fits the sample; the typical object
  size no longer uses it);
- Otsu's threshold: from the histogram of the whole smoothed image, summed
  over blocks with the bins ``np.histogram`` uses in memory (a first pass
  finds the range), so it is the in-memory value;
- the edges' background and the medians of auto mode's field rule: exact
  medians, from fine histograms of the pixels at or below the threshold
  and above it, then the values of the bins that hold the median ranks
  (:mod:`.passes`);
- the typical object size: auto mode's typical size (the median piece of
  the first pass), from the pieces of every component of the whole image,
  each split by the one block that owns it (:mod:`.typical`, whose
  worker task lives there).

Worker tasks take a :class:`~.source.Source` and a box; they return numbers
and small arrays, never the image.
"""

from __future__ import annotations

import numpy as np

from ..core.adapt import chosen_settings
from ..core.params import check_sigma
from ..core.smooth import smooth_image
from .grid import grow, smoothing_reach

__all__ = [
    "OTSU_BINS",
    "MEDIAN_BINS",
    "block_histogram",
    "block_range",
    "block_split_histograms",
    "block_window_values",
    "central_box",
    "median_ranks",
    "rank_window",
    "sample_scales",
    "sigma_per_axis",
    "smoothed",
    "split_histograms",
    "value_at_rank",
    "window_values",
]

# As core.mask.otsu_threshold.
OTSU_BINS = 256
# Bins of a class's histogram (the pixels at or below a split, or above it) that locates its median.
MEDIAN_BINS = 4096


def sigma_per_axis(sigma, spacing, ndim: int) -> np.ndarray:
    """Gaussian widths in pixels per axis, as :func:`~napari_spectral_seg.core.smooth.smooth_image` uses them."""
    if sigma is None:
        return np.zeros(ndim)
    if isinstance(sigma, tuple) and len(sigma) == 2 and sigma[0] == "scalar":
        unit = np.ones(ndim) if spacing is None else np.asarray(spacing, dtype=float)
        return sigma[1] * unit.min() / unit
    return np.asarray(sigma, dtype=float)


def smoothed(source, box, sigma, spacing) -> np.ndarray:
    """The smoothed pixels of ``box``, equal to those of the smoothed whole image.

    The box is read with the Gaussian's reach around it, so only the image
    border (where the whole image is padded the same way) is padded.
    """
    reach = smoothing_reach(sigma_per_axis(sigma, spacing, source.ndim))
    read_box = grow(box, reach, source.shape)
    data = source.read(read_box).astype(np.float64)
    if not np.isfinite(data).all():
        raise ValueError(
            f"image has {int(np.size(data) - np.isfinite(data).sum())} NaN or infinite pixel(s) in the box "
            f"{read_box}; replace them (e.g. np.nan_to_num) before a blockwise run."
        )
    data = smooth_image(data, sigma, spacing)
    inner = tuple(slice(a - r0, b - r0) for (a, b), (r0, _) in zip(box, read_box))
    return data[inner]


def block_range(source, box, sigma, spacing) -> tuple[float, float]:
    """Smallest and largest smoothed value in ``box``."""
    values = smoothed(source, box, sigma, spacing)
    return float(values.min()), float(values.max())


def block_histogram(source, box, sigma, spacing, lo: float, hi: float) -> np.ndarray:
    """Counts of the smoothed values of ``box`` in the :data:`OTSU_BINS` bins of ``[lo, hi]``."""
    values = smoothed(source, box, sigma, spacing)
    return np.histogram(values, bins=OTSU_BINS, range=(lo, hi))[0]


def block_split_histograms(source, box, sigma, spacing, lo: float, split: float, hi: float | None = None):
    """Fine histograms of the smoothed values of ``box``: at or below ``split``, and (``hi`` given) above it.

    The first over the :data:`MEDIAN_BINS` bins of ``[lo, split]``, the
    second over those of ``[split, hi]`` (None without ``hi``).
    """
    return split_histograms(smoothed(source, box, sigma, spacing), lo, split, hi)


def split_histograms(values: np.ndarray, lo: float, split: float, hi: float | None = None):
    """:func:`block_split_histograms` of given values."""
    below = _fine_histogram(values[values <= split], lo, split)
    above = None if hi is None else _fine_histogram(values[values > split], split, hi)
    return below, above


def _fine_histogram(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:  # one value at most: a single bin
        return np.array([values.size])
    return np.histogram(values, bins=MEDIAN_BINS, range=(lo, hi))[0]


def block_window_values(source, box, sigma, spacing, split: float, windows) -> list:
    """For each window ``(side, a, b)``: the class's values below ``a`` (a count) and within ``[a, b]``.

    ``side`` "below" is the values at or below ``split``, "above" those
    above it; within the window, the distinct values and their counts.
    """
    values = smoothed(source, box, sigma, spacing)
    return window_values(values, split, windows)


def window_values(values: np.ndarray, split: float, windows) -> list:
    """:func:`block_window_values` of given values."""
    classes = {"below": values[values <= split], "above": values[values > split]}
    parts = []
    for side, a, b in windows:
        chosen = classes[side]
        window = chosen[(chosen >= a) & (chosen <= b)]
        distinct, counts = np.unique(window, return_counts=True)
        parts.append((int(np.count_nonzero(chosen < a)), distinct, counts))
    return parts


def median_ranks(n: int) -> tuple[int, int]:
    """The two ranks (0-based, equal for odd ``n``) whose values' mean is the median of ``n`` values."""
    return (n - 1) // 2, n // 2


def rank_window(histogram: np.ndarray, lo: float, hi: float, rank: int) -> tuple[float, float]:
    """The value range ``(a, b)`` holding the value of ``rank``, from the class's fine histogram over ``[lo, hi]``."""
    if len(histogram) == 1:
        return lo, hi
    edges = np.linspace(lo, hi, len(histogram) + 1)
    i = int(np.searchsorted(np.cumsum(histogram), rank, side="right"))
    # One bin of margin each side: np.histogram's edges and a comparison
    # with them may differ in the last bit.
    return float(edges[max(i - 1, 0)]), float(edges[min(i + 2, len(edges) - 1)])


def value_at_rank(below: int, distinct: np.ndarray, counts: np.ndarray, rank: int) -> float | None:
    """The value of ``rank`` from the count below a window and the window's sorted values (None: not in it)."""
    if rank < below:
        return None
    i = int(np.searchsorted(below + np.cumsum(counts), rank, side="right"))
    return float(distinct[i]) if i < len(distinct) else None


def central_box(shape, max_pixels: int) -> tuple:
    """The centred box of at most ``max_pixels`` pixels, the same fraction of every axis."""
    total = float(np.prod(shape))
    fraction = min(1.0, (max_pixels / total) ** (1.0 / len(shape)))
    sizes = [max(1, min(n, int(np.floor(n * fraction)))) for n in shape]
    return tuple(((n - s) // 2, (n - s) // 2 + s) for n, s in zip(shape, sizes))


def sample_scales(source, box, params, spacing) -> dict:
    """``sigma`` and ``min_size`` chosen by the core from the raw pixels of ``box`` (see core.adapt)."""
    data = source.read(box).astype(np.float64)
    recorded = {}
    sigma, min_size = chosen_settings(data, None, params, data.shape, spacing, recorded)
    return dict(recorded, sigma=sigma, min_size=int(min_size))


def resolved_sigma(params, shape, spacing):
    """The checked ``sigma`` of fixed parameters (not "auto")."""
    return check_sigma(params.sigma, len(shape), shape=shape, spacing=spacing)
