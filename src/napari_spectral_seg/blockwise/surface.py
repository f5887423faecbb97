"""A whole image's background surface, from the percentiles of its cells read block by block (client side).

As ``core.background.estimate_background``: cells a few typical objects
wide, a low percentile of each from every pixel (tasks of about a block
each: exact), the grid smoothed, saved for the workers, which evaluate
the surface on their own pixels (:class:`~.corrected.BackgroundSurface`).
The background correction (:mod:`.correction`) takes it of the raw image,
the dim-object search (:mod:`.dim`) of the smoothed corrected image.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

from ..core.background import background_block
from . import corrected
from .corrected import BackgroundSurface
from .passes import gather

__all__ = ["cell_grid", "cell_size"]


def cell_size(shape, radius: float, unit: np.ndarray) -> np.ndarray:
    """Pixels per background cell and axis, as ``core.background.estimate_background`` takes them."""
    return background_block(shape, radius, unit)


def cell_grid(client, source, cell, block_size, scratch: Path) -> BackgroundSurface:
    """The cells' percentiles over the whole image, smoothed, saved for the workers; the surface (offset 0)."""
    counts = [int(-(-n // c)) for n, c in zip(source.shape, cell)]
    per_task = [max(1, int(b) // int(c)) for b, c in zip(np.broadcast_to(block_size, (source.ndim,)), cell)]
    tasks = corrected.cell_boxes(counts, per_task)
    values = gather(client, corrected.cell_percentiles, tasks, source, tuple(int(c) for c in cell), source.shape)
    grid = np.empty(counts)
    for cells, part in zip(tasks, values):
        grid[tuple(slice(c0, c1) for c0, c1 in cells)] = part
    grid = ndi.gaussian_filter(grid, 1.0, mode="nearest")
    digest = hashlib.sha1(grid.tobytes()).hexdigest()[:16]
    path = scratch / f"background-{digest}.npy"
    temporary = path.with_name(f".{path.name}.partial.npy")
    np.save(temporary, grid)
    os.replace(temporary, path)
    return BackgroundSurface(str(path), tuple(int(c) for c in cell), tuple(counts))
