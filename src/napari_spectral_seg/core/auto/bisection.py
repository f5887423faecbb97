"""Spectral bisection of a component: cuts along the Fiedler vector, scored by pass and hills.

The Fiedler vector of a part's pixel graph orders its pixels from one end to
the other across its cheapest pass; every level set of it is a candidate cut
("sweep cut"). :func:`split_component` takes the candidate with the lowest
pass/hill ratio while it is below the sensitivity, recursively;
:func:`step_cut` proposes the cut along an intensity step instead.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..eigen import edge_laplacian_eigenvectors, laplacian_eigenvectors, resolve_solver
from .config import DEFAULT_SENSITIVITY, AutoConfig
from .geometry import box_coords, pixel_unit, relative_size
from .landscape import part_distance
from .pieces import cut_into_pieces, local_edges
from .shape import is_one_convex_body

__all__ = ["fiedler_order", "normalised_cuts", "split_component", "step_cut", "sweep_cut"]


def fiedler_order(
    w: np.ndarray, la: np.ndarray, lb: np.ndarray, m: int, eigen_solver: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Node ranks along the Fiedler vector of the graph with edge weights ``w``."""
    chosen = resolve_solver(eigen_solver, m, 2)
    if chosen in ("dense", "arpack"):
        # The same numbers as laplacian_eigenvectors, without the sparse products.
        _, embedding = edge_laplacian_eigenvectors(w, la, lb, m, 2, chosen, rng)
    else:
        graph = sp.coo_array(
            (np.concatenate([w, w]), (np.concatenate([la, lb]), np.concatenate([lb, la]))), shape=(m, m)
        ).tocsr()
        _, embedding = laplacian_eigenvectors(graph, 2, solver=eigen_solver, rng=rng)
    order = np.argsort(embedding[:, 1], kind="stable")
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    return order, rank


def _cut_heights(ranks_lo, ranks_hi, edge_h, candidates):
    """Largest edge height among the edges cut by each prefix candidate.

    Prefix ``i`` (the ``i`` lowest-ranked nodes on one side) cuts edge
    ``(lo, hi)`` when ``lo < i <= hi``: the edge covers a run of the
    (ascending) candidates, and the answer at a candidate is the largest
    height over the edges covering it (0 if none). Each run is written as
    two overlapping power-of-two blocks into a table of levels over the
    candidates, which is then pushed down level by level: O(edges log
    candidates) time and O(edges) memory, where testing every edge against
    every candidate was O(edges x candidates). A maximum of the same
    numbers, so the result is the same exactly.
    """
    n_cand = len(candidates)
    if len(edge_h) == 0 or n_cand == 0:
        return np.zeros(n_cand)
    first = np.searchsorted(candidates, ranks_lo + 1, side="left")  # first candidate > lo
    last = np.searchsorted(candidates, ranks_hi, side="right") - 1  # last candidate <= hi
    covers = last >= first
    first, last, edge_h = first[covers], last[covers], edge_h[covers]
    if len(edge_h) == 0:
        return np.zeros(n_cand)
    level = np.frexp((last - first + 1).astype(np.float64))[1] - 1  # floor(log2(run length)), exact
    n_levels = int(level.max()) + 1
    table = np.zeros((n_levels, n_cand))
    flat = table.reshape(-1)
    np.maximum.at(flat, level * n_cand + first, edge_h)
    np.maximum.at(flat, level * n_cand + last + 1 - (1 << level), edge_h)
    for k in range(n_levels - 1, 0, -1):
        half = 1 << (k - 1)
        block = table[k, : n_cand - half]
        np.maximum(table[k - 1, : n_cand - half], block, out=table[k - 1, : n_cand - half])
        np.maximum(table[k - 1, half:], block, out=table[k - 1, half:])
    return table[0].copy()


def sweep_cut(
    guide: np.ndarray,
    heights,
    la: np.ndarray,
    lb: np.ndarray,
    m: int,
    smallest: int,
    eigen_solver: str,
    rng: np.random.Generator,
    config: AutoConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[None, None, None]:
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
    w = (edge_g / top) ** 2 + config.weight_floor
    order, rank = fiedler_order(w, la, lb, m, eigen_solver, rng)
    r_lo = np.minimum(rank[la], rank[lb])
    r_hi = np.maximum(rank[la], rank[lb])
    candidates = np.arange(smallest, m - smallest + 1)
    if len(candidates) == 0:
        return None, None, None
    if len(candidates) > config.max_candidates:
        candidates = np.unique(np.linspace(smallest, m - smallest, config.max_candidates).round().astype(np.int64))
    ratio = np.full(len(candidates), np.inf)
    for height in heights:
        sorted_h = height[order]
        hill_lo = np.maximum.accumulate(sorted_h)[candidates - 1]
        hill_hi = np.maximum.accumulate(sorted_h[::-1])[::-1][candidates]
        passes = _cut_heights(r_lo, r_hi, np.minimum(height[la], height[lb]), candidates)
        ratio = np.minimum(ratio, passes / np.maximum(np.minimum(hill_lo, hill_hi), 1e-12))
    return rank, candidates, ratio


def normalised_cuts(
    w: np.ndarray, rank: np.ndarray, order: np.ndarray, la: np.ndarray, lb: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
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


def _seam_step(side, coords, t, spacing, config):
    """Brightness step across a cut: difference of the two sides' median cue near the cut.

    Only a band of ``config.step_band`` pixels on each side counts, so the
    dome profile of each object far from the seam does not dilute the step.
    """
    local, shape = box_coords(coords)
    unit = 1.0 if spacing is None else float(np.min(spacing))
    steps = []
    for s in (False, True):
        other = np.ones(shape, dtype=bool)
        other[tuple(local[side != s].T)] = False  # zeros at the other side's pixels
        distance = ndi.distance_transform_edt(other, sampling=spacing)[tuple(local[side == s].T)]
        near = distance <= config.step_band * unit
        steps.append(np.median(t[side == s][near]) if np.any(near) else np.median(t[side == s]))
    return abs(steps[0] - steps[1])


def step_cut(
    part_coords: np.ndarray,
    t: np.ndarray,
    la: np.ndarray,
    lb: np.ndarray,
    smallest: int,
    *,
    spacing,
    eigen_solver: str,
    rng: np.random.Generator,
    config: AutoConfig,
) -> tuple[float, np.ndarray | None]:
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
    config : AutoConfig
        Its ``step_beta``, ``step_band`` and ``weight_floor`` shape the cue.

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
    h = part_distance(np.arange(m), part_coords, spacing) * t
    if h.max() <= 0:
        return np.inf, None
    gap = np.abs(t[la] - t[lb])
    # The typical cue difference between neighbours (noise plus texture) is
    # the unit of the gradient: a seam is where neighbours differ far more.
    scale = float(np.median(gap)) + 1e-6
    # A shoulder pair has no neck, so the shape weights alone put no cheap
    # seam between the two; the gradient factor makes the intensity step
    # between a bright and a dim object cheap to cut.
    w = (np.minimum(h[la], h[lb]) / h.max()) ** 2 * np.exp(-config.step_beta * gap / scale) + config.weight_floor
    order, rank = fiedler_order(w, la, lb, m, eigen_solver, rng)
    ncut = normalised_cuts(w, rank, order, la, lb, candidates)
    best = int(np.argmin(ncut))
    side = rank >= candidates[best]
    step = _seam_step(side, part_coords, t, spacing, config)
    return float(ncut[best]) / max(step, 1e-6), side


def _one_top(values: np.ndarray, la: np.ndarray, lb: np.ndarray) -> bool:
    """Whether ``values`` on a part's nodes (edges ``la, lb``) has a single regional maximum.

    A regional maximum is a plateau (nodes of one value, connected) with no
    strictly higher neighbour.
    """
    higher = np.zeros(len(values), dtype=bool)
    higher[la[values[lb] > values[la]]] = True
    higher[lb[values[la] > values[lb]]] = True
    if np.count_nonzero(~higher) == 1:
        return True
    flat = values[la] == values[lb]
    n_flat, plateau = connected_components(
        sp.coo_array((np.ones(int(flat.sum())), (la[flat], lb[flat])), shape=(len(values),) * 2), directed=False
    )
    below = np.zeros(n_flat, dtype=bool)
    below[plateau[higher]] = True
    return np.count_nonzero(~below) == 1


def no_pass_below(heights, coords: np.ndarray, la: np.ndarray, lb: np.ndarray, threshold: float) -> bool:
    """Whether no cut of a part can score a pass/hill ratio below ``threshold`` in any landscape.

    A cut's ratio is at least ``b / h(x)``, where ``x`` is the top of its
    lower side and ``b`` the bottleneck (the best lowest height along a
    path) from ``x`` to a node at least as high: every such path crosses the
    cut. If every node's bottleneck to a higher one is at least ``threshold``
    times its height, no cut, and so no sweep candidate, scores below it.
    That holds exactly when the morphological reconstruction (by dilation)
    of ``threshold x h`` under ``h`` has a single regional maximum (at once
    when ``h`` itself has one), which
    :func:`skimage.morphology.reconstruction` computes in O(n log n) without
    an eigen-solve. Conservative by a relative 1e-9, and only for thresholds
    up to 1 and heights at least the ratio's floor (1e-12).

    Parameters
    ----------
    heights : list of ndarray of float, shape (m,)
        The part's landscapes.
    coords : ndarray of int, shape (m, ndim)
        Pixel coordinates of its nodes.
    la, lb : ndarray of int
        Its edges (face neighbours), in local numbering.
    threshold : float
        The ratio a cut must go below to be made.
    """
    from skimage.morphology import reconstruction

    if threshold > 1.0 or min(h.min() for h in heights) < 1e-12:
        return False
    local, shape = box_coords(coords)
    where = tuple(local.T)
    footprint = ndi.generate_binary_structure(coords.shape[1], 1)
    for h in heights:
        if _one_top(h, la, lb):
            continue
        top = np.zeros(shape)
        top[where] = h
        marker = np.zeros(shape)
        # At most h itself (threshold 1: one hill, and every ratio is >= 1 exactly).
        marker[where] = np.minimum(h * min(threshold * (1.0 + 1e-9), 1.0), h)
        rebuilt = reconstruction(marker, top, method="dilation", footprint=footprint)[where]
        if not _one_top(rebuilt, la, lb):
            return False
    return True


def _sweep_would_keep(heights, coords, la, lb, threshold, rng: np.random.Generator, eigen_solver: str) -> bool:
    """Whether the sweep of a part would provably keep it whole (:func:`no_pass_below`).

    If so, ``rng`` is advanced as the sweep's Fiedler solve would have, so
    every later solve of the component starts from the same vector; parts
    for solvers whose draws are not replayed here are never skipped.
    """
    m = len(coords)
    chosen = resolve_solver(eigen_solver, m, 2)
    if chosen not in ("dense", "arpack") or not no_pass_below(heights, coords, la, lb, threshold):
        return False
    if chosen == "arpack":
        rng.uniform(-1, 1, m)  # the start vector of _arpack
    return True


def _part_threshold(m, ndim, sensitivity, min_part, object_size, config):
    """The pass/hill threshold and the smallest side of a part of ``m`` nodes.

    A part far larger than the typical object is probably several objects:
    its threshold rises above ``sensitivity`` (to at least the floor, ramping
    up to ``config.large_part_sensitivity``) while each side of its cut must
    hold ``config.large_part_smallest`` typical sizes.
    """
    threshold, smallest = sensitivity, min_part
    relative = relative_size(m, object_size, ndim)
    if relative > config.large_part:
        excess = np.clip((relative - config.large_part) / config.large_part_ramp, 0.0, 1.0)
        top = max(config.large_part_sensitivity, sensitivity)
        threshold = sensitivity + (top - sensitivity) * excess
        floor = min(config.large_part_floor * sensitivity / config.large_part_floor_sensitivity, top)
        threshold = max(threshold, floor)
        smallest = max(min_part, int(config.large_part_smallest * object_size))
    return threshold, smallest


def _part_landscapes(part, n, h, coords, cue, spacing, distance, config):
    """The landscapes a part's cuts are scored on: ``h`` of the part, the list scored, its distance ``d``.

    After a cut each part gets its own distance transform (unless
    ``config.use_part_distance`` is off: the component's throughout), so an
    object in a clump shows its neck once its neighbours are cut away.
    """
    m = len(part)
    if config.use_part_distance:
        own = distance if m == n and distance is not None else part_distance(part, coords, spacing)
        hp = h[part] if cue is None or m == n else own * cue[part]  # part_heights, its transform reused
    else:
        own, hp = distance[part], h[part]
    # The shape alone is a second landscape: a dim object beside a bright
    # one is a low hill in h, and the bright one's light blurred across
    # the neck raises the pass almost to it; in d the neck still shows.
    heights = [hp, own] if config.use_distance_landscape else [hp]
    return hp, heights, own


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
    config: AutoConfig | None = None,
    distance: np.ndarray | None = None,
) -> tuple[np.ndarray, list[float]]:
    """Split one connected component into objects by recursive spectral bisection.

    Parameters
    ----------
    h : ndarray of float, shape (n,)
        Landscape height per node (:func:`landscape`).
    a, b : ndarray of int, shape (n_edges,)
        Edges between local nodes ``0..n-1``.
    coords : ndarray of int, shape (n, ndim), optional
        Pixel coordinates of the nodes. With ``cue``, each part after the
        first cut gets its own distance transform (see ``part_heights``).
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
        Typical object size in pixels. A part larger than
        ``config.large_part`` times it is probably several objects, so the
        threshold rises from ``config.large_part_floor`` (scaled by
        ``sensitivity / config.large_part_floor_sensitivity``) to
        ``config.large_part_sensitivity`` over ``config.large_part_ramp``
        more typical sizes, while both sides of such a cut must hold at
        least ``config.large_part_smallest`` times it.
    config : AutoConfig, optional
        The thresholds; default ``AutoConfig()``.
    distance : ndarray of float, shape (n,), optional
        The component's own distance transform (``part_distance`` of all its
        nodes), when the caller has it already.

    Returns
    -------
    labels : ndarray of int64, shape (n,)
        Object of each node, ``0..K-1``.
    ratios : list of float
        The pass/hill ratio of every bisection tried (accepted or not),
        for diagnostics.
    """
    config = AutoConfig() if config is None else config
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
        threshold, smallest = _part_threshold(m, ndim, sensitivity, min_part, object_size, config)
        if m < 2 * smallest or len(final) + len(stack) + 1 >= max_segments:
            final.append(part)
            continue
        la, lb = local_edges(part, n, a, b)
        if coords is None:
            hp, heights, own = h[part], [h[part]], None
        else:
            if not config.use_part_distance and distance is None:
                distance = part_distance(np.arange(n), coords, spacing)  # the component's, once
            hp, heights, own = _part_landscapes(part, n, h, coords, cue, spacing, distance, config)
        top = hp.max()
        if top <= 0 or len(la) == 0:
            final.append(part)
            continue
        # In a part at most a couple of pixels thick the distance transform
        # only takes the values 1, sqrt 2, sqrt 3, so the pass/hill ratio
        # measures pixel steps (1 / sqrt 2 = 0.71), not necks: such a sheet,
        # left over along an earlier cut, would be chipped into min_part pieces.
        if own is not None and own.max() < config.min_depth * pixel_unit(spacing, ndim):
            final.append(part)
            continue
        clear = config.skip_clear_parts and coords is not None
        if clear and _sweep_would_keep(heights, coords[part], la, lb, threshold, rng, eigen_solver):
            final.append(part)
            continue
        rank, candidates, ratio = sweep_cut(hp, heights, la, lb, m, smallest, eigen_solver, rng, config)
        if rank is None:
            final.append(part)
            continue
        best = int(np.argmin(ratio))
        best_ratio, cut = float(ratio[best]), int(candidates[best])
        ratios.append(best_ratio)
        if best_ratio >= threshold:
            final.append(part)
            continue
        if (
            best_ratio >= sensitivity
            and ndim in config.one_body_dims
            and is_one_convex_body(coords[part], spacing, config)
        ):
            # Cut only because the part is oversized, yet it is one convex
            # ellipsoid-like body: a large object, not a clump.
            final.append(part)
            continue
        pieces = cut_into_pieces(part, (rank >= cut).astype(np.int64), la, lb, min_part)
        if pieces is None:
            final.append(part)
            continue
        stack.extend(pieces)
    for i, part in enumerate(final):
        labels[part] = i
    return labels, ratios
