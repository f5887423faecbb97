"""The image as the threshold sees it, read block by block: objects bright, background flat (workers' side).

In memory (``core.background``), ``polarity="dark"`` segments ``max - image``
and ``background="auto"`` subtracts a smooth surface (a low percentile of
cells a few objects wide, smoothed, interpolated to every pixel) when it
varies enough. Both are functions of a pixel and a few whole-image numbers
(the maximum; the cells' percentiles and the surface's minimum), so a
:class:`CorrectedSource` applies them to any box it reads, with the values
the whole image gets. The worker tasks here return the pieces those numbers
are made of; :mod:`.correction` (the client) combines them.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from ..core.adapt import rough_radius
from ..core.auto import AutoConfig
from ..core.background import choose_polarity, surface_at  # the in-memory rule's, not copies
from ..core.mask import otsu_threshold
from .npy_files import load_array

__all__ = [
    "BackgroundSurface",
    "CorrectedSource",
    "cell_boxes",
    "cell_percentiles",
    "raw_piece",
    "sample_radius",
    "surface_stats",
    "view_decisions",
]


@functools.lru_cache(maxsize=4)
def _load_grid(path: str) -> np.ndarray:
    """The smoothed cell grid, read once per process (the file name holds its hash: never stale)."""
    return load_array(path)


@dataclass(frozen=True)
class BackgroundSurface:
    """The background surface of ``core.background.estimate_background``, evaluated on any box.

    Attributes
    ----------
    path : str
        ``.npy`` of the smoothed grid of cell percentiles (workers read it).
    cell : tuple of int
        Pixels per cell and axis.
    counts : tuple of int
        Cells per axis.
    offset : float
        The surface's minimum over the whole image (subtracted with it).
    """

    path: str
    cell: tuple
    counts: tuple
    offset: float = 0.0

    def values(self, box) -> np.ndarray:
        """The surface at the pixels of ``box``: the values the whole image's surface has there."""
        return surface_at(_load_grid(self.path), self.cell, [np.arange(a, b) for a, b in box])


@dataclass(frozen=True)
class CorrectedSource:
    """A :class:`~.source.Source` read as ``segment()`` corrects it: inverted (dark objects), background off.

    Attributes
    ----------
    raw : Source
    top : float or None
        The image's maximum: pixels read as ``top - value`` (dark objects); None: as stored.
    surface : BackgroundSurface or None
        Subtracted (less its minimum); None: a flat background.
    """

    raw: object
    top: float | None = None
    surface: BackgroundSurface | None = None

    @property
    def shape(self) -> tuple:
        return self.raw.shape

    @property
    def ndim(self) -> int:
        return self.raw.ndim

    def read(self, box) -> np.ndarray:
        """The corrected pixels of ``box``, float64, equal to those of the corrected whole image."""
        data = self.raw.read(box).astype(np.float64)
        if self.top is not None:
            data = self.top - data
        if self.surface is not None:
            data = data - (self.surface.values(box) - self.surface.offset)
        return data


def raw_piece(source, box, stride):
    """Every ``stride``-th pixel of ``box`` (on the image's grid of multiples of ``stride``) and its maximum.

    ``stride`` None: the maximum only.
    """
    data = source.read(box)
    top = float(np.max(data))
    if stride is None:
        return None, top
    start = [(-a) % stride for a, _ in box]
    return data[tuple(slice(s, None, stride) for s in start)].astype(np.float64), top


def view_decisions(view: np.ndarray, polarity: str, background: str, top: float) -> dict:
    """Polarity (as given, or chosen as in memory) and the object-to-background contrast, on the strided view."""
    chosen = choose_polarity(view) if polarity == "auto" else polarity
    decided = dict(polarity_used=chosen, contrast=None)
    if background == "auto":
        intensity = top - view if chosen == "dark" else view
        level = otsu_threshold(intensity)
        above, below = intensity[intensity > level], intensity[intensity <= level]
        if above.size and below.size:
            decided["contrast"] = float(np.median(above) - np.median(below))
    return decided


def sample_radius(source, box, threshold, unit) -> float:
    """``core.adapt.rough_radius`` of the (polarity-corrected) pixels of ``box``."""
    return float(rough_radius(source.read(box), None, threshold, unit))


def cell_boxes(counts, cells_per_task) -> list:
    """Ranges of cells ``((c0, c1), ...)`` per task, tiling the cell grid."""
    starts = [range(0, c, g) for c, g in zip(counts, cells_per_task)]
    return [
        tuple((a, min(a + g, c)) for a, g, c in zip(corner, cells_per_task, counts))
        for corner in itertools.product(*starts)
    ]


def cell_percentiles(source, cells, cell, shape) -> np.ndarray:
    """The background percentile of each cell of ``cells`` (the image edge-padded at its far end, as in memory)."""
    box = tuple((c0 * n_px, min(c1 * n_px, n)) for (c0, c1), n_px, n in zip(cells, cell, shape))
    data = source.read(box)
    pad = [(0, (c1 - c0) * n_px - (b - a)) for (c0, c1), n_px, (a, b) in zip(cells, cell, box)]
    padded = np.pad(data, pad, mode="edge")
    n_cells = [c1 - c0 for c0, c1 in cells]
    shape_in_cells = [v for pair in zip(n_cells, cell) for v in pair]
    ndim = len(cell)
    order = list(range(0, 2 * ndim, 2)) + list(range(1, 2 * ndim, 2))
    values = padded.reshape(shape_in_cells).transpose(order).reshape(*n_cells, -1)
    # The defaults, as the in-memory rule's and the blocks' (a blockwise run takes no auto_config).
    return np.percentile(values, AutoConfig().background_percentile, axis=-1)


def _extreme_pixels(n: int, n_px: int, n_cells: int) -> np.ndarray:
    """Pixels of an axis at the ends of each stretch between two cell centres.

    The surface is multilinear between centres, so over the pixels of one
    stretch (in every axis) it is smallest at one of these.
    """
    coords = np.clip((np.arange(n) + 0.5) / n_px - 0.5, 0, n_cells - 1)
    stretch = np.floor(coords)
    ends = np.flatnonzero(np.diff(stretch) != 0)
    return np.unique(np.concatenate([[0, n - 1], ends, ends + 1]))


def surface_stats(surface: BackgroundSurface, shape, stride: int) -> tuple[float, float]:
    """The surface's 95th minus 5th percentile over every ``stride``-th pixel, and its minimum over the image.

    With ``stride`` 1 both are those of the whole surface, computed as in
    memory; the minimum is exact for any stride (:func:`_extreme_pixels`).
    """
    if stride == 1:
        values = surface.values(tuple((0, n) for n in shape))
        return float(np.percentile(values, 95) - np.percentile(values, 5)), float(values.min())
    load = _load_grid(surface.path)
    grids = [np.arange(0, n, stride) for n in shape]
    strided = _surface_at(load, surface, grids)
    extremes = [_extreme_pixels(n, n_px, c) for n, n_px, c in zip(shape, surface.cell, surface.counts)]
    minimum = float(_surface_at(load, surface, extremes).min())
    return float(np.percentile(strided, 95) - np.percentile(strided, 5)), minimum


def _surface_at(grid: np.ndarray, surface: BackgroundSurface, pixels) -> np.ndarray:
    """The surface at the product of per-axis pixel indices."""
    return surface_at(grid, surface.cell, [np.asarray(p) for p in pixels])
