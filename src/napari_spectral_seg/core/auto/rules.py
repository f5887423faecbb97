"""The rules applied to a component's pieces once the typical object size is known.

Each rule takes the component's labels ``0..K-1`` (edges ``a, b`` in its
local numbering, ``coords`` its nodes' pixel coordinates) and returns new
labels ``0..K'-1``: 2D pieces are cut between two notches of their outline,
3D pieces into two clusters of voxels, slivers rejoin a neighbour, and pieces that are one convex object cut in two
are joined again. The order in which they run is
:func:`napari_spectral_seg.core.auto.recipe.refine_component`.
"""

from __future__ import annotations

import numpy as np

from .config import AutoConfig
from .geometry import axis_scale, relative_size
from .pieces import merge_small_pieces, split_recursively
from .shape import notch_cut, two_means

__all__ = ["merge_slivers", "split_moments", "split_notches"]


def split_moments(labels, a, b, coords, typical, *, spacing, min_part, config: AutoConfig) -> np.ndarray:
    """Split pieces of one component whose voxels form two compact clusters (3D).

    Deep overlaps of two objects, and pairs of small objects the size of one
    typical object, can leave no pass in the landscape, but their union is
    not shaped like one ellipsoid: 2-means of the voxel positions (physical
    units) removes far more of the second moment than for any single
    ellipsoid (``config.moment_ratio``). Both halves must hold
    ``config.moment_smallest`` typical sizes; parts are tested again.
    Returns the new labels ``0..K-1``.
    """
    ndim = coords.shape[1]
    smallest = max(min_part, int(config.moment_smallest * typical))
    scale = axis_scale(spacing, ndim)

    def worth_trying(nodes):
        return len(nodes) >= 2 * smallest and relative_size(len(nodes), typical, ndim) >= config.moment_min_size

    def two_cluster_side(nodes, la, lb):
        x = coords[nodes] * scale
        side, left = two_means(x)
        if not left < config.moment_ratio or np.bincount(side, minlength=2).min() < smallest:
            return None
        # Two objects split into two ellipsoid-like halves; a fragment of one
        # object (a slab or wedge left by earlier cuts) scores low too, but
        # its halves are still flat.
        if min(two_means(x[side == k])[1] for k in (0, 1)) < config.moment_ratio:
            return None
        return side

    return split_recursively(labels, a, b, min_part, worth_trying, two_cluster_side, coords)


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


def merge_slivers(labels, a, b, typical, ndim, min_part, config: AutoConfig) -> np.ndarray:
    """Give pieces far below the typical size (``config.sliver``) to a neighbour.

    A sliver cut off an object is a false cut, not an object: it rejoins the
    neighbour it shares the longest border with. Whole small components are
    kept. Returns labels ``0..K-1``.
    """
    sliver = typical * config.sliver ** (ndim / 2.0)
    return merge_small_pieces(labels.copy(), int(labels.max()) + 1, a, b, max(sliver, min_part))


def split_notches(labels, a, b, coords, typical, *, spacing, min_part, config: AutoConfig) -> np.ndarray:
    """Cut 2D pieces between two deep concave notches of their outline (see ``config.notch_ratio``).

    Lobes of a clump can leave no pass in the landscape: in a clump of
    three or four nuclei the distance transform's ridge runs through the
    junction, and a dim lobe beside a bright one is a shoulder, not a hill.
    The outline still shows where two objects meet: a notch on each side of
    a neck narrower than either object. Parts are tested again. Returns the
    new labels ``0..K-1``.
    """
    smallest = max(min_part, int(config.notch_smallest * typical))

    def worth_trying(nodes):
        return len(nodes) >= 2 * smallest and relative_size(len(nodes), typical, 2) >= config.notch_min_size

    def notch_side(nodes, la, lb):
        ratio, seam, side = notch_cut(coords[nodes], smallest, spacing, config=config)
        if side is None or ratio < config.notch_ratio or seam > config.notch_seam:
            return None
        return side.astype(np.int64)

    return split_recursively(labels, a, b, min_part, worth_trying, notch_side, coords)
