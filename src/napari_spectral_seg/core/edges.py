"""Object edges at a fraction of each object's own brightness (auto mode).

A global threshold draws every object's edge at the same intensity. For a
dim nucleus that level sits high on its flank, so its outline shrinks and
its neck region is cut off; for a bright one it sits low, in the blurred
halo. A microscopist draws an edge where the object's own intensity has
fallen part of the way to the background. :func:`refine_object_edges` moves
each object's edge there: pixels of the object below its own level are
dropped, and background pixels within a short reach that are above the level
of the object next to them are added (grown from the object, so the added
pixels stay connected to it).

numpy/scipy only.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from .auto.config import AutoConfig
from .auto.geometry import face_footprint, fill_holes
from .params import DEFAULT_EDGE_LEVEL

__all__ = ["DEFAULT_EDGE_LEVEL", "object_levels", "refine_object_edges"]


def object_levels(
    intensity: np.ndarray,
    labels: np.ndarray,
    background: float,
    level: float,
    percentile: float = AutoConfig.bright_percentile,
) -> np.ndarray:
    """Per-object edge level ``background + level * (bright - background)``.

    Parameters
    ----------
    intensity : ndarray of float, shape S
    labels : ndarray of int, shape S
        0 background, ``1..M`` objects.
    background : float
        Intensity of "no signal".
    level : float
        Fraction in (0, 1).
    percentile : float
        An object's bright level is this percentile of its intensities (not
        the maximum, so one hot pixel does not set it); default
        ``AutoConfig().bright_percentile``.

    Returns
    -------
    ndarray of float64, shape (M + 1,)
        Index ``l`` is object ``l``'s edge level; index 0 (and labels with no
        pixel) is ``+inf``, so nothing is ever grown from them.
    """
    flat = labels.ravel()
    inside = np.flatnonzero(flat)
    n = int(flat.max()) if flat.size else 0
    out = np.full(n + 1, np.inf)
    if len(inside) == 0:
        return out
    lab = flat[inside]
    values = intensity.ravel()[inside]
    # Sort by label, then intensity: each object's values are one sorted run,
    # so every percentile is one index into it (no loop over objects).
    order = np.lexsort((values, lab))
    lab, values = lab[order], values[order]
    counts = np.bincount(lab, minlength=n + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    present = np.flatnonzero(counts)
    present = present[present > 0]
    pick = starts[present] + np.floor((counts[present] - 1) * percentile / 100.0).astype(np.int64)
    bright = values[pick]
    out[present] = background + level * (bright - background)
    return out


def refine_object_edges(
    intensity: np.ndarray,
    labels: np.ndarray,
    *,
    background: float,
    level: float = DEFAULT_EDGE_LEVEL,
    reach: float = AutoConfig.edge_reach,
    spacing=None,
    allowed: np.ndarray | None = None,
    regions: np.ndarray | None = None,
    percentile: float = AutoConfig.bright_percentile,
) -> np.ndarray:
    """Move each object's edge to ``level`` of the way from background to its brightness.

    Parameters
    ----------
    intensity : ndarray of float, shape S
        Single-channel intensity (smoothed as the segmentation saw it), in
        the image's units.
    labels : ndarray of int, shape S
        0 background, ``1..M`` objects. Never modified.
    background : float
        Intensity of "no signal" (image units), e.g. the median below a
        threshold.
    level : float
        Fraction in (0, 1); see :data:`DEFAULT_EDGE_LEVEL`.
    reach : float
        Largest move of an edge, inwards or outwards, in units of the finest
        pixel size (pixels without ``spacing``).
    spacing : sequence of float, optional
        Physical pixel size per axis: an axis with a coarser step gets
        fewer growth steps (``round(reach * finest / spacing[axis])``).
    allowed : ndarray of bool, shape S, optional
        Pixels an object may grow into (an explicit mask); default: all.
    regions : ndarray of int, shape S, optional
        Regions of a Labels-layer mask: an object never grows out of the
        region it lies in.
    percentile : float
        An object's bright level, as in :func:`object_levels`.

    Returns
    -------
    ndarray, shape S, dtype of ``labels``
        Each object keeps its label: its pixels at most ``reach`` inside its
        old edge and not above its level are dropped, pixels up to ``reach``
        outside and above its level are added (grown from it, so they stay
        connected), holes are filled, and its largest connected piece is
        kept. Objects with no pixel left are gone (the caller renumbers).

    Raises
    ------
    ValueError
        Shapes that differ, ``level`` outside (0, 1), a negative or
        non-finite ``reach``, or negative labels.
    """
    labels = np.asarray(labels)
    intensity = np.asarray(intensity)
    for name, other in (("intensity", intensity), ("allowed", allowed), ("regions", regions)):
        if other is not None and np.shape(other) != labels.shape:
            raise ValueError(
                f"{name} has shape {np.shape(other)} but labels has {labels.shape}; pass arrays of one shape."
            )
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be in (0, 1), e.g. {DEFAULT_EDGE_LEVEL}.")
    if not (np.isfinite(reach) and reach >= 0):
        raise ValueError(f"reach={reach!r} must be a finite number of pixels >= 0, e.g. {AutoConfig.edge_reach}.")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be >= 0 (0 is background); relabel the image first.")
    ndim = labels.ndim
    levels = object_levels(intensity, labels, background, level, percentile)
    out = labels.copy()
    # Drop the object's own pixels below its level (a global threshold drew
    # a bright object's edge in its blurred halo), but only near the old
    # edge: a dim interior (nucleoplasm around bright chromocentres) is
    # still the object.
    rim = _near_own_edge(labels, reach, spacing)
    out[rim & (intensity <= levels[out])] = 0
    # Grow outwards one pixel per step, only through pixels above the level
    # of the object they would join: geodesic, so no blob far away is taken.
    steps = np.ones(ndim) * reach
    if spacing is not None:
        spacing = np.broadcast_to(np.asarray(spacing, dtype=float), (ndim,))
        steps = reach * spacing.min() / spacing
    steps = np.round(steps).astype(int)
    free = np.ascontiguousarray(out == 0 if allowed is None else (out == 0) & np.asarray(allowed, dtype=bool))
    region_of = None
    if regions is not None:
        region_of = np.zeros(int(out.max()) + 1, dtype=np.asarray(regions).dtype)
        region_of[out[out > 0]] = np.asarray(regions)[out > 0]
    # Background neighbours take this value in the minimum filter.
    no_label = int(out.max()) + 1
    for step in range(int(steps.max()) if ndim else 0):
        footprint = ndi.generate_binary_structure(ndim, 1)
        for axis in range(ndim):
            if step >= steps[axis]:
                # This axis's step is coarser: it has had its share of growth.
                index = [1] * ndim
                for end in (0, 2):
                    index[axis] = end
                    footprint[tuple(index)] = False
        if not _grow_one_step(out, free, intensity, levels, footprint, no_label, regions, region_of):
            break
    # Dropping dim pixels can leave an object in pieces (a dim bridge
    # between two lobes); its largest piece is the object.
    return _largest_piece_per_label(out)


def _grow_one_step(out, free, intensity, levels, footprint, no_label, regions, region_of) -> bool:
    """Give each free pixel next to an object (``footprint``) that object, where it is above its level.

    ``out`` and ``free`` are updated in place; returns whether any pixel was
    taken. Only free pixels with a labelled neighbour can be taken, so the
    levels are compared there alone.
    """
    candidates = np.flatnonzero(free & _dilated(out > 0, footprint))
    if not len(candidates):
        return False
    # A pixel between two objects could join either: of the neighbours
    # whose level it exceeds, the brighter object's (higher level) wins,
    # whatever the label numbers.
    high, low = _neighbour_labels(out, candidates, footprint, no_label)
    value = intensity.ravel()[candidates]
    fits_high = value > levels[high]
    fits_low = value > levels[low]
    grown = np.where(
        fits_high & fits_low,
        np.where(levels[high] >= levels[low], high, low),
        np.where(fits_high, high, np.where(fits_low, low, 0)),
    )
    take = grown > 0
    if region_of is not None:
        take &= np.asarray(regions).ravel()[candidates] == region_of[grown]
    if not take.any():
        return False
    out.ravel()[candidates[take]] = grown[take]
    free.ravel()[candidates[take]] = False
    return True


def _footprint_offsets(footprint: np.ndarray) -> np.ndarray:
    """Offsets (rows) of a 3 x ... x 3 footprint's True elements from its centre."""
    return np.argwhere(footprint) - 1


def _dilated(mask: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """``mask`` dilated by a 3 x ... x 3 ``footprint`` (holding its centre), by shifted slices."""
    return _shifted_union(mask, _footprint_offsets(footprint))


def _shifted_union(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Pixels ``p`` with ``mask[p - offset]`` True for some row of ``offsets`` (inside the image)."""
    union = np.zeros_like(mask)
    for offset in offsets:
        target = tuple(slice(max(o, 0), n + min(o, 0)) for o, n in zip(offset, mask.shape))
        source = tuple(slice(max(-o, 0), n + min(-o, 0)) for o, n in zip(offset, mask.shape))
        union[target] |= mask[source]
    return union


def _neighbour_labels(out, candidates, footprint, no_label):
    """Largest and smallest object label over each candidate's ``footprint`` (0 when it has none).

    What ``ndimage.maximum_filter`` and ``minimum_filter`` (background as
    ``no_label``) give at those pixels: their border mode (reflect) repeats
    the pixel itself beyond the image's edge, which the footprint's centre
    already holds, so neighbours outside the image are left out here.
    """
    coords = np.unravel_index(candidates, out.shape)
    high = np.zeros(len(candidates), dtype=out.dtype)
    low = np.full(len(candidates), no_label, dtype=np.result_type(out.dtype, np.min_scalar_type(no_label)))
    for offset in _footprint_offsets(footprint):
        where = tuple(c + o for c, o in zip(coords, offset))
        valid = np.ones(len(candidates), dtype=bool)
        for axis, n in enumerate(out.shape):
            valid &= (where[axis] >= 0) & (where[axis] < n)
        label = out[tuple(w[valid] for w in where)]
        high[valid] = np.maximum(high[valid], label)
        low[valid] = np.minimum(low[valid], np.where(label > 0, label, no_label))
    return high, np.where(low == no_label, 0, low)


# Above this many offsets (a reach of about 10 pixels in 2D, 4 in 3D) one
# distance transform of the image is cheaper than a shifted copy per offset.
_MAX_RIM_OFFSETS = 300


def _near_own_edge(labels, reach, spacing):
    """Object pixels within ``reach`` (finest-pixel units) of their object's edge."""
    inside = labels > 0
    # An object's edge: pixels with a face neighbour outside it (background,
    # another object, or the image border).
    edge = np.zeros_like(inside)
    padded = np.pad(labels, 1, mode="constant", constant_values=-1)
    centre = tuple(slice(1, -1) for _ in range(labels.ndim))
    for axis in range(labels.ndim):
        for shift in (-1, 1):
            neighbour = np.roll(padded, shift, axis=axis)[centre]
            edge |= inside & (neighbour != labels)
    unit = 1.0 if spacing is None else float(np.min(spacing))
    # Within the distance of an edge pixel: the edge dilated by the offsets
    # shorter than it, the same pixels as a distance transform of the whole
    # image at a fraction of its time.
    offsets = _offsets_within(reach * unit, spacing, labels.ndim)
    if len(offsets) > _MAX_RIM_OFFSETS:
        return inside & (ndi.distance_transform_edt(~edge, sampling=spacing) < reach * unit)
    return inside & _shifted_union(edge, offsets)


def _offsets_within(radius: float, spacing, ndim: int) -> np.ndarray:
    """Integer offsets (rows) whose length with pixel size ``spacing`` is below ``radius``.

    The length is computed as :func:`scipy.ndimage.distance_transform_edt`
    computes a distance (each axis scaled, squared, summed, square root), so
    a pixel is within ``radius`` of an edge pixel here exactly when its
    distance transform says so.
    """
    sampling = None if spacing is None else np.broadcast_to(np.asarray(spacing, dtype=np.float64), (ndim,))
    steps = np.ones(ndim) if sampling is None else sampling
    half = [int(np.ceil(radius / step)) for step in steps]
    grid = np.indices([2 * h + 1 for h in half]).reshape(ndim, -1) - np.asarray(half)[:, None]
    scaled = grid.astype(np.float64)
    if sampling is not None:
        for axis in range(ndim):
            scaled[axis] *= sampling[axis]
    length = np.sqrt(np.add.reduce(scaled * scaled, axis=0))
    return grid[:, length < radius].T


def _largest_piece_per_label(labels: np.ndarray) -> np.ndarray:
    """Keep, for each label, only its largest face-connected piece, holes filled."""
    out = labels
    for lab, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        region = out[box]
        own = region == lab
        pieces, n = ndi.label(own, structure=face_footprint(own.ndim))
        if n > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            region[own & (pieces != sizes.argmax())] = 0
            own = pieces == sizes.argmax()
        # A hole of background enclosed by the object is the object (a dim
        # spot inside it); other objects inside it are left alone.
        # (binary_fill_holes' pixels, by one labelling of the padded box.)
        padded = np.zeros(tuple(n + 2 for n in own.shape), dtype=bool)
        inner = tuple(slice(1, -1) for _ in range(own.ndim))
        padded[inner] = own
        filled = fill_holes(padded)[inner]
        region[filled & (region == 0)] = lab
    return out
