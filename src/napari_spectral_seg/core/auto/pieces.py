"""Pieces of a component: cutting along a side assignment, merging small pieces, the typical size.

A component's split is held as labels ``0..K-1`` per node (its pieces);
edges ``a, b`` are in the component's local node numbering.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .geometry import box_coords, face_footprint

__all__ = [
    "cut_into_pieces",
    "labels_of_pieces",
    "local_edges",
    "median_piece_size",
    "merge_small_pieces",
    "piece_sizes",
    "split_recursively",
    "typical_size",
]

# Guard against a rule that keeps cutting: at most about this many pieces
# per component come out of split_recursively.
_MAX_PIECES = 1000


def local_edges(nodes: np.ndarray, n_nodes: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The edges ``(a, b)`` that join two of ``nodes``, renumbered ``0..len(nodes)-1``."""
    local = np.full(n_nodes, -1, dtype=np.int64)
    local[nodes] = np.arange(len(nodes))
    la, lb = local[a], local[b]
    inside = (la >= 0) & (lb >= 0)
    return la[inside], lb[inside]


def _side_pieces(side: np.ndarray, coords: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected pieces of each side (0/1) of a part, by labelling its box; numbered by their first node.

    The same pieces, in the same order, as ``connected_components`` of the
    edges within a side when the edges are the face neighbours among the
    nodes' pixels ``coords``, which they are in auto mode. Two labellings
    of a small box cost a fraction of building a sparse graph per cut.
    """
    local, shape = box_coords(coords)
    where = tuple(local.T)
    box = np.zeros(shape, dtype=np.int8)
    box[where] = np.where(side == 0, 1, 2)
    footprint = face_footprint(coords.shape[1])
    first, n_first = ndi.label(box == 1, structure=footprint)
    second, n_second = ndi.label(box == 2, structure=footprint)
    piece = np.where(side == 0, first[where] - 1, second[where] - 1 + n_first)
    n_pieces = n_first + n_second
    # connected_components numbers pieces by their lowest node.
    rank = np.empty(n_pieces, dtype=np.int64)
    rank[np.argsort(np.unique(piece, return_index=True)[1], kind="stable")] = np.arange(n_pieces)
    return n_pieces, rank[piece]


def cut_into_pieces(
    nodes: np.ndarray, side: np.ndarray, la: np.ndarray, lb: np.ndarray, min_part: int, coords=None
) -> list[np.ndarray] | None:
    """Connected pieces of ``nodes`` once the edges between ``side`` 0 and 1 are cut.

    A side can be in several pieces; each connected piece is its own
    candidate object, and pieces below ``min_part`` rejoin a neighbour.
    ``coords`` (the nodes' pixel coordinates, when the edges ``la, lb`` are
    their face neighbours) finds the pieces faster. Returns the pieces'
    node arrays, or None when the cut leaves a single piece.
    """
    if coords is not None:
        n_pieces, piece = _side_pieces(side, coords)
    else:
        same = side[la] == side[lb]
        n_pieces, piece = connected_components(
            sp.coo_array((np.ones(int(same.sum())), (la[same], lb[same])), shape=(len(nodes),) * 2), directed=False
        )
    piece = merge_small_pieces(piece, n_pieces, la, lb, min_part)
    if piece.max() == 0:
        return None
    return [nodes[piece == p] for p in range(piece.max() + 1)]


def labels_of_pieces(pieces: list[np.ndarray], like: np.ndarray) -> np.ndarray:
    """Labels ``0..K-1`` (the shape and dtype of ``like``) from a list of node arrays."""
    out = np.empty_like(like)
    for i, nodes in enumerate(pieces):
        out[nodes] = i
    return out


def merge_small_pieces(piece: np.ndarray, n_pieces: int, a: np.ndarray, b: np.ndarray, min_part) -> np.ndarray:
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


def split_recursively(
    labels: np.ndarray, a: np.ndarray, b: np.ndarray, min_part: int, worth_trying, propose_side, coords=None
) -> np.ndarray:
    """Split pieces, and their parts again, while a rule proposes a cut.

    ``worth_trying(nodes)`` is a cheap pre-test; ``propose_side(nodes, la,
    lb)`` (``la, lb``: the piece's edges in local numbering) returns a 0/1
    side per node, or None to keep the piece. At most about 1000 pieces are
    made, a guard against a rule that keeps cutting. ``coords`` (pixel
    coordinates of the nodes, whose face neighbours the edges are) speeds up
    the cuts (:func:`cut_into_pieces`). Returns labels ``0..K-1``.
    """
    stack = [np.flatnonzero(labels == p) for p in range(int(labels.max()) + 1)]
    final = []
    while stack:
        nodes = stack.pop()
        if not worth_trying(nodes) or len(final) + len(stack) >= _MAX_PIECES:
            final.append(nodes)
            continue
        la, lb = local_edges(nodes, len(labels), a, b)
        side = propose_side(nodes, la, lb)
        if side is None:
            final.append(nodes)
            continue
        pieces = cut_into_pieces(nodes, side, la, lb, min_part, None if coords is None else coords[nodes])
        if pieces is None:
            final.append(nodes)
            continue
        stack.extend(pieces)
    return labels_of_pieces(final, labels)


def typical_size(pieces: list[np.ndarray], min_part: int) -> float:
    """Median size of the pieces, specks left out (:func:`median_piece_size` of their sizes).

    Parameters
    ----------
    pieces : list of ndarray of int
        Per component, the piece label of each node (``0..K-1``).
    min_part : int
        Pieces below this many pixels are specks, never objects.
    """
    return median_piece_size(piece_sizes(pieces), min_part)


def piece_sizes(pieces: list[np.ndarray]) -> np.ndarray:
    """Pixels of every piece, component by component, from the piece label of each node per component."""
    return np.concatenate([np.bincount(p) for p in pieces]) if pieces else np.zeros(0, dtype=np.int64)


def median_piece_size(sizes: np.ndarray, min_part: int) -> float:
    """The typical object size: the median of the pieces' sizes, specks left out.

    Parameters
    ----------
    sizes : ndarray of int
        Pixels of each piece of the first pass, in any order (a blockwise
        run gathers them from its blocks).
    min_part : int
        Pieces below this many pixels are specks, never objects.

    Returns
    -------
    float
        The median size of the pieces of at least ``min_part`` pixels (of
        all pieces when none is that large); 0 when there are none.
    """
    sizes = np.asarray(sizes)
    # Specks below min_part (noise, when min_size is 0) are not objects and
    # would drag the median down, and with it every size the rules compare to it.
    if np.any(sizes >= min_part):
        sizes = sizes[sizes >= min_part]
    if len(sizes) == 0:
        return 0.0
    return float(np.median(sizes))
