"""The dim-object search's whole-image decisions (``low_threshold``), taken over blocks.

In memory (``core.dim.dim_search``) the search below the threshold reads the
whole smoothed (corrected) image three times: a background surface (a low
percentile of cells a few objects wide, smoothed, interpolated), the median
of what the pixels at or below the threshold leave above it, and their
median absolute deviation about that median. Here:

- the cells' percentiles come from every smoothed pixel, a task per few
  cells (as the correction's surface, :mod:`.correction`), so the surface
  is the in-memory one and every block evaluates it on its own pixels
  (:class:`~.corrected.BackgroundSurface`);
- the two medians, and the median of the low threshold recorded as
  ``low_threshold_used``, are exact: a fine histogram of the values summed
  over blocks, then the values of the bins that hold the median ranks.
  Every block is read at full resolution, glass blocks too: the medians
  are of every smoothed pixel at or below the threshold, and on a slide
  most of them are glass, which coarse stand-ins would change. The
  histogram's bounds come from the range pass (coarse stand-ins for glass);
  a value outside them widens them and the histogram is made again.

:func:`decide_dim` returns a JSON-able record, :func:`block_decided` turns
it into the :class:`~napari_spectral_seg.core.dim.DimDecided` of one region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.adapt import unit_spacing
from ..core.auto import default_min_part
from ..core.dim import DimDecided, deviation_from, low_threshold, search_noise
from .corrected import BackgroundSurface
from .decide import MEDIAN_BINS, median_ranks, rank_window, smoothed, value_at_rank
from .npy_files import load_array
from .passes import gather
from .surface import cell_size

__all__ = ["SmoothedSource", "block_decided", "decide_dim", "low_values", "residual_values"]


@dataclass(frozen=True)
class SmoothedSource:
    """A source read smoothed: the values the smoothed whole image has in any box."""

    source: object
    sigma: object
    spacing: object

    @property
    def shape(self) -> tuple:
        return self.source.shape

    @property
    def ndim(self) -> int:
        return self.source.ndim

    def read(self, box) -> np.ndarray:
        return smoothed(self.source, box, self.sigma, self.spacing)


def residual_values(source, box, threshold: float, surface: BackgroundSurface, centre: float | None):
    """The smoothed pixels of ``box`` at or below ``threshold`` less the surface; ``centre`` given: their distance to it."""
    values = source.read(box)
    residual = (values - surface.values(box))[values <= threshold]
    return residual if centre is None else np.abs(residual - centre)


def low_values(source, box, surface: BackgroundSurface, offset: float, deviation: float):
    """The automatic low threshold at the pixels of ``box`` (``source`` unused: every task takes one)."""
    return low_threshold(surface.values(box) + offset, deviation).ravel()


def _histogram(values_of, box, args, lo: float, hi: float) -> tuple:
    """The fine histogram over ``[lo, hi]``, the count of values outside it, and their extremes."""
    values = values_of(args[0], box, *args[1:])
    outside = values[(values < lo) | (values > hi)]
    extremes = (float(outside.min()), float(outside.max())) if outside.size else None
    return np.histogram(values, bins=MEDIAN_BINS, range=(lo, hi))[0], outside.size, extremes


def _windows(values_of, box, args, windows) -> list:
    """Per window ``(a, b)``: the count of values below ``a``, the distinct values within it and their counts."""
    values = values_of(args[0], box, *args[1:])
    parts = []
    for a, b in windows:
        distinct, counts = np.unique(values[(values >= a) & (values <= b)], return_counts=True)
        parts.append((int(np.count_nonzero(values < a)), distinct, counts))
    return parts


def exact_median(client, boxes, values_of, args, lo: float, hi: float) -> tuple[float | None, tuple]:
    """The median of ``values_of(source, box, *rest)`` over all ``boxes`` (``args = (source, *rest)``), as np.median.

    ``[lo, hi]`` is expected to hold every value; values outside it (bounds
    taken from coarse stand-ins of glass, which the full-resolution glass
    may pass) widen it to their extremes and the histogram is made again,
    so no value is left out. Returns the median (None when there are no
    values) and the bounds that held every value.
    """
    parts = gather(client, _histogram, boxes, values_of, args, lo, hi)
    extremes = [p[2] for p in parts if p[1]]
    if extremes:
        lo, hi = _widened(min([lo] + [e[0] for e in extremes]), max([hi] + [e[1] for e in extremes]))
        parts = gather(client, _histogram, boxes, values_of, args, lo, hi)
    histogram = np.sum([p[0] for p in parts], axis=0)
    total = int(histogram.sum())
    if not total:
        return None, (lo, hi)
    ranks = median_ranks(total)
    windows = sorted({rank_window(histogram, lo, hi, rank) for rank in ranks})
    parts = gather(client, _windows, boxes, values_of, args, windows)
    values = []
    for rank in ranks:
        i = windows.index(rank_window(histogram, lo, hi, rank))
        below = sum(p[i][0] for p in parts)
        distinct = np.concatenate([p[i][1] for p in parts])
        counts = np.concatenate([p[i][2] for p in parts])
        order = np.argsort(distinct, kind="stable")
        value = value_at_rank(below, distinct[order], counts[order], rank)
        values.append(value if value is not None else sum(windows[i]) / 2.0)
    return float((values[0] + values[1]) / 2.0), (lo, hi)


def _widened(lo: float, hi: float) -> tuple[float, float]:
    """``[lo, hi]`` a little wider: interpolated and subtracted values may pass the bounds in the last bits."""
    margin = 1e-9 * max(hi - lo, abs(lo), abs(hi), 1.0)
    return lo - margin, hi + margin


def decide_dim(client, passes, params, settings: dict, cell_grid) -> dict | None:
    """The search's whole-image decisions (see the module docstring), or None where no search applies.

    Parameters
    ----------
    client : distributed.Client
    passes : ImagePasses
        The (corrected) source, its blocks, the smoothing and spacing.
    params : SegmentationParams
        As given (``low_threshold``, ``threshold``, ``min_size``).
    settings : dict
        The run's record so far: ``threshold_used``, ``noise``,
        ``sigma_used``, ``typical_radius``, ``threshold_rule``, and
        ``range`` (smallest and largest smoothed value).
    cell_grid : callable
        ``cell_grid(source, cell)``: the smoothed grid of the cells'
        percentiles of ``source`` (:func:`.surface.cell_grid`).
    """
    source, spacing = passes.source, passes.spacing
    noise_left = search_noise(params, settings, source.ndim, spacing)
    if params.n_clusters != "auto" or noise_left is None:
        return None
    view = SmoothedSource(source, passes.sigma, spacing)
    radius = float(settings.get("typical_radius") or 1.0)
    surface = cell_grid(view, cell_size(source.shape, radius, unit_spacing(spacing, source.ndim)))
    grid = load_array(surface.path)
    boxes = [block.core for block in passes.blocks]
    threshold = settings["threshold_used"]
    lo, hi = settings["range"]
    bounds = _widened(lo - float(grid.max()), threshold - float(grid.min()))
    offset, bounds = exact_median(client, boxes, residual_values, (view, threshold, surface, None), *bounds)
    if offset is None:  # nothing at or below the threshold, as in memory
        offset, deviation = 0.0, noise_left
    else:
        reach = max(bounds[1] - offset, offset - bounds[0])
        mad, _ = exact_median(client, boxes, residual_values, (view, threshold, surface, offset), *_widened(0.0, reach))
        deviation = deviation_from(mad, noise_left)
    given = params.low_threshold
    if given == "auto":
        level = _widened(*(float(low_threshold(v + offset, deviation)) for v in (grid.min(), grid.max())))
        used, _ = exact_median(client, boxes, low_values, (view, surface, offset, deviation), *level)
        lowest = float(low_threshold(grid.min() + offset, deviation))
    else:
        used = lowest = float(given)
    return dict(
        surface=dict(path=surface.path, cell=list(surface.cell), counts=list(surface.counts)),
        offset=offset,
        deviation=deviation,
        low=None if given == "auto" else float(given),
        lowest=lowest,
        min_size=default_min_part(0 if params.min_size == "auto" else int(params.min_size), source.ndim),
        low_threshold_used=round(used, 6),
    )


def block_decided(record: dict | None, box) -> DimDecided | None:
    """The search's decisions over the pixels of ``box`` (None: no search)."""
    if record is None:
        return None
    grid = record["surface"]
    surface = BackgroundSurface(grid["path"], tuple(grid["cell"]), tuple(grid["counts"]))
    background = surface.values(box) + record["offset"]
    given = record["low"]
    low = low_threshold(background, record["deviation"]) if given is None else float(given)
    return DimDecided(low, background, float(record["deviation"]), int(record["min_size"]))
