"""The block grid: cores that tile the image, regions that add the overlap around them.

Every pixel lies in exactly one block's *core*; a block reads its *region*,
the core grown by the overlap on every side (clipped at the image border).
A connected piece of the mask belongs to the block whose core holds its
first pixel in raster order, so exactly one block keeps it, and that block
holds part of the piece (a block is skipped only when no pixel within the
edges' reach of its core is foreground).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..core.auto.config import AutoConfig

__all__ = ["EDGE_REACH", "Block", "block_grid", "grow", "smoothing_reach"]

# Pixels an object's edge may move outwards (core.edges) plus one.
EDGE_REACH = math.ceil(AutoConfig.edge_reach) + 1


@dataclass(frozen=True)
class Block:
    """One block of the grid.

    Attributes
    ----------
    index : tuple of int
        Position in the grid.
    core : tuple of (int, int)
        ``(start, stop)`` per axis, in image pixels.
    """

    index: tuple
    core: tuple

    @property
    def key(self) -> str:
        """A name for files: ``"2_0"`` for grid position (2, 0)."""
        return "_".join(map(str, self.index))

    def region(self, overlap, shape) -> tuple:
        """The core grown by ``overlap`` pixels per axis (a number or one per axis), clipped to ``shape``."""
        return grow(self.core, overlap, shape)


def grow(box, margin, shape) -> tuple:
    """``box`` grown by ``margin`` pixels (a number or one per axis) on every side, clipped to ``shape``."""
    margins = np.broadcast_to(np.asarray(margin, dtype=int), (len(box),))
    return tuple((max(a - m, 0), min(b + m, n)) for (a, b), m, n in zip(box, margins, shape))


def block_grid(shape, block_size) -> list[Block]:
    """The blocks tiling ``shape``, cores of ``block_size`` pixels per axis (smaller at the far edges)."""
    sizes = np.broadcast_to(np.asarray(block_size, dtype=int), (len(shape),))
    starts = [range(0, n, s) for n, s in zip(shape, sizes)]
    blocks = []
    for corner in itertools.product(*starts):
        index = tuple(a // s for a, s in zip(corner, sizes))
        core = tuple((a, min(a + s, n)) for a, s, n in zip(corner, sizes, shape))
        blocks.append(Block(index, core))
    return blocks


def smoothing_reach(sigma_per_axis) -> np.ndarray:
    """Pixels per axis a Gaussian of these widths reads beyond a pixel (scipy's radius, truncate 4)."""
    return np.array([int(4.0 * float(s) + 0.5) if s > 0 else 0 for s in sigma_per_axis], dtype=int)
