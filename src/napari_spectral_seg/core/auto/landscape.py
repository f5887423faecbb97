"""The landscape ``h = d * t`` that auto mode cuts, and the pixel graph it lives on.

``d`` is a pixel's distance to the mask boundary and ``t`` its intensity
scaled to [0, 1]: an object is one hill of ``h``, two touching objects are
two hills joined by a low pass (see :mod:`napari_spectral_seg.core.auto`).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

from .config import AutoConfig, resolve_config
from .geometry import distances_at, fill_image_holes

__all__ = ["landscape", "pixel_edges"]


def pixel_edges(
    node_of_pixel: np.ndarray, offsets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _percentile(values: np.ndarray, fraction: float) -> float:
    """``float(np.percentile(values, 100 * fraction))`` (linear), in the same arithmetic, without its set-up.

    Auto mode takes one per component, thousands per image, where
    ``np.percentile``'s argument handling costs more than the selection.
    The same order statistics and numpy's interpolation steps, so the same
    number; a NaN gives NaN, as there.
    """
    n = len(values)
    position = (n - 1) * fraction
    below = np.floor(position)
    lower, upper = int(below), int(below) + 1
    if position >= n - 1:  # numpy then takes the last value on both sides, as index -1
        lower = upper = -1
        below = -1.0
    # The positions numpy's partition is asked for, so equal values (0.0 and
    # -0.0) land where they land there.
    part = values.copy()
    part.partition(np.unique(np.array([0, -1, lower, upper])))
    if np.isnan(part[-1]):
        return float("nan")
    a, b = part[lower], part[upper]
    gamma = position - below
    diff = b - a
    if gamma >= 0.5:
        return float(b - diff * (1 - gamma))
    return float(a + diff * gamma)


def landscape(
    intensity: np.ndarray,
    node_of_pixel: np.ndarray,
    offsets: np.ndarray,
    pixel_of_node: np.ndarray,
    *,
    spacing=None,
    background: float | None = None,
    config: AutoConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-node height ``h = d * t`` (see :mod:`napari_spectral_seg.core.auto`).

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
    config : AutoConfig, optional
        Its ``cue_sigma`` is the width of the intensity averaging.

    Returns
    -------
    h : ndarray of float64, shape (n_nodes,)
    t : ndarray of float64, shape (n_nodes,)
        The intensity cue alone.
    """
    config = resolve_config(config)
    inside = node_of_pixel >= 0
    # Distance to the outer boundary: a hole punched into an object by noise
    # in a thresholded mask is not a neck and must not make a pass.
    d = distances_at(fill_image_holes(inside), pixel_of_node, sampling=spacing)
    if background is None and not np.all(inside):
        background = float(intensity[~inside].mean())
    # Pixel noise would put fake passes everywhere (a pass is a low line
    # across the object), so the intensity cue is always averaged over about
    # one pixel, inside the mask only so the dark background does not leak
    # into the object's rim (normalised convolution).
    weight = ndi.gaussian_filter(inside.astype(np.float64), config.cue_sigma, mode="constant")
    local = ndi.gaussian_filter(np.where(inside, intensity, 0.0), config.cue_sigma, mode="constant")
    values = local.ravel()[pixel_of_node] / np.maximum(weight.ravel()[pixel_of_node], 1e-12)
    t = np.ones_like(values)
    for start, stop in zip(offsets[:-1], offsets[1:]):
        v = values[start:stop]
        lo = float(v.min()) if background is None else float(background)
        # The 95th percentile, not the maximum, so one hot pixel does not
        # make the rest of the object look dim.
        hi = _percentile(v, 0.95)
        if hi - lo > 1e-12 * max(abs(hi), 1.0):
            t[start:stop] = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
    return d * t, t
