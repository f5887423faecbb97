"""Whole-image decisions, taken once and passed to every block as fixed numbers.

In memory, ``segment`` takes some decisions from the whole image: the
smoothing width and smallest piece (``sigma="auto"``, ``min_size="auto"``),
Otsu's threshold of the smoothed image, the typical object size of auto
mode, and the background level of the object edges (the median of the
smoothed pixels at or below the threshold). Here each is computed on
workers, block by block, and combined on the client from small summaries:

- ``sigma`` and ``min_size``: measured by the core on a central sample of
  the image (the whole image when it fits the sample);
- Otsu's threshold: from the histogram of the whole smoothed image, summed
  over blocks with the bins ``np.histogram`` uses in memory (a first pass
  finds the range), so it is the in-memory value;
- the edges' background: the exact median, from a fine histogram of the
  dark pixels and then the values of the one bin that holds it;
- the typical object size: auto mode's typical size (the median piece, one
  number) on a central sample, cut into two tiles (when they stay large)
  measured in parallel and merged (:func:`merge_typical_sizes`).

Worker tasks take a :class:`~.source.Source` and a box; they return numbers
and small arrays, never the image.
"""

from __future__ import annotations

import numpy as np

from ..core.adapt import chosen_settings
from ..core.auto import default_min_part, iter_typical_size
from ..core.graph import index_pixels
from ..core.params import check_sigma
from ..core.progress import run_to_end
from ..core.smooth import smooth_image
from .grid import grow, smoothing_reach

__all__ = [
    "OTSU_BINS",
    "block_dark_histogram",
    "block_dark_values",
    "block_histogram",
    "block_range",
    "central_box",
    "dark_median",
    "merge_typical_sizes",
    "sample_scales",
    "sample_typical_size",
    "sigma_per_axis",
    "smoothed",
    "split_box",
]

# As core.mask.otsu_threshold.
OTSU_BINS = 256
# Bins of the dark pixels' histogram that locates their median.
_MEDIAN_BINS = 4096


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


def block_dark_histogram(source, box, sigma, spacing, lo: float, threshold: float) -> np.ndarray:
    """Counts of the smoothed values at or below ``threshold`` in the fine bins of ``[lo, threshold]``."""
    values = smoothed(source, box, sigma, spacing)
    dark = values[values <= threshold]
    if threshold <= lo:
        return np.array([dark.size])
    return np.histogram(dark, bins=_MEDIAN_BINS, range=(lo, threshold))[0]


def block_dark_values(source, box, sigma, spacing, threshold: float, a: float, b: float):
    """Dark values below ``a`` (a count) and within ``[a, b]`` (distinct values and their counts)."""
    values = smoothed(source, box, sigma, spacing)
    dark = values[values <= threshold]
    below = int(np.count_nonzero(dark < a))
    window = dark[(dark >= a) & (dark <= b)]
    distinct, counts = np.unique(window, return_counts=True)
    return below, distinct, counts


def dark_median(histogram: np.ndarray, lo: float, threshold: float):
    """The median ranks' bin range ``(a, b)`` and the ranks, from the summed dark histogram."""
    total = int(histogram.sum())
    if total == 0:
        return None
    ranks = ((total - 1) // 2, total // 2)
    if len(histogram) == 1:
        return (lo, threshold), ranks
    edges = np.linspace(lo, threshold, len(histogram) + 1)
    cumulative = np.cumsum(histogram)
    first = int(np.searchsorted(cumulative, ranks[0], side="right"))
    last = int(np.searchsorted(cumulative, ranks[1], side="right"))
    # One bin of margin each side: np.histogram's edges and a comparison
    # with them may differ in the last bit.
    a = float(edges[max(first - 1, 0)])
    b = float(edges[min(last + 2, len(edges) - 1)])
    return (a, b), ranks


def median_from_window(below: int, distinct: np.ndarray, counts: np.ndarray, ranks) -> float | None:
    """The median of the dark values from the count below the window and the window's values."""
    cumulative = below + np.cumsum(counts)
    picked = []
    for rank in ranks:
        i = int(np.searchsorted(cumulative, rank, side="right"))
        if rank < below or i >= len(distinct):
            return None
        picked.append(float(distinct[i]))
    return float((picked[0] + picked[1]) / 2.0)


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


def sample_typical_size(source, box, sigma, spacing, threshold: float, min_size: int, params) -> tuple[float, int]:
    """Auto mode's typical object size (pixels), on the smoothed pixels of ``box`` above ``threshold``.

    Returns the size and the number of mask pixels it was measured on
    (the weight of this box when several tiles of a sample are merged).
    """
    intensity = smoothed(source, box, sigma, spacing)
    mask = intensity > threshold
    index = index_pixels(mask, min_size=max(min_size, 1))
    if index.n_nodes == 0:
        return 0.0, 0
    steps = iter_typical_size(
        intensity,
        index,
        spacing=spacing,
        background=threshold,
        sensitivity=params.used_sensitivity(),
        min_part=default_min_part(min_size, intensity.ndim),
        eigen_solver=params.eigen_solver,
        random_state=params.random_state,
    )
    return float(run_to_end(steps)), int(index.n_nodes)


def split_box(box, n_tiles: int) -> list:
    """``box`` cut into a grid of at least ``n_tiles`` near-square tiles, in raster order.

    Each cut goes across the axis whose tiles are longest, so the tiles stay
    as square as the box allows and few objects are cut.
    """
    extents = [b - a for a, b in box]
    counts = [1] * len(box)
    while int(np.prod(counts)) < n_tiles:
        axis = int(np.argmax([e / c for e, c in zip(extents, counts)]))
        if extents[axis] // (counts[axis] + 1) < 1:
            break
        counts[axis] += 1
    edges = [np.linspace(a, b, c + 1).round().astype(int) for (a, b), c in zip(box, counts)]
    grid = np.stack(np.meshgrid(*[np.arange(c) for c in counts], indexing="ij"), axis=-1).reshape(-1, len(box))
    return [tuple((int(e[i]), int(e[i + 1])) for e, i in zip(edges, cell)) for cell in grid]


def merge_typical_sizes(parts) -> float:
    """One typical size from the ``(size, pixels)`` of several tiles: their mean weighted by mask pixels."""
    parts = [(size, pixels) for size, pixels in parts if pixels > 0]
    if not parts:
        return 0.0
    sizes = np.array([size for size, _ in parts], dtype=float)
    weights = np.array([pixels for _, pixels in parts], dtype=float)
    return float(weights @ sizes / weights.sum())


def resolved_sigma(params, shape, spacing):
    """The checked ``sigma`` of fixed parameters (not "auto")."""
    return check_sigma(params.sigma, len(shape), shape=shape, spacing=spacing)
