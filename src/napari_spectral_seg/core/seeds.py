"""Seeded segmentation: one segment per clicked point, numbered in point order."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from ._threads import single_threaded
from .graph import PixelIndex

__all__ = ["check_seeds", "seed_nodes", "assign_to_seeds", "label_by_seeds"]


def check_seeds(seeds, spatial_shape) -> np.ndarray:
    """Validate seed points and round them to pixel indices.

    Parameters
    ----------
    seeds : array_like, shape (n_points, ndim)
        Points in pixel (array index) coordinates, e.g. ``(row, col)``.
    spatial_shape : tuple of int
        Shape of the image's spatial axes.

    Returns
    -------
    ndarray of int64, shape (n_points, ndim)
    """
    points = np.asarray(seeds, dtype=float)
    ndim = len(spatial_shape)
    if points.ndim != 2 or points.shape[1] != ndim or len(points) == 0:
        raise ValueError(
            f"seeds has shape {points.shape}; pass an (n_points, {ndim}) array of pixel coordinates, "
            "at least one point."
        )
    if not np.all(np.isfinite(points)):
        raise ValueError("seeds contains NaN or infinite coordinates; pass finite pixel coordinates.")
    pixels = np.rint(points).astype(np.int64)
    outside = np.any((pixels < 0) | (pixels >= np.asarray(spatial_shape)), axis=1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"seed point {i + 1} at {tuple(float(v) for v in points[i].round(1))} lies outside the image "
            f"(shape {tuple(spatial_shape)}); move it onto the image."
        )
    _, first, counts = np.unique(pixels, axis=0, return_index=True, return_counts=True)
    if np.any(counts > 1):
        i = int(first[np.argmax(counts > 1)])
        raise ValueError(
            f"seed point {i + 1} at {tuple(int(v) for v in pixels[i])} falls on the same pixel as another point; "
            "remove one of them."
        )
    return pixels


def seed_nodes(pixels: np.ndarray, index: PixelIndex) -> np.ndarray:
    """Graph node of each seed pixel; raises ValueError for seeds outside the mask.

    Returns
    -------
    ndarray of int64, shape (n_points,)
    """
    nodes = index.node_of_pixel[tuple(pixels.T)].astype(np.int64)
    if np.any(nodes < 0):
        i = int(np.flatnonzero(nodes < 0)[0])
        raise ValueError(
            f"seed point {i + 1} at {tuple(int(v) for v in pixels[i])} lies outside the mask "
            "(or in a piece smaller than min_size); move it inside an object, or change the "
            "mask/threshold so that it covers the point."
        )
    return nodes


def assign_to_seeds(embedding: np.ndarray, seed_rows: np.ndarray, random_state=None) -> np.ndarray:
    """Cluster a component's nodes so that cluster ``i`` contains seed ``i``.

    Parameters
    ----------
    embedding : ndarray, shape (n_nodes, k)
        Spectral coordinates, ``k >= len(seed_rows)``.
    seed_rows : ndarray of int, shape (n_seeds,)
        Row of each seed in ``embedding``.

    Returns
    -------
    ndarray of int64, shape (n_nodes,)
        Index of the seed each node belongs to; seed ``i``'s node gets ``i``,
        so two seeds never share a segment.
    """
    n_seeds = len(seed_rows)
    coords = embedding[:, :n_seeds]
    centres = coords[seed_rows]
    # k-means started at the seeds: clusters follow the spectral structure,
    # and each keeps the identity of the seed it started from.
    km = KMeans(n_clusters=n_seeds, init=centres, n_init=1, random_state=random_state)
    with single_threaded("seeds"):
        clusters = km.fit_predict(coords)
    owner = clusters[seed_rows]
    if len(np.unique(owner)) == n_seeds:
        mapping = np.empty(n_seeds, dtype=np.int64)
        mapping[owner] = np.arange(n_seeds)
        result = mapping[clusters]
    else:
        # Two seeds fell in one k-means cluster: fall back to the nearest seed
        # in the embedding, which separates them by construction.
        # |x - c|^2 up to the per-row constant |x|^2: (n_nodes, n_seeds) only.
        d2 = (centres**2).sum(axis=1)[None, :] - 2 * coords @ centres.T
        result = np.argmin(d2, axis=1)
    result[seed_rows] = np.arange(n_seeds)
    return result.astype(np.int64)


def label_by_seeds(node_label, index, seeds_of_component, seed_node, embeddings, random_state):
    """Fill ``node_label`` so the segment holding seed ``i`` is labelled ``i + 1``."""
    for comp, seed_ids in enumerate(seeds_of_component):
        start, stop = index.offsets[comp], index.offsets[comp + 1]
        if len(seed_ids) == 0:
            node_label[start:stop] = 0
        elif len(seed_ids) == 1:
            node_label[start:stop] = seed_ids[0] + 1
        else:
            owner = assign_to_seeds(embeddings[comp], seed_node[seed_ids] - start, random_state=random_state)
            node_label[start:stop] = seed_ids[owner] + 1
