"""Spectral bisection of a component: cuts along the Fiedler vector, scored by pass and hills.

The Fiedler vector of a part's pixel graph orders its pixels from one end to
the other across its cheapest pass; every level set of it is a candidate cut
("sweep cut"). :func:`split_component` takes the candidate with the lowest
pass/hill ratio while it is below the sensitivity, recursively.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp

from ..eigen import edge_laplacian_eigenvectors, laplacian_eigenvectors, resolve_solver
from .config import DEFAULT_SENSITIVITY, AutoConfig, resolve_config
from .geometry import box_coords, face_footprint
from .pieces import cut_into_pieces, local_edges

__all__ = ["fiedler_order", "split_component", "sweep_cut"]


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


def _one_top(values: np.ndarray, la: np.ndarray, lb: np.ndarray, where: tuple, shape: tuple, footprint) -> bool:
    """Whether ``values`` on a part's nodes (edges ``la, lb``) has a single regional maximum.

    A regional maximum is a plateau (nodes of one value, connected) with no
    strictly higher neighbour. Two neighbours that both lack a higher
    neighbour hold the same value, so the nodes without one fall into
    plateaus by plain connectivity: a labelling of them in the part's box
    (``where``: the nodes' places in a box of ``shape``; ``footprint``: face
    neighbours, which the edges are). Such a plateau is a maximum unless an
    edge of equal values leads from it to a node with a higher neighbour.
    """
    va, vb = values[la], values[lb]
    higher = np.zeros(len(values), dtype=bool)
    higher[la[vb > va]] = True
    higher[lb[va > vb]] = True
    tops = ~higher
    if np.count_nonzero(tops) == 1:
        return True
    equal = va == vb
    ea, eb = la[equal], lb[equal]
    # Only an edge of equal values joins two tops into a plateau or leads from one.
    touched = np.zeros(len(values), dtype=bool)
    touched[ea] = True
    touched[eb] = True
    if np.count_nonzero(tops & ~touched) >= 2:
        return False  # two tops with no equal neighbour: two plateaus of one node, no leak
    top_a, top_b = tops[ea], tops[eb]
    leaks = top_a != top_b
    if not np.any(top_a & top_b):
        # No two tops touch: every top is a plateau of its own.
        leaky = np.zeros(len(values), dtype=bool)
        leaky[ea[leaks]] = True
        leaky[eb[leaks]] = True
        return np.count_nonzero(tops & ~leaky) == 1
    box = np.zeros(shape, dtype=bool)
    box[where] = tops
    plateau = ndi.label(box, structure=footprint)[0][where]
    n_plateaus = int(plateau.max())
    below = np.zeros(n_plateaus + 1, dtype=bool)
    below[plateau[ea[leaks]]] = True
    below[plateau[eb[leaks]]] = True
    return np.count_nonzero(~below[1:]) == 1


def _grow_to_face_neighbours(values: np.ndarray) -> np.ndarray:
    """Each pixel's maximum over itself and its face neighbours (a grey dilation by the cross)."""
    grown = values.copy()
    for axis in range(values.ndim):
        lower = [slice(None)] * values.ndim
        upper = [slice(None)] * values.ndim
        lower[axis], upper[axis] = slice(None, -1), slice(1, None)
        lower, upper = tuple(lower), tuple(upper)
        np.maximum(grown[lower], values[upper], out=grown[lower])
        np.maximum(grown[upper], values[lower], out=grown[upper])
    return grown


def reconstruct_by_dilation(marker: np.ndarray, mask: np.ndarray, max_steps: int = 32) -> np.ndarray:
    """Morphological reconstruction by dilation (face neighbours) of ``marker`` (``<= mask``) under ``mask``.

    Repeated geodesic dilation (dilate, then clip to ``mask``) until nothing
    changes: on the small boxes of auto mode's parts it settles within a few
    steps, far sooner than :func:`skimage.morphology.reconstruction` sorts
    the box. The reconstruction is a unique fixed point of minima and maxima
    of the same values, so both give the same array exactly; after
    ``max_steps`` the partial result (still between ``marker`` and the
    result) is finished by skimage's.
    """
    current = marker
    for _ in range(max_steps):
        grown = np.minimum(_grow_to_face_neighbours(current), mask)
        if np.array_equal(grown, current):
            return current
        current = grown
    from skimage.morphology import reconstruction

    return reconstruction(current, mask, method="dilation", footprint=face_footprint(marker.ndim))


def no_pass_below(heights, coords: np.ndarray, la: np.ndarray, lb: np.ndarray, threshold: float) -> bool:
    """Whether no cut of a part can score a pass/hill ratio below ``threshold`` in any landscape.

    A cut's ratio is at least ``b / h(x)``, where ``x`` is the top of its
    lower side and ``b`` the bottleneck (the best lowest height along a
    path) from ``x`` to a node at least as high: every such path crosses the
    cut. If every node's bottleneck to a higher one is at least ``threshold``
    times its height, no cut, and so no sweep candidate, scores below it.
    That holds exactly when the morphological reconstruction (by dilation)
    of ``threshold x h`` under ``h`` has a single regional maximum (at once
    when ``h`` itself has one), which :func:`reconstruct_by_dilation`
    computes without an eigen-solve. Conservative by a relative 1e-9, and only for thresholds
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
    if threshold > 1.0 or min(h.min() for h in heights) < 1e-12:
        return False
    local, shape = box_coords(coords)
    where = tuple(local.T)
    footprint = face_footprint(coords.shape[1])
    for h in heights:
        if _one_top(h, la, lb, where, shape, footprint):
            continue
        top = np.zeros(shape)
        top[where] = h
        marker = np.zeros(shape)
        # At most h itself (threshold 1: one hill, and every ratio is >= 1 exactly).
        marker[where] = np.minimum(h * min(threshold * (1.0 + 1e-9), 1.0), h)
        rebuilt = reconstruct_by_dilation(marker, top)[where]
        if not _one_top(rebuilt, la, lb, where, shape, footprint):
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


def split_component(
    h: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    coords: np.ndarray | None = None,
    sensitivity: float = DEFAULT_SENSITIVITY,
    min_part: int = AutoConfig.min_part_2d,
    eigen_solver: str = "auto",
    rng: np.random.Generator | None = None,
    max_segments: int = 1000,
    config: AutoConfig | None = None,
) -> tuple[np.ndarray, list[float]]:
    """Split one connected component into objects by recursive spectral bisection.

    Every part is cut on the component's landscape ``h``: the cut with the
    lowest pass/hill ratio along the part's Fiedler vector is made while
    that ratio is below ``sensitivity``, and both parts are tried again.

    Parameters
    ----------
    h : ndarray of float, shape (n,)
        Landscape height per node (:func:`landscape`).
    a, b : ndarray of int, shape (n_edges,)
        Edges between local nodes ``0..n-1``.
    coords : ndarray of int, shape (n, ndim), optional
        Pixel coordinates of the nodes; given, a part that provably has no
        pass below ``sensitivity`` is kept without its eigen-solve
        (``config.skip_clear_parts``).
    sensitivity : float
        A cut is made where ``pass height / lower hill height`` is below it.
        Larger values split more (0 never splits; 1 splits nearly anything).
    min_part : int
        No piece smaller than this many pixels is split off (default: the
        2D floor, ``AutoConfig.min_part_2d``).
    eigen_solver : str
        Passed to :func:`laplacian_eigenvectors`.
    rng : numpy.random.Generator, optional
        Start vectors of the eigen-solver.
    max_segments : int
        Safety bound on the number of pieces.
    config : AutoConfig, optional
        The thresholds; default ``AutoConfig()``.

    Returns
    -------
    labels : ndarray of int64, shape (n,)
        Object of each node, ``0..K-1``.
    ratios : list of float
        The pass/hill ratio of every bisection tried (accepted or not),
        for diagnostics.
    """
    config = resolve_config(config)
    rng = np.random.default_rng() if rng is None else rng
    n = len(h)
    labels = np.zeros(n, dtype=np.int64)
    ratios = []
    final = []
    stack = [np.arange(n)]
    while stack:
        part = stack.pop()
        m = len(part)
        if m < 2 * min_part or len(final) + len(stack) + 1 >= max_segments:
            final.append(part)
            continue
        la, lb = local_edges(part, n, a, b)
        hp = h[part]
        if hp.max() <= 0 or len(la) == 0:
            final.append(part)
            continue
        part_coords = None if coords is None else coords[part]
        clear = config.skip_clear_parts and coords is not None
        if clear and _sweep_would_keep([hp], part_coords, la, lb, sensitivity, rng, eigen_solver):
            final.append(part)
            continue
        rank, candidates, ratio = sweep_cut(hp, [hp], la, lb, m, min_part, eigen_solver, rng, config)
        if rank is None:
            final.append(part)
            continue
        best = int(np.argmin(ratio))
        best_ratio, cut = float(ratio[best]), int(candidates[best])
        ratios.append(best_ratio)
        if best_ratio >= sensitivity:
            final.append(part)
            continue
        side = (rank >= cut).astype(np.int64)
        pieces = cut_into_pieces(part, side, la, lb, min_part, part_coords)
        if pieces is None:
            final.append(part)
            continue
        stack.extend(pieces)
    for i, part in enumerate(final):
        labels[part] = i
    return labels, ratios
