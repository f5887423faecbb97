"""Turning spectral embeddings into cluster labels, and label images into tidy ones."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from sklearn.cluster import KMeans

from ._threads import single_threaded

__all__ = ["LABEL_METHODS", "cluster_embedding", "relabel_by_first_pixel"]

LABEL_METHODS = ("kmeans", "cluster_qr")

# Above this many nodes k-means is fitted on a random subsample of this size
# and every node then goes to its nearest centre: the centres of 4-10 well
# separated spectral clusters are pinned down by 20k points, and fitting
# 10 restarts on millions of rows would cost more than the eigen-solve.
KMEANS_SUBSAMPLE = 20_000


def _cluster_qr(embedding: np.ndarray, n_clusters: int) -> np.ndarray:
    # Column-pivoted QR picks the n_clusters most independent nodes; rotating
    # the embedding onto them makes each cluster one coordinate axis
    # (Damle, Minden & Ying 2019). Deterministic and O(n k^2).
    k = n_clusters
    _, _, pivots = scipy.linalg.qr(embedding[:, :k].T, pivoting=True, mode="economic")
    u, _, vt = np.linalg.svd(embedding[pivots[:k], :k].T)
    return np.argmax(np.abs(embedding[:, :k] @ (u @ vt)), axis=1)


def cluster_embedding(
    embedding: np.ndarray,
    n_clusters: int,
    *,
    method: str = "kmeans",
    random_state: int | None = None,
) -> np.ndarray:
    """Cluster the rows of a spectral embedding.

    Parameters
    ----------
    embedding : ndarray, shape (n_nodes, k)
        Spectral coordinates of the nodes, ``k >= n_clusters``.
    n_clusters : int
        Number of clusters.
    method : {"kmeans", "cluster_qr"}
        ``"kmeans"``: k-means with 10 restarts, as scikit-learn's
        ``spectral_clustering`` (fitted on a random subsample of
        ``KMEANS_SUBSAMPLE`` rows when there are more, then every row is
        assigned to its nearest centre); ``"cluster_qr"``: deterministic QR
        rotation, faster on millions of nodes.
    random_state : int, optional
        Seed for k-means.

    Returns
    -------
    ndarray of int64, shape (n_nodes,)
        Cluster of each node, in ``0 .. n_clusters - 1``.
    """
    if n_clusters == 1:
        return np.zeros(len(embedding), dtype=np.int64)
    if method == "cluster_qr":
        return _cluster_qr(embedding, n_clusters).astype(np.int64)
    if method != "kmeans":
        raise ValueError(f"assign_labels={method!r} is unknown; use one of {LABEL_METHODS}.")
    # float64: scikit-learn's k-means++ seeding computes float32 distances
    # in tiny upcast batches, measured 10x slower than on float64.
    points = np.asarray(embedding[:, :n_clusters], dtype=np.float64)
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=random_state)
    # One thread (OpenMP and BLAS): k-means on <= 20k rows of a few columns
    # is too small to gain from threads, and on a busy machine spinning
    # OpenMP threads were measured to make it 10x slower.
    with single_threaded("labels"):
        if len(points) <= KMEANS_SUBSAMPLE:
            return km.fit_predict(points).astype(np.int64)
        rng = np.random.default_rng(random_state)
        # With replacement: a few duplicate rows do not move the centres,
        # and it avoids the O(n) permutation of sampling without.
        sample = np.sort(rng.integers(0, len(points), KMEANS_SUBSAMPLE))
        km.fit(points[sample])
        return km.predict(points).astype(np.int64)


def relabel_by_first_pixel(labels: np.ndarray) -> np.ndarray:
    """Renumber a label image to ``1..M`` in the raster order of each label's first pixel.

    Parameters
    ----------
    labels : ndarray of int
        0 is background.

    Returns
    -------
    ndarray of int32, same shape
        The same partition, numbered so that it does not depend on how a
        clustering happened to number its clusters.
    """
    flat = labels.ravel()
    if flat.size == 0:
        return np.zeros(labels.shape, dtype=np.int32)
    # O(size) instead of np.unique's sort: each value's first raster index
    # by an unbuffered minimum (fast in numpy >= 1.25), absent values stay big.
    n_values = int(flat.max(initial=0)) + 1
    first = None
    if n_values <= _FEW_VALUES:
        try:
            first = _first_index_few(flat, n_values)
        except ValueError:  # negative values: the general path below
            first = None
    if first is None:
        first = np.full(n_values, flat.size, dtype=np.int64)
        np.minimum.at(first, flat, np.arange(flat.size, dtype=np.int64))
    first[0] = flat.size  # background keeps 0
    present = np.flatnonzero(first < flat.size)
    order = present[np.argsort(first[present], kind="stable")]
    lookup = np.zeros(n_values, dtype=np.int32)
    lookup[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    return lookup.take(flat).reshape(labels.shape)


# Up to this many distinct values, relabel_by_first_pixel finds first
# pixels chunk by chunk (a per-chunk bincount costs O(n_values)).
_FEW_VALUES = 256
_CHUNK = 1 << 16


def _first_index_few(flat: np.ndarray, n_values: int) -> np.ndarray:
    """First index of each value ``0 .. n_values - 1`` in ``flat`` (``flat.size`` if absent).

    Chunk by chunk, a bincount tells which values appear for the first
    time, and only for those a comparison finds the position: measured
    about 2x faster than an unbuffered ``np.minimum.at`` over all pixels.
    Raises ValueError on negative values (from ``np.bincount``).
    """
    first = np.full(n_values, flat.size, dtype=np.int64)
    missing = np.ones(n_values, dtype=bool)
    for start in range(0, flat.size, _CHUNK):
        chunk = flat[start : start + _CHUNK]
        new = np.flatnonzero((np.bincount(chunk, minlength=n_values) > 0) & missing)
        for value in new:
            first[value] = start + int(np.argmax(chunk == value))
        missing[new] = False
    return first
