"""Automatic number of segments: split each connected component where it holds touching objects.

Each connected component of the mask is decided on its own, by a recursive
spectral bisection with a shape-and-intensity stopping rule:

1. **Landscape.** Every pixel gets a height ``h = d * t``: ``d`` is its
   distance to the mask boundary (``scipy.ndimage.distance_transform_edt``,
   in physical units when ``spacing`` is given) and ``t`` its intensity
   scaled to [0, 1] between the background level and the component's bright
   level. An object is one hill of ``h``; two touching objects are two hills
   joined by a pass, low where the union has a neck (small ``d``) or where a
   dark seam runs between them (small ``t``). Texture inside an object does
   not make a pass, because any line across the object still crosses its
   bright, deep middle.
2. **Candidate cut.** The Fiedler vector of the normalised Laplacian of the
   component's pixel graph, with edge weights ``(min(h_a, h_b) / max h)^2``,
   orders the pixels from one end of the component to the other across its
   cheapest (lowest, narrowest) pass. Every level set of that vector is a
   candidate cut (a "sweep cut").
3. **Decision.** For each candidate, the pass height is the largest ``h``
   among the edges it cuts, and the hill heights are the largest ``h`` on
   each side. The cut with the smallest ratio ``pass / min(hills)`` is
   taken if that ratio is below ``sensitivity``. The same cuts are also
   scored on the distance ``d`` alone and the lower ratio counts: next to a
   bright object a dim one is a low hill in ``h``, and the bright one's
   light, blurred across the neck, lifts the pass almost to that hill,
   while in ``d`` the neck still shows. The ratio is dimensionless
   and does not depend on the object's size, brightness or elongation: for
   one disc, ellipse or sphere it is close to 1 (any cut crosses the
   middle), for two discs overlapping with centre distance 1.6 R it is about
   0.6, and a dark seam at half brightness brings it to about 0.5.
4. **Recursion.** Accepted parts are split again the same way until no cut
   passes; pieces smaller than ``min_part`` pixels are never split off.
   Each part gets its own distance transform after a cut, so an object in
   the middle of a clump shows its neck once its neighbours are cut away.
5. **Size calibration.** Deep overlaps and clumps can hide a pass (ratio
   0.85-0.99). The pieces of a first pass are mostly single objects, so
   their median size is taken as the typical object size (or
   ``object_size`` is given), but not less than a tenth of the size of
   the piece holding the median pixel, so a swarm of small fragments
   cannot make every object look oversized; a piece larger than 1.5 times it is split
   again with a threshold of at least 0.93 that rises to 1.0 at 2.5 times (from there on
   any cut below the lower hill's top is taken: a part that big is not one
   object), while both sides of such a cut must hold at least 0.4 times the
   typical size. Sizes are
   compared as area-equivalents (volume ratios to the power 2/3 in 3D).
   The typical size is then re-estimated from the new pieces and the size
   pass repeated (up to three rounds, until nothing changes): clumps the
   first median counted as objects raise it, and once they are cut smaller
   clumps stand out as oversized too.
6. **Intensity steps.** A small object bulging off a larger one with no
   neck in the mask makes no pass; if the two differ in brightness their
   seam is an intensity step, a terrace rather than a hill. Pieces at least
   1.1 typical sizes get one more candidate cut, from the Fiedler vector of
   a graph whose weights also fall with the intensity difference between
   neighbours (in units of its median, the noise and texture scale). The
   cut is taken when its normalised-cut value (a short seam between large
   sides) divided by the brightness step across it (median cue within 3
   pixels on each side) is below ``_STEP_SCORE``, both sides holding 0.4
   typical sizes; the pieces are tried again.
7. **Shape moments (3D).** Two objects overlapping deeply, or two small
   ones the size of one typical object, can leave no pass at all. Their
   union is still not shaped like one ellipsoid: a 2-means clustering of its
   voxel positions leaves less than 0.6 of its second moment, while a single
   ellipsoid (axes up to 1.5:1, whole or clipped by a neighbour) leaves
   0.66-0.80; such pieces (from 0.9 typical sizes) are cut along the 2-means
   split if both halves are ellipsoid-like themselves (each leaves at least
   0.6; a flat fragment left by earlier cuts does not). Conversely two touching pieces whose union leaves at least 0.68
   and holds at most 2 typical sizes are one object cut in two and are
   joined.
   Slivers cut off inside a component (below a quarter of the
   typical size) rejoin their neighbour: they are false cuts, not objects.
8. **Convex rejoin.** A large object (often clipped by the image border)
   of 2-3.5 typical sizes has no pass, yet the oversized rule of step 5
   cuts it. Its pieces meet along a seam as wide as the object, and their
   union is convex; two touching objects meet at a neck or leave a dent.
   Two touching pieces are joined when their union fills at least 0.97 of
   its convex hull (pixel counts) and their seam is at least 1.4 times the
   smaller piece's equivalent diameter (3D: central section), the union
   holding at most 3.5 typical sizes. A border-clipped convex object stays
   convex, so the border needs no special case. In 3D a part that only the
   size rule of step 5 would cut is kept whole beforehand when it is one
   convex, ellipsoid-like body (solidity at least 0.97, 2-means leaving at
   least 0.66): a giant single object, not a clump.
9. **Notches (2D).** In a clump of three or four objects the distance
   transform's ridge runs through the junction and a dim lobe beside a
   bright one is a shoulder, so a lobe can make no pass at all. Its outline
   still shows it: a concave notch on each side of a neck. Pieces of at
   least 1.2 typical sizes are cut along the straight line between two
   notches (each at least 1.5 pixels inside the convex hull) when the
   notches' summed depth is at least 0.3 times the cut's length and the cut
   is at most 1.1 times the smaller side's equivalent diameter (a neck
   narrower than the objects); parts are tried again. Runs after step 6.

After these steps the pipeline moves each object's edge to its own
brightness (:mod:`napari_spectral_seg.core.edges`) when a threshold made
the mask.

This module is numpy/scipy only; it calls the shared eigen-solver
:func:`napari_spectral_seg.core.eigen.laplacian_eigenvectors`.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Generator

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .eigen import laplacian_eigenvectors

__all__ = [
    "DEFAULT_SENSITIVITY",
    "check_sensitivity",
    "default_min_part",
    "landscape",
    "pixel_edges",
    "split_component",
    "iter_auto_labels",
]

# Default split threshold on the pass/hill ratio. On synthetic nuclei
# smoothed with sigma=1, single objects score 0.97-1.0 and touching pairs
# 0.05-0.86 (deep overlaps of unequal objects score highest); on the real
# DSB 2018 nuclei image single nuclei go down to about 0.85 (irregular
# outlines), which is why the default is not higher (bench/quality.py).
DEFAULT_SENSITIVITY = 0.85
# Weight floor: keeps the graph connected (a zero weight would split it into
# pieces the eigen-solver cannot handle) while leaving boundary edges cheap.
_WEIGHT_FLOOR = 1e-3
# Candidate cuts tested per bisection; more only refines the cut position.
_MAX_CANDIDATES = 256
# Upper bound of candidates x edges held in memory at once (booleans).
_CHUNK_CELLS = 4_000_000
_MIN_YIELD_INTERVAL = 0.05
# Width (pixels) of the averaging of the intensity cue, see landscape().
_CUE_SIGMA = 1.0
# Parts larger than _LARGE_PART times the typical object size are re-examined
# with a threshold rising to _LARGE_PART_SENSITIVITY over _LARGE_PART_RAMP
# more typical sizes; each side of such a cut must hold at least
# _LARGE_PART_SMALLEST typical sizes.
_LARGE_PART = 1.5
_LARGE_PART_RAMP = 1.0
# 1.0 rather than 0.98 (held-out synthetic 2D F1 0.866 -> 0.872, fresh seeds
# 200-209 0.855 -> 0.860, DSB 2018 0.733 -> 0.743; 3D unchanged): deep
# overlaps of oversized parts score up to 0.99.
_LARGE_PART_SENSITIVITY = 1.0
_LARGE_PART_SMALLEST = 0.4
# ...and the threshold of such a part is at least this (scaled with
# sensitivity): on tuning seeds, parts of 1.5-2 typical sizes that hold one
# object score >= 0.943 (2D) / 0.937 (3D), while 36 decisions on 2D parts
# holding several objects scored 0.835-0.93 and were rejected by the ramp
# (0.85 at 1.5x). Held-out seeds 110-139 (2D) F1 0.898 -> 0.913, 103-108
# (3D) 0.698 -> 0.788; DSB 2018 unchanged.
_LARGE_PART_FLOOR = 0.93
# Pieces split off inside a component below this area-equivalent fraction of
# the typical size are merged back (see iter_auto_labels).
_SLIVER = 0.25
# The typical size is re-estimated after each size pass, at most this many
# times: cutting the clumps the first median counted as objects lowers it,
# so other clumps then stand out.
_CALIBRATION_ROUNDS = 3
# Parts whose deepest pixel lies less than this many pixels inside are not
# split (see split_component). On 3D seed 510 such sheets were chipped into
# nine 30-88 voxel pieces (232 final pieces for 12 objects, now 14); no
# other tuning, held-out or unseen seed and not the real image changes.
_MIN_DEPTH = 2.0
# The typical size is at least the size of the piece holding the median
# pixel divided by this (see _typical_size): a safety net, not a calibration.
# That piece is at most 2.6 times the median on true objects (all synthetic
# sets), but clumps of a first pass lift it: 5.4 on 3D tuning seed 1, where
# a floor at a quarter of it cost 2 TP. A collapse like seed 510's before
# the _MIN_DEPTH rule was 52 (4592 / 88).
_COLLAPSE = 10.0
# Step cue (see _step_cut): gradient weight exp(-beta |dt| / typical |dt|),
# band (pixels) on each side of a cut where the brightness step is measured,
# and the largest ncut / step score that is taken as two objects.
_STEP_BETA = 1.0
_STEP_BAND = 3.0
# On the final pieces of synthetic tuning seeds 0-39 (2D), single objects
# score >= 0.111 and 18 of 42 merged multi-object pieces < 0.1; but on the
# DSB 2018 nuclei single nuclei score down to 0.051 (nucleoli and texture
# make steps too), so only the strongest evidence is taken: 0.04 leaves the
# real image unchanged and still splits 7 tuning pieces (2D tuning F1
# 0.914 -> 0.920, held-out 0.880 -> 0.891; 3D pieces never score this low).
_STEP_SCORE = 0.04
# Only parts at least this many typical sizes (area-equivalent) are tried: a
# pair is larger than one typical object, and the extra eigen-solves stay few.
_STEP_MIN_SIZE = 1.1
# Moment test (3D, see _split_moments): a piece whose voxels' 2-means
# clustering leaves less than this fraction of its second moment is two
# objects. For one voxelised ellipsoid (mean radius 6-11 px, axes 0.8-1.2
# times it, whole or clipped by a plane as a neighbour clips it) the fraction
# is 0.66-0.80; for two balls at centre distance 0.7-0.95 times the sum of
# the radii 0.43-0.66 (median 0.46-0.54). On the final pieces of 3D tuning and
# held-out seeds single objects score >= 0.606, 11 of 26 merged pieces < 0.6.
_MOMENT_RATIO = 0.6
# Only pieces at least this many typical sizes (area-equivalent) are tested.
_MOMENT_MIN_SIZE = 0.9
# ...and, conversely, two touching pieces whose union leaves at least this
# fraction (above 0.66, the highest of the two-ball unions above; single
# ellipsoids 5th percentile 0.67) and is at most _JOIN_MAX_SIZE typical sizes
# are one object cut in two: they are joined again.
_JOIN_RATIO = 0.68
_JOIN_MAX_SIZE = 2.0
# A part that only the size rule would cut (pass/hill ratio between
# sensitivity and the raised threshold) is kept whole when it is one convex
# body shaped like one ellipsoid: solidity at least _ONE_BODY_SOLIDITY and
# 2-means leaving at least _ONE_BODY_MOMENT of its second moment. Giant
# single objects of 3D seeds 300 and 301 (3,000-5,800 voxels, 3.4-6.5 times
# the typical size, chopped into up to 7 pieces before) score 0.98-0.995 and
# 0.66-0.74; the final pieces holding several objects of 3D seeds 100-102,
# 300-305, 500-511 and 700-711 all score below 0.963 in solidity.
_ONE_BODY_SOLIDITY = 0.97
_ONE_BODY_MOMENT = 0.66
_ONE_BODY_DIMS = (3,)
# Convex rejoin (see _join_convex): two touching pieces are one object when
# their union fills at least _CONVEX_SOLIDITY of its convex hull, the seam
# between them is at least _CONVEX_SEAM times the smaller piece's
# equivalent diameter (2D) or central section (3D), and the union holds at
# most _CONVEX_MAX_SIZE typical sizes. Measured on the final pieces of tuning
# seeds (2D 0-39, 3D 0-5), pieces of one truth object against pieces of two:
# solidity (hull of pixel centres) 2D 13 over-split pairs median 0.971 vs
# 442 true borders median 0.908, p90 0.961, max 0.988; 3D 3 over-split pairs
# 0.85/0.98/0.99 vs 123 true borders max 0.963 (held-out 3D 224 borders max
# 0.948). Seam: over-split median 1.48 (2D) vs true borders median 0.93, p90
# 1.35 (2D; 3D 1.42-2.07 vs p90 1.44). Neither cue alone separates 2D
# deep overlaps (convex unions); together, 2D tuning F1 0.929 -> 0.937 and
# held-out 100-139 0.908 -> 0.912 (10 joins each), 3D tuning 0.875 -> 0.915,
# held-out 100-111 unchanged (no pair qualifies).
_CONVEX_SOLIDITY = 0.97
_CONVEX_SEAM = 1.4
# Over-split objects up to 3.2 typical sizes were seen (border-clipped large
# ones); no true-border pair passes the two cues at any size.
_CONVEX_MAX_SIZE = 3.5
# Notch cut (2D, see _split_notches): a piece of at least _NOTCH_MIN_SIZE
# typical sizes is cut along the line between two notches of its outline
# (each at least _NOTCH_MIN_DEPTH pixels inside the convex hull) when their
# summed depth is at least _NOTCH_RATIO times the cut's length and the cut
# is at most _NOTCH_SEAM times the smaller side's equivalent diameter, each
# side holding _NOTCH_SMALLEST typical sizes. On the final pieces of 2D
# seeds 500-539 (before this rule), 20 of 55 pieces holding several objects
# had a notch pair scoring >= 0.2, every one cut between two different
# objects, against 3 of 297 single objects; on the DSB 2018 image single
# nuclei with ragged Otsu outlines scored up to 0.36 with seams of 0.92-1.45,
# hence the seam and size conditions.
_NOTCH_MIN_DEPTH = 1.5
_NOTCH_RATIO = 0.3
_NOTCH_SEAM = 1.1
_NOTCH_MIN_SIZE = 1.2
_NOTCH_SMALLEST = 0.35


def check_sensitivity(sensitivity, n_clusters):
    """Validate ``sensitivity``; returns the value to use (None unless auto mode)."""
    if n_clusters != "auto":
        if sensitivity is not None:
            raise ValueError(
                f"sensitivity={sensitivity!r} only applies with n_clusters='auto'; drop it or pass n_clusters='auto'."
            )
        return None
    if sensitivity is None:
        return DEFAULT_SENSITIVITY
    if (
        isinstance(sensitivity, bool)
        or not isinstance(sensitivity, numbers.Real)
        or not (np.isfinite(sensitivity) and 0 <= sensitivity <= 1)
    ):
        raise ValueError(
            f"sensitivity={sensitivity!r} must be a number in [0, 1]; larger splits more, "
            f"{DEFAULT_SENSITIVITY} is the default."
        )
    return float(sensitivity)


def default_min_part(min_size: int, n_spatial: int) -> int:
    """Smallest piece a split may cut off: ``min_size``, at least 10 px (2D) or 30 voxels (3D)."""
    return max(int(min_size), 10 if n_spatial == 2 else 30)


def pixel_edges(node_of_pixel: np.ndarray, offsets: np.ndarray | None = None):
    """Face-neighbour edges between nodes, each once.

    Parameters
    ----------
    node_of_pixel : ndarray of int, spatial shape
        Node number per pixel, -1 outside.
    offsets : ndarray of int, shape (n_components + 1,), optional
        Node ranges of the components. Given, edges between two components
        are left out: regions of a Labels-layer mask touch, yet each is
        segmented on its own.

    Returns
    -------
    heads, tails : ndarray of int64
        Node numbers with ``heads < tails`` (nodes of a component are a
        contiguous range, so edges of component ``c`` are exactly those whose
        head falls in its range).
    axis : ndarray of int8
        Spatial axis of each edge.
    """
    ndim = node_of_pixel.ndim
    heads, tails, axes = [], [], []
    for axis in range(ndim):
        if node_of_pixel.shape[axis] < 2:
            continue
        lo = [slice(None)] * ndim
        hi = [slice(None)] * ndim
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        a = node_of_pixel[tuple(lo)]
        b = node_of_pixel[tuple(hi)]
        both = (a >= 0) & (b >= 0)
        a, b = a[both].astype(np.int64), b[both].astype(np.int64)
        heads.append(np.minimum(a, b))
        tails.append(np.maximum(a, b))
        axes.append(np.full(len(a), axis, dtype=np.int8))
    if not heads:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.int8)
    heads = np.concatenate(heads)
    tails = np.concatenate(tails)
    axes = np.concatenate(axes)
    if offsets is not None:
        same = np.searchsorted(offsets, heads, side="right") == np.searchsorted(offsets, tails, side="right")
        heads, tails, axes = heads[same], tails[same], axes[same]
    order = np.argsort(heads, kind="stable")
    return heads[order], tails[order], axes[order]


def landscape(
    intensity: np.ndarray,
    node_of_pixel: np.ndarray,
    offsets: np.ndarray,
    pixel_of_node: np.ndarray,
    *,
    spacing=None,
    background: float | None = None,
):
    """Per-node height ``h = d * t`` (see the module docstring).

    Parameters
    ----------
    intensity : ndarray of float, spatial shape
        Single-channel intensity (already smoothed if asked for).
    node_of_pixel, offsets, pixel_of_node
        The pixel numbering of :func:`napari_spectral_seg.core.graph.index_pixels`.
    spacing : sequence of float, optional
        Physical pixel size per axis, for the distance transform.
    background : float, optional
        Intensity that counts as "no signal" (the mask threshold when one was
        used). Default: the mean intensity outside the mask, or the
        component's minimum when the mask covers the whole image.

    Returns
    -------
    h : ndarray of float64, shape (n_nodes,)
    t : ndarray of float64, shape (n_nodes,)
        The intensity cue alone.
    """
    inside = node_of_pixel >= 0
    # Distance to the outer boundary: a hole punched into an object by noise
    # in a thresholded mask is not a neck and must not make a pass.
    distance = ndi.distance_transform_edt(ndi.binary_fill_holes(inside), sampling=spacing)
    d = distance.ravel()[pixel_of_node]
    if background is None and not np.all(inside):
        background = float(intensity[~inside].mean())
    # Pixel noise would put fake passes everywhere (a pass is a low line
    # across the object), so the intensity cue is always averaged over about
    # one pixel, inside the mask only so the dark background does not leak
    # into the object's rim (normalised convolution).
    weight = ndi.gaussian_filter(inside.astype(np.float64), _CUE_SIGMA, mode="constant")
    local = ndi.gaussian_filter(np.where(inside, intensity, 0.0), _CUE_SIGMA, mode="constant")
    values = local.ravel()[pixel_of_node] / np.maximum(weight.ravel()[pixel_of_node], 1e-12)
    t = np.ones_like(values)
    for start, stop in zip(offsets[:-1], offsets[1:]):
        v = values[start:stop]
        lo = float(v.min()) if background is None else float(background)
        # The 95th percentile, not the maximum, so one hot pixel does not
        # make the rest of the object look dim.
        hi = float(np.percentile(v, 95))
        if hi - lo > 1e-12 * max(abs(hi), 1.0):
            t[start:stop] = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
    return d * t, t


def _cut_heights(ranks_lo, ranks_hi, edge_h, candidates):
    """Largest edge height among the edges cut by each prefix candidate.

    Prefix ``i`` (the ``i`` lowest-ranked nodes on one side) cuts edge
    ``(lo, hi)`` when ``lo < i <= hi``.
    """
    out = np.zeros(len(candidates))
    if len(edge_h) == 0:
        return out
    step = max(1, _CHUNK_CELLS // len(edge_h))
    for s in range(0, len(candidates), step):
        cand = candidates[s : s + step]
        cut = (ranks_lo[:, None] < cand[None, :]) & (ranks_hi[:, None] >= cand[None, :])
        out[s : s + step] = np.max(np.where(cut, edge_h[:, None], 0.0), axis=0)
    return out


def _sweep_cut(guide, heights, la, lb, m, smallest, eigen_solver, rng):
    """Sweep cuts along the Fiedler vector of the graph weighted by ``guide``.

    Returns the node ranks along the vector, the candidate prefix sizes and,
    per candidate, the smallest pass/hill ratio over the ``heights``
    landscapes; ``(None, None, None)`` when no candidate fits.
    """
    top = guide.max()
    edge_g = np.minimum(guide[la], guide[lb])
    # Squared so passes are much cheaper than hill tops: the Fiedler
    # vector then changes sign across the lowest pass, not across the
    # middle of an elongated object.
    w = (edge_g / top) ** 2 + _WEIGHT_FLOOR
    order, rank = _fiedler_order(w, la, lb, m, eigen_solver, rng)
    r_lo = np.minimum(rank[la], rank[lb])
    r_hi = np.maximum(rank[la], rank[lb])
    candidates = np.arange(smallest, m - smallest + 1)
    if len(candidates) == 0:
        return None, None, None
    if len(candidates) > _MAX_CANDIDATES:
        candidates = np.unique(np.linspace(smallest, m - smallest, _MAX_CANDIDATES).round().astype(np.int64))
    ratio = np.full(len(candidates), np.inf)
    for height in heights:
        sorted_h = height[order]
        hill_lo = np.maximum.accumulate(sorted_h)[candidates - 1]
        hill_hi = np.maximum.accumulate(sorted_h[::-1])[::-1][candidates]
        passes = _cut_heights(r_lo, r_hi, np.minimum(height[la], height[lb]), candidates)
        ratio = np.minimum(ratio, passes / np.maximum(np.minimum(hill_lo, hill_hi), 1e-12))
    return rank, candidates, ratio


def _local_edges(nodes, n_nodes, a, b):
    """The edges ``(a, b)`` that join two of ``nodes``, renumbered ``0..len(nodes)-1``."""
    local = np.full(n_nodes, -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    la, lb = local[a], local[b]
    inside = (la >= 0) & (lb >= 0)
    return la[inside], lb[inside]


def _cut_into_pieces(nodes, side, la, lb, min_part):
    """Connected pieces of ``nodes`` once the edges between ``side`` 0 and 1 are cut.

    Pieces below ``min_part`` rejoin a neighbour. Returns the pieces' node
    arrays, or None when the cut leaves a single piece.
    """
    same = side[la] == side[lb]
    n_pieces, piece = connected_components(
        sp.coo_array((np.ones(int(same.sum())), (la[same], lb[same])), shape=(len(nodes),) * 2), directed=False
    )
    piece = _merge_small_pieces(piece, n_pieces, la, lb, min_part)
    if piece.max() == 0:
        return None
    return [nodes[piece == p] for p in range(piece.max() + 1)]


def _labels_of_pieces(pieces, like):
    """Labels ``0..K-1`` (the shape and dtype of ``like``) from a list of node arrays."""
    out = np.empty_like(like)
    for i, nodes in enumerate(pieces):
        out[nodes] = i
    return out


def _merge_small_pieces(piece, n_pieces, a, b, min_part):
    """Give pieces smaller than ``min_part`` to the neighbour they share most edges with."""
    for _ in range(n_pieces):
        sizes = np.bincount(piece, minlength=n_pieces)
        small = np.flatnonzero((sizes > 0) & (sizes < min_part))
        if len(small) == 0 or np.count_nonzero(sizes) <= 1:
            break
        p = small[np.argmin(sizes[small])]
        pa, pb = piece[a], piece[b]
        touching = np.concatenate([pb[(pa == p) & (pb != p)], pa[(pb == p) & (pa != p)]])
        if len(touching) == 0:
            break
        piece[piece == p] = np.bincount(touching).argmax()
    _, piece = np.unique(piece, return_inverse=True)
    return piece


def _unit(spacing, ndim):
    """Smallest pixel size (1 without ``spacing``): the step of the distance transform."""
    return 1.0 if spacing is None else float(np.min(np.broadcast_to(np.asarray(spacing, dtype=float), (ndim,))))


def _part_distance(part, coords, spacing):
    """Distance to the boundary of one part alone (its own distance transform).

    Recomputed per part because after a cut the cut line is a boundary too:
    an object in the middle of a clump has no neck in the clump's distance
    transform, but once its neighbours are cut away its own shape shows it.
    """
    local, box = _box_mask(coords[part])
    return ndi.distance_transform_edt(ndi.binary_fill_holes(box), sampling=spacing)[tuple(local.T)]


def _part_heights(part, coords, t, spacing):
    """Landscape of one part: its own distance transform times the intensity cue."""
    return _part_distance(part, coords, spacing) * t[part]


def _relative_size(size, typical, ndim):
    """Size relative to the typical one, as an area ratio in 2D and 3D alike.

    Volumes grow as the cube of the radius, areas as the square: a 3D object
    of 1.2 times the typical radius is 1.73 times the typical volume but only
    1.44 times in 2D. Converting to ``(size / typical) ** (2 / ndim)`` makes
    the size thresholds mean the same radius excess in both.
    """
    if typical is None or typical <= 0:
        return np.zeros_like(np.asarray(size, dtype=float))
    return (np.asarray(size, dtype=float) / typical) ** (2.0 / ndim)


def _box(coords):
    """Local box coordinates (1 pixel padding) and its shape, for per-part transforms."""
    local = coords - coords.min(axis=0) + 1
    return local, tuple(local.max(axis=0) + 2)


def _box_mask(coords):
    """Local box coordinates (1 pixel padding, so the box border counts as outside) and the part's mask in it."""
    local, shape = _box(coords)
    box = np.zeros(shape, dtype=bool)
    box[tuple(local.T)] = True
    return local, box


def _axis_scale(spacing, ndim):
    """Physical size of a pixel step per axis (ones without ``spacing``)."""
    return np.ones(ndim) if spacing is None else np.asarray(spacing, dtype=float)


def _fiedler_order(w, la, lb, m, eigen_solver, rng):
    """Node ranks along the Fiedler vector of the graph with edge weights ``w``."""
    graph = sp.coo_array(
        (np.concatenate([w, w]), (np.concatenate([la, lb]), np.concatenate([lb, la]))), shape=(m, m)
    ).tocsr()
    _, embedding = laplacian_eigenvectors(graph, 2, solver=eigen_solver, rng=rng)
    order = np.argsort(embedding[:, 1], kind="stable")
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    return order, rank


def _normalised_cuts(w, rank, order, la, lb, candidates):
    """Normalised-cut value ``cut (1/vol A + 1/vol B)`` of every prefix candidate.

    Prefix ``i`` cuts edge ``(lo, hi)`` when ``lo < i <= hi``: a difference
    array over ranks gives all cut weights in one cumulative sum.
    """
    m = len(rank)
    r_lo = np.minimum(rank[la], rank[lb])
    r_hi = np.maximum(rank[la], rank[lb])
    diff = np.bincount(r_lo + 1, w, m + 1) - np.bincount(r_hi + 1, w, m + 1)
    cut = np.cumsum(diff)[candidates]
    degree = np.bincount(la, w, m) + np.bincount(lb, w, m)
    volume = np.cumsum(degree[order])
    vol_a = volume[candidates - 1]
    return cut * (1.0 / np.maximum(vol_a, 1e-12) + 1.0 / np.maximum(volume[-1] - vol_a, 1e-12))


def _seam_step(side, coords, t, spacing):
    """Brightness step across a cut: difference of the two sides' median cue near the cut.

    Only a band of ``_STEP_BAND`` pixels on each side counts, so the dome
    profile of each object far from the seam does not dilute the step.
    """
    local, shape = _box(coords)
    unit = 1.0 if spacing is None else float(np.min(spacing))
    steps = []
    for s in (False, True):
        other = np.ones(shape, dtype=bool)
        other[tuple(local[side != s].T)] = False  # zeros at the other side's pixels
        near = ndi.distance_transform_edt(other, sampling=spacing)[tuple(local[side == s].T)] <= _STEP_BAND * unit
        steps.append(np.median(t[side == s][near]) if np.any(near) else np.median(t[side == s]))
    return abs(steps[0] - steps[1])


def _step_cut(part_coords, t, la, lb, smallest, *, spacing, eigen_solver, rng):
    """Best cut of one part along an intensity step, and its score (lower: stronger evidence).

    Parameters
    ----------
    part_coords : ndarray of int, shape (m, ndim)
    t : ndarray of float, shape (m,)
        Intensity cue of the part's nodes.
    la, lb : ndarray of int
        Edges between the part's local nodes.
    smallest : int
        Fewest nodes on either side of a candidate cut.

    Returns
    -------
    score : float
        ``ncut / step``: the normalised-cut value of the cut (short seam,
        large sides) over the brightness step across it; ``inf`` if no cut fits.
    side : ndarray of bool, shape (m,) or None
    """
    m = len(t)
    candidates = np.arange(smallest, m - smallest + 1)
    if len(candidates) == 0 or len(la) == 0:
        return np.inf, None
    h = _part_distance(np.arange(m), part_coords, spacing) * t
    if h.max() <= 0:
        return np.inf, None
    gap = np.abs(t[la] - t[lb])
    # The typical cue difference between neighbours (noise plus texture) is
    # the unit of the gradient: a seam is where neighbours differ far more.
    scale = float(np.median(gap)) + 1e-6
    # A shoulder pair has no neck, so the shape weights alone put no cheap
    # seam between the two; the gradient factor makes the intensity step
    # between a bright and a dim object cheap to cut.
    w = (np.minimum(h[la], h[lb]) / h.max()) ** 2 * np.exp(-_STEP_BETA * gap / scale) + _WEIGHT_FLOOR
    order, rank = _fiedler_order(w, la, lb, m, eigen_solver, rng)
    ncut = _normalised_cuts(w, rank, order, la, lb, candidates)
    best = int(np.argmin(ncut))
    side = rank >= candidates[best]
    step = _seam_step(side, part_coords, t, spacing)
    return float(ncut[best]) / max(step, 1e-6), side


def split_component(
    h: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    coords: np.ndarray | None = None,
    cue: np.ndarray | None = None,
    spacing=None,
    sensitivity: float = DEFAULT_SENSITIVITY,
    min_part: int = 10,
    eigen_solver: str = "auto",
    rng: np.random.Generator | None = None,
    max_segments: int = 1000,
    object_size: float | None = None,
):
    """Split one connected component into objects by recursive spectral bisection.

    Parameters
    ----------
    h : ndarray of float, shape (n,)
        Landscape height per node (:func:`landscape`).
    a, b : ndarray of int, shape (n_edges,)
        Edges between local nodes ``0..n-1``.
    coords : ndarray of int, shape (n, ndim), optional
        Pixel coordinates of the nodes. With ``cue``, each part after the
        first cut gets its own distance transform (see ``_part_heights``).
    cue : ndarray of float, shape (n,), optional
        Intensity cue ``t`` in [0, 1] of :func:`landscape`.
    spacing : sequence of float, optional
        Pixel size per axis, for those distance transforms.
    sensitivity : float
        A cut is made where ``pass height / lower hill height`` is below it.
        Larger values split more (0 never splits; 1 splits nearly anything).
    min_part : int
        No piece smaller than this many pixels is split off.
    eigen_solver : str
        Passed to :func:`laplacian_eigenvectors`.
    rng : numpy.random.Generator, optional
        Start vectors of the eigen-solver.
    max_segments : int
        Safety bound on the number of pieces.
    object_size : float, optional
        Typical object size in pixels. A part larger than 1.5 times it is
        probably several objects, so the threshold rises from 0.93 (scaled
        by ``sensitivity / 0.85``; at 1.5x) to 1.0 (at 2.5x and above), while both
        sides of such a cut must hold at least 0.4 times it.

    Returns
    -------
    labels : ndarray of int64, shape (n,)
        Object of each node, ``0..K-1``.
    ratios : list of float
        The pass/hill ratio of every bisection tried (accepted or not),
        for diagnostics.
    """
    rng = np.random.default_rng() if rng is None else rng
    n = len(h)
    ndim = 2 if coords is None else coords.shape[1]
    labels = np.zeros(n, dtype=np.int64)
    ratios = []
    final = []
    stack = [np.arange(n)]
    while stack:
        part = stack.pop()
        m = len(part)
        threshold, smallest = sensitivity, min_part
        relative = _relative_size(m, object_size, ndim)
        if relative > _LARGE_PART:
            excess = np.clip((relative - _LARGE_PART) / _LARGE_PART_RAMP, 0.0, 1.0)
            threshold = sensitivity + (max(_LARGE_PART_SENSITIVITY, sensitivity) - sensitivity) * excess
            floor = min(
                _LARGE_PART_FLOOR * sensitivity / DEFAULT_SENSITIVITY, max(_LARGE_PART_SENSITIVITY, sensitivity)
            )
            threshold = max(threshold, floor)
            smallest = max(min_part, int(_LARGE_PART_SMALLEST * object_size))
        if m < 2 * smallest or len(final) + len(stack) + 1 >= max_segments:
            final.append(part)
            continue
        local = np.full(n, -1, dtype=np.int64)
        local[part] = np.arange(m)
        la, lb = local[a], local[b]
        keep = (la >= 0) & (lb >= 0)
        la, lb = la[keep], lb[keep]
        hp = h[part] if coords is None or cue is None or m == n else _part_heights(part, coords, cue, spacing)
        top = hp.max()
        if top <= 0 or len(la) == 0:
            final.append(part)
            continue
        # The shape alone is a second landscape: a dim object beside a bright
        # one is a low hill in h, and the bright one's light blurred across
        # the neck raises the pass almost to it; in d the neck still shows.
        heights = [hp] if coords is None else [hp, _part_distance(part, coords, spacing)]
        # In a part at most a couple of pixels thick the distance transform
        # only takes the values 1, sqrt 2, sqrt 3, so the pass/hill ratio
        # measures pixel steps (1 / sqrt 2 = 0.71), not necks: such a sheet,
        # left over along an earlier cut, was chipped into min_part pieces.
        if coords is not None and heights[1].max() < _MIN_DEPTH * _unit(spacing, ndim):
            final.append(part)
            continue
        rank, candidates, ratio = _sweep_cut(hp, heights, la, lb, m, smallest, eigen_solver, rng)
        if rank is None:
            final.append(part)
            continue
        best = int(np.argmin(ratio))
        best_ratio, cut = float(ratio[best]), int(candidates[best])
        ratios.append(best_ratio)
        if best_ratio >= threshold:
            final.append(part)
            continue
        if best_ratio >= sensitivity and ndim in _ONE_BODY_DIMS and _is_one_convex_body(coords[part], spacing):
            # Cut only because the part is oversized, yet it is one convex
            # ellipsoid-like body: a large object, not a clump.
            final.append(part)
            continue
        side = (rank >= cut).astype(np.int64)
        # A level set of the Fiedler vector can be in several pieces; each
        # connected piece is its own candidate object, tiny ones rejoin.
        same = side[la] == side[lb]
        n_pieces, piece = connected_components(
            sp.coo_array((np.ones(int(same.sum())), (la[same], lb[same])), shape=(m, m)), directed=False
        )
        piece = _merge_small_pieces(piece, n_pieces, la, lb, min_part)
        if piece.max() == 0:
            final.append(part)
            continue
        for p in range(piece.max() + 1):
            stack.append(part[piece == p])
    for i, part in enumerate(final):
        labels[part] = i
    return labels, ratios


def iter_auto_labels(
    intensity: np.ndarray,
    index,
    *,
    spacing=None,
    background: float | None = None,
    sensitivity: float = DEFAULT_SENSITIVITY,
    min_part: int = 10,
    eigen_solver: str = "auto",
    random_state: int = 0,
    object_size: float | None = None,
) -> Generator[tuple[float, str], None, tuple[np.ndarray, list]]:
    """Decide and cut every connected component; yields ``(fraction, message)``.

    Parameters
    ----------
    intensity : ndarray of float, spatial shape
        Single-channel (channel-mean) intensity, smoothed if asked for.
    index : PixelIndex
        From :func:`napari_spectral_seg.core.graph.index_pixels`.
    spacing, background
        See :func:`landscape`.
    sensitivity, min_part, eigen_solver
        See :func:`split_component`.
    object_size : float, optional
        Typical object size in pixels (see :func:`split_component`);
        default: the median size of the pieces of a first pass without it,
        re-estimated after each size pass (see the module docstring).
    random_state : int
        Seed; component ``c`` uses ``default_rng([random_state, c])``, so
        results do not depend on the order components are processed.

    Yields
    ------
    (float, str)
        Fraction of nodes done in [0, 1] and a message.

    Returns
    -------
    node_label : ndarray of int64, shape (n_nodes,)
        ``1..M``, unique over the whole image.
    ratios : list of list of float
        Per component, the pass/hill ratios of the bisections tried.
    """
    h, cue = landscape(
        intensity,
        index.node_of_pixel,
        index.offsets,
        index.pixel_of_node,
        spacing=spacing,
        background=background,
    )
    heads, tails, _ = pixel_edges(index.node_of_pixel, index.offsets)
    coords = np.stack(np.unravel_index(index.pixel_of_node, index.node_of_pixel.shape), axis=1)
    edge_start = np.searchsorted(heads, index.offsets)
    node_label = np.zeros(index.n_nodes, dtype=np.int64)
    all_ratios = []
    n_comp = index.n_components
    last_yield = time.perf_counter()
    pieces = []  # per component: local labels 0..K-1
    for comp in range(n_comp):
        start, stop = int(index.offsets[comp]), int(index.offsets[comp + 1])
        e0, e1 = edge_start[comp], edge_start[comp + 1]
        common = dict(
            coords=coords[start:stop],
            cue=cue[start:stop],
            spacing=spacing,
            sensitivity=sensitivity,
            min_part=min_part,
            eigen_solver=eigen_solver,
            rng=np.random.default_rng([random_state, comp]),
        )
        labels, ratios = split_component(h[start:stop], heads[e0:e1] - start, tails[e0:e1] - start, **common)
        pieces.append(labels)
        all_ratios.append(ratios)
        now = time.perf_counter()
        if now - last_yield > _MIN_YIELD_INTERVAL:
            last_yield = now
            yield 0.8 * stop / index.n_nodes, f"component {comp + 1} of {n_comp}"
    # Second pass, calibrated on size: the first pass's pieces are mostly
    # single objects, so their median size is the typical object size, and a
    # piece far larger than that is re-examined with a laxer threshold.
    ndim = coords.shape[1]
    rounds = 1 if object_size is not None else _CALIBRATION_ROUNDS
    for round_ in range(rounds):
        typical = float(object_size) if object_size is not None else _typical_size(pieces, min_part)
        changed = False
        for comp in range(n_comp):
            start, stop = int(index.offsets[comp]), int(index.offsets[comp + 1])
            e0, e1 = edge_start[comp], edge_start[comp + 1]
            labels, ratios = _split_oversized(
                pieces[comp],
                heads[e0:e1] - start,
                tails[e0:e1] - start,
                coords[start:stop],
                cue[start:stop],
                typical,
                spacing=spacing,
                sensitivity=sensitivity,
                min_part=min_part,
                eigen_solver=eigen_solver,
                seed=[random_state, comp, round_],
            )
            all_ratios[comp].extend(ratios)
            changed |= labels.max() != pieces[comp].max()
            pieces[comp] = labels
            now = time.perf_counter()
            if now - last_yield > _MIN_YIELD_INTERVAL:
                last_yield = now
                done = (round_ + stop / index.n_nodes) / rounds
                yield 0.8 + 0.2 * done, f"size check {round_ + 1}, component {comp + 1} of {n_comp}"
        # The median of the first pass counts unsplit clumps as objects; once
        # they are cut the median drops and other clumps stand out as oversized.
        if not changed:
            break
    next_label = 1
    for comp in range(n_comp):
        start, stop = int(index.offsets[comp]), int(index.offsets[comp + 1])
        e0, e1 = edge_start[comp], edge_start[comp + 1]
        labels = pieces[comp]
        if typical > 0 and _STEP_SCORE > 0:
            labels = _split_steps(
                labels,
                heads[e0:e1] - start,
                tails[e0:e1] - start,
                coords[start:stop],
                cue[start:stop],
                typical,
                spacing=spacing,
                min_part=min_part,
                eigen_solver=eigen_solver,
                seed=[random_state, comp, rounds],
            )
        if typical > 0 and ndim == 2 and _NOTCH_RATIO > 0:
            labels = _split_notches(
                labels,
                heads[e0:e1] - start,
                tails[e0:e1] - start,
                coords[start:stop],
                typical,
                spacing=spacing,
                min_part=min_part,
            )
        if typical > 0 and ndim == 3 and _MOMENT_RATIO > 0:
            labels = _split_moments(
                labels,
                heads[e0:e1] - start,
                tails[e0:e1] - start,
                coords[start:stop],
                typical,
                spacing=spacing,
                min_part=min_part,
            )
            labels = _join_moments(
                labels, heads[e0:e1] - start, tails[e0:e1] - start, coords[start:stop], typical, spacing=spacing
            )
        if typical > 0 and labels.max() > 0:
            # A sliver cut off an object (far below the typical size) is a
            # false cut, not an object: it rejoins the neighbour it shares
            # the longest border with. Whole small components are kept.
            sliver = typical * _SLIVER ** (ndim / 2.0)
            labels = _merge_small_pieces(
                labels.copy(), int(labels.max()) + 1, heads[e0:e1] - start, tails[e0:e1] - start, max(sliver, min_part)
            )
        if typical > 0 and labels.max() > 0:
            labels = _join_convex(labels, heads[e0:e1] - start, tails[e0:e1] - start, coords[start:stop], typical)
        node_label[start:stop] = next_label + labels
        next_label += int(labels.max()) + 1
    yield 1.0, "size check done"
    return node_label, all_ratios


def _typical_size(pieces, min_part):
    """Median size of the pieces, guarded against a swarm of fragments.

    Parameters
    ----------
    pieces : list of ndarray of int
        Per component, the piece label of each node (``0..K-1``).
    min_part : int
        Pieces below this many pixels are specks, never objects.

    Returns
    -------
    float
        The median size of the pieces of at least ``min_part`` pixels, but
        at least ``1 / _COLLAPSE`` of the size of the piece holding the
        median pixel; 0 when there are none.
    """
    sizes = np.concatenate([np.bincount(p) for p in pieces]) if pieces else np.zeros(0)
    # Specks below min_part (noise, when min_size is 0) are not objects and
    # would drag the median down until every object looked oversized.
    if np.any(sizes >= min_part):
        sizes = sizes[sizes >= min_part]
    if len(sizes) == 0:
        return 0.0
    # A count median lets many small fragments outvote the few pieces that
    # hold the mask: on 3D seed 510 nine chips of 30-88 voxels put it at 88
    # voxels for objects of ~1,700, and every object then looked oversized.
    # The piece holding the median pixel (size-weighted median) ignores
    # fragments, but clumps lift it (a first pass leaves them whole), so it
    # is only a floor, far enough below to change nothing unless the
    # median has collapsed (see _COLLAPSE).
    order = np.sort(sizes)
    mass = np.cumsum(order)
    weighted = float(order[np.searchsorted(mass, mass[-1] / 2.0)])
    return max(float(np.median(sizes)), weighted / _COLLAPSE)


def _split_oversized(labels, a, b, coords, cue, typical, *, spacing, sensitivity, min_part, eigen_solver, seed):
    """Split again the pieces of one component that are much larger than ``typical``.

    Only the oversized pieces are looked at; the rest of the component keeps
    its pieces (and costs nothing more). Returns the new labels ``0..K-1``
    and the ratios of the bisections tried.
    """
    sizes = np.bincount(labels)
    ndim = coords.shape[1]
    oversized = np.flatnonzero(_relative_size(sizes, typical, ndim) > _LARGE_PART) if typical > 0 else []
    if len(oversized) == 0:
        return labels, []
    labels = labels.copy()
    next_piece = int(labels.max()) + 1
    all_ratios = []
    for p in oversized:
        nodes = np.flatnonzero(labels == p)
        la, lb = _local_edges(nodes, len(labels), a, b)
        sub_coords, sub_cue = coords[nodes], cue[nodes]
        sub, ratios = split_component(
            _part_heights(np.arange(len(nodes)), sub_coords, sub_cue, spacing),
            la,
            lb,
            coords=sub_coords,
            cue=sub_cue,
            spacing=spacing,
            sensitivity=sensitivity,
            min_part=min_part,
            eigen_solver=eigen_solver,
            rng=np.random.default_rng([*seed, int(p)]),
            object_size=typical,
        )
        all_ratios.extend(ratios)
        labels[nodes[sub > 0]] = next_piece + sub[sub > 0] - 1
        next_piece += int(sub.max())
    _, labels = np.unique(labels, return_inverse=True)
    return labels, all_ratios


def _split_recursively(labels, a, b, min_part, worth_trying, propose_side):
    """Split pieces, and their parts again, while a rule proposes a cut.

    ``worth_trying(nodes)`` is a cheap pre-test; ``propose_side(nodes, la,
    lb)`` (``la, lb``: the piece's edges in local numbering) returns a 0/1
    side per node, or None to keep the piece. At most about 1000 pieces are
    made, a guard against a rule that keeps cutting. Returns labels
    ``0..K-1``.
    """
    stack = [np.flatnonzero(labels == p) for p in range(int(labels.max()) + 1)]
    final = []
    while stack:
        nodes = stack.pop()
        if not worth_trying(nodes) or len(final) + len(stack) >= 1000:
            final.append(nodes)
            continue
        la, lb = _local_edges(nodes, len(labels), a, b)
        side = propose_side(nodes, la, lb)
        pieces = None if side is None else _cut_into_pieces(nodes, side, la, lb, min_part)
        if pieces is None:
            final.append(nodes)
            continue
        stack.extend(pieces)
    return _labels_of_pieces(final, labels)


def _split_steps(labels, a, b, coords, cue, typical, *, spacing, min_part, eigen_solver, seed):
    """Cut the pieces of one component along a strong intensity step (see ``_step_cut``).

    A small object bulging off a larger one with no neck in the mask makes
    no pass in ``h`` or ``d``; when the two differ in brightness the seam
    between them is a step the pass/hill rule cannot see. Each side must
    hold ``_LARGE_PART_SMALLEST`` typical sizes; pieces cut here are tried
    again. Returns the new labels ``0..K-1``.
    """
    smallest = max(min_part, int(_LARGE_PART_SMALLEST * typical))
    rng = np.random.default_rng(seed)

    def worth_trying(nodes):
        return len(nodes) >= 2 * smallest and _relative_size(len(nodes), typical, coords.shape[1]) >= _STEP_MIN_SIZE

    def step_side(nodes, la, lb):
        score, side = _step_cut(
            coords[nodes], cue[nodes], la, lb, smallest, spacing=spacing, eigen_solver=eigen_solver, rng=rng
        )
        return side if score < _STEP_SCORE else None

    return _split_recursively(labels, a, b, min_part, worth_trying, step_side)


def _two_means(x):
    """2-means of points ``x`` (n, d): labels and the fraction of the second moment left.

    Started from the split of the principal axis at the mean, then Lloyd
    iterations; deterministic.
    """
    centred = x - x.mean(axis=0)
    total = float((centred**2).sum())
    if total <= 0:
        return np.zeros(len(x), dtype=np.int64), 1.0
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    side = (centred @ vt[0] > 0).astype(np.int64)
    for _ in range(50):
        if side.min() == side.max():
            return np.zeros(len(x), dtype=np.int64), 1.0
        centres = np.stack([x[side == k].mean(axis=0) for k in (0, 1)])
        dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        new = np.argmin(dist, axis=1)
        if np.array_equal(new, side):
            break
        side = new
    left = float(np.min(dist, axis=1).sum())
    return side, left / total


def _split_moments(labels, a, b, coords, typical, *, spacing, min_part):
    """Split pieces of one component whose voxels form two compact clusters (3D).

    Deep overlaps of two objects, and pairs of small objects the size of one
    typical object, can leave no pass in the landscape, but their union is
    not shaped like one ellipsoid: 2-means of the voxel positions (physical
    units) removes far more of the second moment than for any single
    ellipsoid (``_MOMENT_RATIO``). Both halves must hold
    ``_LARGE_PART_SMALLEST`` typical sizes; parts are tested again. Returns
    the new labels ``0..K-1``.
    """
    ndim = coords.shape[1]
    smallest = max(min_part, int(_LARGE_PART_SMALLEST * typical))
    scale = _axis_scale(spacing, ndim)

    def worth_trying(nodes):
        return len(nodes) >= 2 * smallest and _relative_size(len(nodes), typical, ndim) >= _MOMENT_MIN_SIZE

    def two_cluster_side(nodes, la, lb):
        x = coords[nodes] * scale
        side, left = _two_means(x)
        if not left < _MOMENT_RATIO or np.bincount(side, minlength=2).min() < smallest:
            return None
        # Two objects split into two ellipsoid-like halves; a fragment of one
        # object (a slab or wedge left by earlier cuts) scores low too, but
        # its halves are still flat.
        if min(_two_means(x[side == k])[1] for k in (0, 1)) < _MOMENT_RATIO:
            return None
        return side

    return _split_recursively(labels, a, b, min_part, worth_trying, two_cluster_side)


def _join_greedily(labels, a, b, score, threshold):
    """Join touching pieces, the best-scoring pair first, while a pair scores ``>= threshold``.

    ``score(labels, sizes, p, q)`` rates the union of pieces ``p`` and ``q``
    (None: not a candidate). Returns labels ``0..K-1``.
    """
    labels = labels.copy()
    for _ in range(int(labels.max())):
        la, lb = labels[a], labels[b]
        cross = la != lb
        pairs = np.unique(
            np.stack([np.minimum(la[cross], lb[cross]), np.maximum(la[cross], lb[cross])], axis=1), axis=0
        )
        sizes = np.bincount(labels)
        best, best_pair = threshold, None
        for p, q in pairs:
            value = score(labels, sizes, p, q)
            if value is not None and value >= best:
                best, best_pair = value, (p, q)
        if best_pair is None:
            break
        labels[labels == best_pair[1]] = best_pair[0]
        _, labels = np.unique(labels, return_inverse=True)
    return labels


def _join_moments(labels, a, b, coords, typical, *, spacing):
    """Join touching pieces whose union is shaped like one ellipsoid (3D; see ``_JOIN_RATIO``).

    The recursive cuts sometimes halve one object along a dim texture
    valley; the halves' union then leaves as much second moment to a 2-means
    split as one ellipsoid does, while two touching objects leave less.
    Greedy: the most ellipsoid-like union first, then again. Returns labels
    ``0..K-1``.
    """
    ndim = coords.shape[1]
    scale = _axis_scale(spacing, ndim)
    x = coords * scale

    def moment_left(labels, sizes, p, q):
        if _relative_size(sizes[p] + sizes[q], typical, ndim) > _JOIN_MAX_SIZE:
            return None
        return _two_means(x[(labels == p) | (labels == q)])[1]

    return _join_greedily(labels, a, b, moment_left, _JOIN_RATIO)


def _solidity(x):
    """Pixels of a set over the pixels inside its convex hull (1 for a convex shape).

    The hull is taken over the pixel centres and the box's pixel centres
    inside it are counted, so digitisation does not bias the ratio with
    size. A set clipped by the image border stays convex: the border cuts a
    convex shape along a plane. A ratio of pixel counts needs no
    ``spacing``: scaling the axes keeps hulls hulls and ratios alike.
    """
    _, box = _box_mask(x)
    hull = _hull_mask(box)
    if hull is None:  # flat sets (one pixel thick): no hull volume
        return 1.0
    return float(len(x) / max(int(hull.sum()), 1))


def _is_one_convex_body(x, spacing):
    """Whether pixels ``x`` (n, ndim) form one convex, ellipsoid-like body (see ``_ONE_BODY_SOLIDITY``)."""
    if _two_means(x * _axis_scale(spacing, x.shape[1]))[1] < _ONE_BODY_MOMENT:
        return False
    return _solidity(x) >= _ONE_BODY_SOLIDITY


def _hull_mask(box):
    """Pixels of ``box``'s grid whose centres lie in the convex hull of its True pixels (None if flat)."""
    from scipy.spatial import ConvexHull, Delaunay, QhullError

    # Only the rim spans the hull; interior pixels add nothing but cost.
    rim = np.argwhere(box & ~ndi.binary_erosion(box)).astype(float)
    try:
        hull = ConvexHull(rim)
        # Point location in a triangulation of the hull's corners: memory
        # linear in the box (a test against every facet at once needed
        # voxels x facets, 68 GiB for a ball of radius 60).
        cells = Delaunay(rim[hull.vertices])
    except QhullError:
        return None
    grid = np.argwhere(np.ones(box.shape, dtype=bool)).astype(float)
    inside = cells.find_simplex(grid, tol=1e-9) >= 0
    return inside.reshape(box.shape)


def _seam_ratio(labels, a, b, ndim, p, q):
    """Faces cut between pieces ``p`` and ``q`` over the smaller piece's cross-section.

    The cross-section is the diameter of the smaller piece's equivalent disc
    (2D) or the central section of its equivalent ball (3D). A cut through
    one object runs from side to side of it (ratio 1.4-2); two objects meet
    at a neck narrower than either (median 0.9).
    """
    la, lb = labels[a], labels[b]
    n_seam = int(np.count_nonzero(((la == p) & (lb == q)) | ((la == q) & (lb == p))))
    small = min(int(np.count_nonzero(labels == p)), int(np.count_nonzero(labels == q)))
    if ndim == 2:
        section = 2.0 * np.sqrt(small / np.pi)
    else:
        section = np.pi * (3.0 * small / (4.0 * np.pi)) ** (2.0 / 3.0)
    return n_seam / max(section, 1e-12)


def _join_convex(labels, a, b, coords, typical):
    """Join touching pieces whose union is one convex object cut in two (see ``_CONVEX_SOLIDITY``).

    A large object, often clipped by the image border, is cut by the
    oversized rule although no pass divides it: its pieces meet along a
    seam as wide as the object, and their union is convex. Two touching
    objects meet at a neck (a narrow seam) or make a dent in the union's
    outline. Greedy: the most convex qualifying union first, then again.
    Returns labels ``0..K-1``.
    """
    ndim = coords.shape[1]

    def solidity_of_union(labels, sizes, p, q):
        # The cheap tests first: the hull is the costly cue.
        if _relative_size(sizes[p] + sizes[q], typical, ndim) > _CONVEX_MAX_SIZE:
            return None
        if _seam_ratio(labels, a, b, ndim, p, q) < _CONVEX_SEAM:
            return None
        return _solidity(coords[(labels == p) | (labels == q)])

    return _join_greedily(labels, a, b, solidity_of_union, _CONVEX_SOLIDITY)


def _notch_cut(x, smallest, spacing=None):
    """The best straight cut between two concave notches of a 2D piece, and its cues.

    Parameters
    ----------
    x : ndarray of int, shape (m, 2)
        Pixel coordinates of the piece.
    smallest : int
        Fewest pixels on either side of the cut.
    spacing : (float, float), optional
        Physical pixel size per axis.

    Returns
    -------
    depth_ratio : float
        Summed depth of the two notches (distance to the convex hull's edge)
        over the cut's length; 0 when no cut qualifies.
    seam : float
        The cut's length over the equivalent-disc diameter of the smaller side.
    side : ndarray of bool, shape (m,), or None
        Which side of the line through the two notches each pixel is on.
    """
    scale = _axis_scale(spacing, 2)
    local, box = _box_mask(x)
    shape = box.shape
    # A hole (a dark spot inside a nucleus) is not a notch of the outline.
    box = ndi.binary_fill_holes(box)
    hull = _hull_mask(box)
    if hull is None:
        return 0.0, np.inf, None
    depth = ndi.distance_transform_edt(hull, sampling=scale)
    notches, n = ndi.label(hull & ~box)
    if n < 2:
        return 0.0, np.inf, None
    # Each notch's deepest point on the piece's outline: where a cut starts.
    near = ndi.grey_dilation(notches, size=(3, 3))
    outline = box & (near > 0)
    ids = near[outline]
    points = np.argwhere(outline)
    found = np.unique(ids)
    order = np.lexsort((-depth[outline], ids))
    first = order[np.searchsorted(ids[order], found)]
    tips, tip_depth = points[first], depth[outline][first]
    deep = tip_depth >= _NOTCH_MIN_DEPTH * float(scale.min())
    tips, tip_depth = tips[deep], tip_depth[deep]
    area = float(np.prod(scale))
    i, j = np.triu_indices(len(tips), k=1)
    length = np.hypot(*((tips[j] - tips[i]) * scale).T) if len(i) else np.zeros(0)
    ratio = (tip_depth[i] + tip_depth[j]) / np.maximum(length, 1e-12)
    # Best pair first: the first one that cuts the piece properly is the
    # answer, so the costly side test runs once in the usual case.
    for k in np.argsort(-ratio, kind="stable"):
        if length[k] < 1.0:
            continue
        delta = (tips[j[k]] - tips[i[k]]) * scale
        # Side of the line through the two tips (physical coordinates).
        rel = (local - tips[i[k]]) * scale
        side = rel[:, 0] * delta[1] - rel[:, 1] * delta[0] > 0
        n_side = int(side.sum())
        small = min(n_side, len(side) - n_side)
        if small < smallest:
            continue
        # The line must cut the piece in exactly two pieces (a line across
        # a bent piece can cut it elsewhere too).
        halves = np.zeros(shape, dtype=np.int8)
        halves[tuple(local.T)] = np.where(side, 1, 2)
        if any(ndi.label(halves == h)[1] != 1 for h in (1, 2)):
            continue
        seam = float(length[k]) / (2.0 * np.sqrt(small * area / np.pi))
        return float(ratio[k]), seam, side
    return 0.0, np.inf, None


def _split_notches(labels, a, b, coords, typical, *, spacing, min_part):
    """Cut 2D pieces between two deep concave notches of their outline (see ``_NOTCH_RATIO``).

    Lobes of a clump can leave no pass in the landscape: in a clump of
    three or four nuclei the distance transform's ridge runs through the
    junction, and a dim lobe beside a bright one is a shoulder, not a hill.
    The outline still shows where two objects meet: a notch on each side of
    a neck narrower than either object. Parts are tested again. Returns the
    new labels ``0..K-1``.
    """
    smallest = max(min_part, int(_NOTCH_SMALLEST * typical))

    def worth_trying(nodes):
        return len(nodes) >= 2 * smallest and _relative_size(len(nodes), typical, 2) >= _NOTCH_MIN_SIZE

    def notch_side(nodes, la, lb):
        ratio, seam, side = _notch_cut(coords[nodes], smallest, spacing)
        if side is None or ratio < _NOTCH_RATIO or seam > _NOTCH_SEAM:
            return None
        return side.astype(np.int64)

    return _split_recursively(labels, a, b, min_part, worth_trying, notch_side)
