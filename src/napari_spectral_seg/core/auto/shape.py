"""Shape cues of a piece: second moments, convexity, seams and notches of its outline.

These tell one object from two when the landscape shows no pass, or one
object cut in two: one object is shaped like one ellipse or ellipsoid, is
nearly convex, and two halves of it meet along a wide seam; two touching
objects leave a dent, a neck or two clusters of pixels.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from .._threads import single_threaded
from .config import AutoConfig
from .geometry import axis_scale, box_mask, face_footprint, fill_holes

__all__ = ["hull_mask", "notch_cut", "two_means"]


def two_means(x: np.ndarray) -> tuple[np.ndarray, float]:
    """2-means of points ``x`` (n, d): labels and the fraction of the second moment left.

    Started from the split of the principal axis at the mean, then Lloyd
    iterations; deterministic.
    """
    centred = x - x.mean(axis=0)
    total = float((centred**2).sum())
    if total <= 0:
        return np.zeros(len(x), dtype=np.int64), 1.0
    # One BLAS thread (a LAPACK SVD and a product): see hull_mask.
    with single_threaded("auto", user_api="blas"):
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


# Up to this many (pixel, facet) pairs the hull is tested facet by facet at once;
# above, by point location in a triangulation, whose memory is linear in the box.
_FACET_TEST_LIMIT = 1 << 22


def hull_mask(box: np.ndarray) -> np.ndarray | None:
    """Pixels of ``box``'s grid whose centres lie in the convex hull of its True pixels (None if flat)."""
    from scipy.spatial import ConvexHull, Delaunay, QhullError

    # Only the rim spans the hull; interior pixels add nothing but cost.
    rim = np.argwhere(box & ~ndi.binary_erosion(box, structure=face_footprint(box.ndim))).astype(float)
    # One BLAS thread, like the engine's other dense steps: the
    # triangulation's linear algebra is small, and threads only add
    # contention on a busy machine.
    with single_threaded("auto", user_api="blas"):
        try:
            hull = ConvexHull(rim)
        except QhullError:
            return None
        grid = np.indices(box.shape).reshape(box.ndim, -1).T.astype(float)
        if grid.shape[0] * len(hull.equations) <= _FACET_TEST_LIMIT:
            # A grid point off a facet through grid points is at least 1 / |facet normal| away
            # from it, far above the tolerance: the same pixels as the triangulation's test.
            normals, offsets = hull.equations[:, :-1], hull.equations[:, -1]
            inside = np.all(grid @ normals.T + offsets <= 1e-6, axis=1)
        else:
            try:
                # Point location in a triangulation of the hull's corners: memory
                # linear in the box (a test against every facet at once needs
                # voxels x facets, tens of GiB for a large ball).
                cells = Delaunay(rim[hull.vertices])
            except QhullError:
                return None
            inside = cells.find_simplex(grid, tol=1e-9) >= 0
    return inside.reshape(box.shape)


def notch_cut(
    x: np.ndarray, smallest: int, spacing=None, *, config: AutoConfig
) -> tuple[float, float, np.ndarray | None]:
    """The best straight cut between two concave notches of a 2D piece, and its cues.

    Parameters
    ----------
    x : ndarray of int, shape (m, 2)
        Pixel coordinates of the piece.
    smallest : int
        Fewest pixels on either side of the cut.
    spacing : (float, float), optional
        Physical pixel size per axis.
    config : AutoConfig
        Its ``notch_min_depth`` is the depth a notch must reach.

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
    scale = axis_scale(spacing, 2)
    local, box = box_mask(x)
    shape = box.shape
    # A hole (a dark spot inside a nucleus) is not a notch of the outline.
    box = fill_holes(box)
    hull = hull_mask(box)
    if hull is None:
        return 0.0, np.inf, None
    notches, n = ndi.label(hull & ~box, structure=face_footprint(2))
    if n < 2:
        return 0.0, np.inf, None
    depth = ndi.distance_transform_edt(hull, sampling=scale)
    # Each notch's deepest point on the piece's outline: where a cut starts.
    near = ndi.grey_dilation(notches, size=(3, 3))
    outline = box & (near > 0)
    ids = near[outline]
    points = np.argwhere(outline)
    found = np.unique(ids)
    order = np.lexsort((-depth[outline], ids))
    first = order[np.searchsorted(ids[order], found)]
    tips, tip_depth = points[first], depth[outline][first]
    deep = tip_depth >= config.notch_min_depth * float(scale.min())
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
        if any(ndi.label(halves == h, structure=face_footprint(2))[1] != 1 for h in (1, 2)):
            continue
        seam = float(length[k]) / (2.0 * np.sqrt(small * area / np.pi))
        return float(ratio[k]), seam, side
    return 0.0, np.inf, None
