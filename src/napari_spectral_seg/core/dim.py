"""Dim objects below Otsu's threshold (auto mode): found from the image's background and noise.

One global threshold loses the dim nuclei of a field whose brightness varies
from nucleus to nucleus: Otsu's threshold lies between the background and
the *typical* nucleus, so a nucleus at a third of that brightness lies
wholly or mostly below it, often touching a bright neighbour. Lowering the
threshold for the whole image brings such nuclei back but fattens every
bright object by its blurred halo, and auto mode's distance landscape then
merges neighbours.

Instead the mask auto mode cut is kept as it is, and what lies outside it
is searched for objects of their own:

* **background and its deviation**: a surface of the low end of blocks a
  few objects wide (:func:`.background.estimate_background`, as the
  background correction measures it), raised by the median of what the
  pixels at or below the threshold leave above it; the deviation is their
  robust spread about it, never below the noise left after the smoothing.
  It holds the noise and what the surface does not follow.
* **low threshold**: the background plus ``dim_deviations`` deviations (a
  field of :class:`~.auto.config.AutoConfig`), or the number given.
* **basins**: the local brightness peaks above it and outside the mask, and
  the mask itself as one more marker, flood the image from the bright end
  down (a watershed) inside the pixels above the low threshold. A bright
  object's halo falls away from it with no peak of its own and floods from
  the mask; a dim nucleus beside it has its own peak and keeps the pixels on
  its side of the valley between them.
* **standing out**: a basin's peak must stand ``dim_deviations``
  deviations above its highest saddle to a neighbouring basin or to the
  mask; one that does not is joined to the dim basin across that saddle (a
  textured dim nucleus with two peaks) or dropped when it is the mask's
  (ripples on a halo).
* **own edge**: each object is cut where its signal above the background
  has fallen to the edge level of :mod:`.edges` (the same rule the outlines
  of the mask's objects follow), keeps its largest piece and at least
  ``min_size`` pixels.

Where nothing dim lies, nothing is added. numpy, scipy and scikit-image only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .adapt import smoothed_noise, unit_spacing
from .auto.config import AutoConfig, resolve_config
from .auto.geometry import face_footprint
from .background import estimate_background
from .edges import object_levels

__all__ = [
    "DimDecided",
    "DimObjects",
    "deviation_from",
    "dim_search",
    "find_dim_objects",
    "low_threshold",
    "residual_spread",
    "search_noise",
]


@dataclass(frozen=True)
class DimObjects:
    """What :func:`find_dim_objects` found.

    Attributes
    ----------
    labels : ndarray of int32, spatial shape
        0 where no dim object lies, ``1..n`` the dim objects (never inside
        the mask).
    count : int
        ``n``.
    low_threshold : float
        The low threshold used (the median of a surface).
    basin_boxes : tuple
        The bounding box (``(start, stop)`` per axis) of each object's basin
        (of at least ``min_size`` or not): the pixels its own-level cut is
        taken of. A part of a whole image finds an object as the whole image
        does only where its basin lies clear of the part's cut sides.
    dropped_boxes : tuple
        The same for each basin dropped as not standing out: cut by a part's
        side, its peak or saddles may be others, and it may stand out there.
    """

    labels: np.ndarray
    count: int
    low_threshold: float
    basin_boxes: tuple = ()
    dropped_boxes: tuple = ()


@dataclass(frozen=True)
class DimDecided:
    """The search's whole-image decisions, handed to a part of the image (a block of a blockwise run).

    Attributes
    ----------
    low, background : float or ndarray of float
        As :func:`dim_search` returns them, over the part's pixels.
    deviation : float
    min_size : int
        Smallest dim object, in pixels.
    """

    low: object
    background: object
    deviation: float
    min_size: int


def low_threshold(background, deviation: float, config: AutoConfig | None = None):
    """The automatic low threshold: ``background + dim_deviations * deviation`` (a level or a surface)."""
    return background + resolve_config(config).dim_deviations * deviation


def search_noise(params, parameters: dict, ndim: int, spacing=None) -> float | None:
    """Whether a search below the threshold applies: the noise left after the smoothing (0 if unmeasured), or None.

    None where no search applies: no threshold, ``low_threshold=None``, the
    noise not measured (``sigma`` and ``min_size`` both given) for "auto",
    or the threshold already at the noise (``threshold_rule="noise"``).
    """
    given = params.low_threshold
    if parameters.get("threshold_used") is None or given is None or parameters.get("threshold_rule") == "noise":
        return None
    noise_left = smoothed_noise(parameters, ndim, spacing)
    if given == "auto" and (not isinstance(params.threshold, str) or not noise_left):
        return None
    return noise_left


def dim_search(params, parameters: dict, intensity: np.ndarray, spacing=None, config=None):
    """Whether and how deep to search below the threshold: ``(low, background, deviation)``, or None.

    Parameters
    ----------
    params : SegmentationParams
        ``low_threshold`` as given; ``"auto"`` acts with an automatic
        threshold only (a threshold given as a number is the user's).
    parameters : dict
        The run's record: ``threshold_used``, ``noise``, ``sigma_used``,
        ``typical_radius`` and ``threshold_rule`` are read.
    intensity : ndarray of float, spatial shape
        The image as thresholded.
    spacing : sequence of float, optional
    config : AutoConfig, optional
        ``dim_deviations`` and the background's blocks (default: ``AutoConfig()``).

    Returns
    -------
    (low, background, deviation) or None
        ``low`` and ``background`` a level or a per-pixel surface; None
        where no search applies (:func:`search_noise`).
    """
    noise_left = search_noise(params, parameters, intensity.ndim, spacing)
    if noise_left is None:
        return None
    used = parameters["threshold_used"]
    radius = float(parameters.get("typical_radius") or 1.0)
    surface = estimate_background(intensity, radius, unit_spacing(spacing, intensity.ndim), config)
    offset, deviation = residual_spread(intensity - surface, intensity <= used, noise_left)
    background = surface + offset
    given = params.low_threshold
    low = float(given) if given != "auto" else low_threshold(background, deviation, config)
    return low, background, deviation


def residual_spread(residual: np.ndarray, below: np.ndarray, noise_left: float) -> tuple[float, float]:
    """The background's offset above the surface and its deviation, from the pixels at or below the threshold.

    The median of what those pixels leave above the surface, and their
    robust spread (1.4826 median absolute deviations) about it, never below
    ``noise_left``. Nothing below the threshold: offset 0, the noise.
    """
    residual = residual[below]
    if not residual.size:
        return 0.0, noise_left
    offset = float(np.median(residual))
    return offset, deviation_from(float(np.median(np.abs(residual - offset))), noise_left)


def deviation_from(mad: float, noise_left: float) -> float:
    """The background's deviation: a Gaussian's standard deviation from the median absolute deviation, at least the noise."""
    return max(1.4826 * mad, noise_left)


def find_dim_objects(
    intensity: np.ndarray,
    kept: np.ndarray,
    *,
    low,
    background,
    deviation: float,
    min_size: int,
    level: float,
    config: AutoConfig | None = None,
) -> DimObjects:
    """Objects outside the kept mask that stand out of the noise on their own.

    Parameters
    ----------
    intensity : ndarray of float, spatial shape
        The image as thresholded (smoothed, corrected; channel mean).
    kept : ndarray of bool, spatial shape
        The mask's pixels auto mode segments (pieces above the threshold of
        at least ``min_size``); a smaller piece may still be the bright top
        of a dim object.
    low : float or ndarray of float
        Only pixels brighter than this (per pixel, or one level) can belong
        to a dim object.
    background : float or ndarray of float
        The background level (per pixel, or one level).
    deviation : float
        Deviation of the background about ``background`` (at least the noise); a basin's peak
        must stand ``config.dim_deviations`` of it above its highest saddle.
    min_size : int
        Smallest dim object, in pixels, at its own level.
    level : float
        Each dim object is the part of its basin above ``level`` of the way
        from the background to its own bright level (the edge rule of
        :mod:`.edges`).
    config : AutoConfig, optional
        ``dim_deviations`` and ``bright_percentile`` (default: ``AutoConfig()``).

    Returns
    -------
    DimObjects
    """
    from skimage.segmentation import watershed

    config = resolve_config(config)
    recorded = float(np.median(low))
    empty = DimObjects(np.zeros(kept.shape, np.int32), 0, recorded)
    above = (intensity > low) & ~kept
    if not above.any():
        return empty
    footprint = face_footprint(kept.ndim)
    peaks = (ndi.maximum_filter(intensity, footprint=footprint, mode="nearest") == intensity) & above
    seeds, n_seeds = ndi.label(peaks, structure=footprint)
    if n_seeds == 0:
        return empty
    # The kept mask floods as one more basin (label n_seeds + 1), so its halo stays its own.
    markers = np.where(kept, n_seeds + 1, seeds).astype(np.int32)
    basins = watershed(-intensity, markers, mask=above | kept, connectivity=1)
    joins = _standing_out(intensity, basins, n_seeds, deviation * config.dim_deviations)
    grown = joins[basins]
    labels = _own_level(intensity, grown, background, level, config.bright_percentile)
    sizes = np.bincount(labels.ravel())
    small = sizes < max(int(min_size), 1)
    small[0] = False
    labels[small[labels]] = 0
    labels, count = _renumber(labels)
    return DimObjects(labels, count, recorded, *_basin_boxes(basins, grown, joins, n_seeds))


def _basin_boxes(basins, grown, joins, n_seeds: int) -> tuple:
    """The boxes of the objects' basins, and of the basins dropped as not standing out."""
    kept = [where for where in ndi.find_objects(grown) if where is not None]
    found = ndi.find_objects(basins, max_label=n_seeds)
    dropped = [where for lab, where in enumerate(found, start=1) if where is not None and joins[lab] == 0]
    return tuple(tuple(tuple((s.start, s.stop) for s in where) for where in boxes) for boxes in (kept, dropped))


def _own_level(intensity, labels, background, level: float, percentile: float) -> np.ndarray:
    """Each object cut to its pixels above its own edge level, its largest piece kept."""
    if not labels.any():
        return labels
    local = np.broadcast_to(np.asarray(background, float), labels.shape)
    shifted = intensity - local
    # The bright level of edges.object_levels, measured above the local background.
    bright = object_levels(shifted, labels, 0.0, 1.0, percentile)[1:]
    own = np.concatenate([[np.inf], level * np.where(np.isfinite(bright), bright, np.inf)])
    labels = np.where(shifted > own[labels], labels, 0)
    return _largest_pieces(labels)


def _largest_pieces(labels: np.ndarray) -> np.ndarray:
    """Per label, its largest face-connected piece."""
    out = np.zeros_like(labels)
    for lab, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        own = labels[box] == lab
        pieces, n = ndi.label(own)
        if n > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            own = pieces == sizes.argmax()
        out[box][own] = lab
    return out


def _label_maxima(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Largest value per label ``0..n-1`` (0 for a label without pixels), as ``ndimage.maximum`` gives it.

    One unbuffered maximum over the pixels instead of ndimage's per-label
    selection, which costs about 30 times as much on a megapixel image.
    """
    flat, where = labels.ravel(), values.ravel()
    if flat.size and flat.max() >= n:
        keep = flat < n
        flat, where = flat[keep], where[keep]
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, flat, where.astype(float, copy=False))
    peak[np.bincount(flat, minlength=n)[:n] == 0] = 0.0
    return peak


def _standing_out(intensity, basins, n_seeds: int, margin: float) -> np.ndarray:
    """Per basin (index ``0..n_seeds + 1``), the object it joins (0: none).

    A basin whose peak stands at least ``margin`` above its highest saddle is
    an object; one that does not is joined to the basin across that saddle
    when it is dim, and dropped when it is the mask (``n_seeds + 1``).
    """
    bright = n_seeds + 1
    peak = _label_maxima(intensity, basins, n_seeds + 2)
    a, b, height = _saddle_pairs(intensity, basins, bright)
    best = np.full(n_seeds + 2, -np.inf)
    across = np.zeros(n_seeds + 2, np.int64)
    if len(a):
        order = np.lexsort((height, a))
        a, b, height = a[order], b[order], height[order]
        last = np.r_[a[1:] != a[:-1], True]
        best[a[last]], across[a[last]] = height[last], b[last]
    fails = peak - best < margin
    fails[[0, bright]] = False
    joined = fails & (across != bright) & (across > 0)
    dropped = fails & ~joined
    # Basins joined across a saddle form one object each (connected pieces of the joins).
    nodes = np.arange(n_seeds + 2)
    graph = coo_matrix((np.ones(joined.sum()), (nodes[joined], across[joined])), shape=(n_seeds + 2,) * 2)
    _, piece = connected_components(graph, directed=False)
    keep = np.zeros(n_seeds + 2, bool)
    keep[1:bright] = True
    keep &= ~dropped
    # A piece with a dropped member (joined onto halo) goes with it.
    bad = np.zeros(piece.max() + 1, bool)
    bad[piece[dropped]] = True
    keep &= ~bad[piece]
    return np.where(keep, piece + 1, 0)


def _saddle_pairs(intensity, basins, bright: int):
    """Face-neighbour pairs of different basins (either way round): basin, neighbour, saddle height.

    The mask's pixels count as the basin ``bright``; background (0) pairs are left out.
    """
    ndim = basins.ndim
    heads, tails, heights = [], [], []
    for axis in range(ndim):
        lo = [slice(None)] * ndim
        hi = [slice(None)] * ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        x, y = basins[tuple(lo)], basins[tuple(hi)]
        where = (x != y) & (x > 0) & (y > 0)
        if not where.any():
            continue
        h = np.minimum(intensity[tuple(lo)][where], intensity[tuple(hi)][where])
        heads += [x[where], y[where]]
        tails += [y[where], x[where]]
        heights += [h, h]
    if not heads:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    return np.concatenate(heads).astype(np.int64), np.concatenate(tails).astype(np.int64), np.concatenate(heights)


def _renumber(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels ``1..n`` for the labels present (0 stays 0), and ``n``."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lookup = np.zeros(len(present), np.int32)
    lookup[present] = np.arange(1, int(present.sum()) + 1)
    return lookup[labels], int(present.sum())
