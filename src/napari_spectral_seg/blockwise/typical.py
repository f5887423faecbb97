"""Auto mode's typical object size, from the whole image: the first pass's pieces, gathered from the blocks.

In memory, the typical size is the median size of the pieces the first
pass (the pass/hill split) cuts every connected component of the mask into
(:func:`~napari_spectral_seg.core.auto.median_piece_size`). Here every
block holding foreground splits the components it *owns* and sees *whole*,
and returns their pieces' sizes; the client takes the median of them all,
with the same rule. Each component is split once, by one block:

- **owned**: the component's first pixel (raster order) lies in the
  block's core, as for the labels (:mod:`.grid`);
- **seen whole**: the block reads its core grown by a reach (the smoothing
  reads the Gaussian's reach beyond, :func:`.decide.smoothed`). A
  component's first pass sees what it sees in the whole image when its
  bounding box, grown by :data:`CUE_REACH` (the intensity cue's averaging
  reads that far into the mask around it), stays clear of the sides the
  read box was cut at, and no piece of the mask cut by such a side and
  left out as smaller than ``min_size`` lies within that reach of it
  (whole, it may be larger, and kept). Not checked: a hole of the
  background enclosed by several components together (touching only at
  corners) that reaches a cut side, filled in memory for the distance
  cue and not here.

The reach cannot depend on the typical size, which this pass measures: it
starts at :data:`START_REACH` pixels and doubles, for a block that owns a
component not seen whole, up to the larger of four times that and half the
block. A component still not seen whole (larger than any read box) is
counted as missed: its pieces are left out of the median, and the count is
recorded per block and in total.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from ..core.auto import AutoConfig, default_min_part, iter_piece_sizes, median_piece_size
from ..core.graph import index_pixels
from ..core.progress import run_to_end
from .decide import smoothed
from .grid import grow
from .passes import gather

__all__ = ["CUE_REACH", "START_REACH", "block_piece_sizes", "max_reach", "whole_image_typical_size"]

# Pixels the landscape's intensity cue (a Gaussian of cue_sigma, truncated at
# 4 widths) reads around a pixel, plus one.
CUE_REACH = int(4.0 * AutoConfig.cue_sigma + 0.5) + 1
# Pixels read around a core at first: several nuclei, so most components are seen whole at once.
START_REACH = 64


def max_reach(block_size) -> int:
    """The largest reach a block grows to: four times :data:`START_REACH` or half the block, the larger."""
    return int(max(4 * START_REACH, 0.5 * int(np.max(block_size))))


def block_piece_sizes(source, core, sigma, spacing, threshold: float, min_size: int, params, largest: int) -> dict:
    """The first pass's piece sizes of the components this block owns and sees whole.

    Parameters
    ----------
    source : Source
        The (corrected) image.
    core : tuple of (int, int)
        The block's core.
    sigma, spacing
        The smoothing, as the other passes take them.
    threshold, min_size : float, int
        The whole image's threshold and smallest piece.
    params : SegmentationParams
        Sensitivity, eigen solver and seed of the first pass.
    largest : int
        The largest reach (:func:`max_reach`).

    Returns
    -------
    dict
        ``sizes`` (int32, pixels of each piece), ``owned`` (components
        owned), ``missed`` (of them, not seen whole at the largest reach)
        and ``reach`` (the reach read).
    """
    reach = min(START_REACH, largest)
    while True:
        box = grow(core, reach, source.shape)
        intensity = smoothed(source, box, sigma, spacing)
        mask = intensity > threshold
        index = index_pixels(mask, min_size=max(min_size, 1))
        owned, whole = _owned_components(index, mask, box, core, source.shape)
        if whole.all() or reach >= largest:
            break
        reach = min(2 * reach, largest)
    found = dict(owned=len(owned), missed=int((~whole).sum()), reach=int(reach))
    seen = owned[whole]
    if len(seen) == 0:  # nothing to split: no graph either
        return dict(found, sizes=np.zeros(0, np.int32))
    steps = iter_piece_sizes(
        intensity,
        index,
        seen,
        spacing=spacing,
        background=threshold,
        sensitivity=params.used_sensitivity(),
        min_part=default_min_part(min_size, intensity.ndim),
        eigen_solver=params.eigen_solver,
        random_state=params.random_state,
    )
    return dict(found, sizes=run_to_end(steps).astype(np.int32))


def _owned_components(index, mask, box, core, shape):
    """The components whose first pixel lies in ``core``, and for each whether the block sees it whole."""
    grid = index.node_of_pixel.shape
    if index.n_components == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    starts = index.offsets[:-1]
    coords = np.stack(np.unravel_index(index.pixel_of_node, grid), axis=1)
    origin = np.array([a for a, _ in box])
    first = coords[starts] + origin
    inside = np.all([(first[:, i] >= a) & (first[:, i] < b) for i, (a, b) in enumerate(core)], axis=0)
    owned = np.flatnonzero(inside)
    lo = np.minimum.reduceat(coords, starts, axis=0)[owned] - CUE_REACH
    hi = np.maximum.reduceat(coords, starts, axis=0)[owned] + 1 + CUE_REACH
    cut_lo = np.array([a > 0 for a, _ in box])
    cut_hi = np.array([b < n for (_, b), n in zip(box, shape)])
    size = np.array(grid)
    whole = ~np.any((cut_lo & (lo < 0)) | (cut_hi & (hi > size)), axis=1)
    left_out = mask & (index.node_of_pixel < 0)
    if left_out.any():
        cut_specks = _cut_pieces(left_out, cut_lo, cut_hi)
        for i in np.flatnonzero(whole):
            near = tuple(slice(max(a, 0), b) for a, b in zip(lo[i], hi[i]))
            whole[i] = not cut_specks[near].any()
    return owned, whole


def _cut_pieces(left_out: np.ndarray, cut_lo, cut_hi) -> np.ndarray:
    """The pixels of the connected pieces of ``left_out`` that touch a cut side of the read box."""
    pieces, n = ndi.label(left_out)
    touching = np.zeros(n + 1, bool)
    for axis in range(pieces.ndim):
        for cut, end in ((cut_lo[axis], 0), (cut_hi[axis], -1)):
            if cut:
                touching[np.take(pieces, end, axis=axis)] = True
    touching[0] = False
    return touching[pieces]


def whole_image_typical_size(client, source, blocks, sigma, spacing, threshold, min_size, params, block_size):
    """The typical size from the blocks' piece sizes, and the record of what it was measured on.

    ``blocks``: those holding pixels above ``threshold`` (no other block
    owns a component).
    """
    largest = max_reach(block_size)
    args = (sigma, spacing, threshold, min_size, params, largest)
    parts = gather(client, block_piece_sizes, [b.core for b in blocks], source, *args) if blocks else []
    sizes = np.concatenate([p["sizes"] for p in parts]) if parts else np.zeros(0, np.int32)
    size = median_piece_size(sizes, default_min_part(min_size, source.ndim))
    record = dict(
        measured_on="whole image",
        blocks=len(blocks),
        components=int(sum(p["owned"] - p["missed"] for p in parts)),
        pieces=int(len(sizes)),
        missed_components=int(sum(p["missed"] for p in parts)),
        missed_blocks={b.key: p["missed"] for b, p in zip(blocks, parts) if p["missed"]},
        grown_blocks={b.key: p["reach"] for b, p in zip(blocks, parts) if p["reach"] > START_REACH},
        start_reach=START_REACH,
        largest_reach=largest,
    )
    return size, record
