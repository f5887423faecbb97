"""Turning spectral embeddings into cluster labels, and label images into tidy ones."""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.cluster import KMeans

from . import costs
from ._threads import single_threaded
from .progress import drain, iter_waiting, relay

__all__ = [
    "LABEL_METHODS",
    "cluster_embedding",
    "iter_cluster_embedding",
    "iter_refine_boundaries",
    "kmeans_restarts",
    "kmeans_seconds",
    "refine_boundaries",
    "relabel_by_first_pixel",
    "split_counts",
]

LABEL_METHODS = ("kmeans", "cluster_qr")

# Above this many nodes k-means is fitted on a random subsample of this size
# and every node then goes to its nearest centre: the centres of 4-10 well
# separated spectral clusters are pinned down by 20k points, and fitting
# 10 restarts on millions of rows would cost more than the eigen-solve.
KMEANS_SUBSAMPLE = 20_000
# Up to this many clusters k-means keeps scikit-learn's 10 restarts; above,
# fewer, so that no fit costs more than 10 restarts of this many clusters
# (one restart from about 200 clusters): with hundreds of small clusters a
# restart changes little, and ten of them dominated the run.
_FULL_RESTART_CLUSTERS = 64
_RESTARTS = 10


def kmeans_restarts(n_clusters):
    """Restarts (``n_init``) of the k-means that labels ``n_clusters`` clusters (numbers or arrays)."""
    budget = _RESTARTS * _FULL_RESTART_CLUSTERS**2
    clusters = np.maximum(np.asarray(n_clusters, dtype=np.int64), 1)
    restarts = np.clip(budget // clusters**2, 1, _RESTARTS)
    return int(restarts) if restarts.ndim == 0 else restarts


def kmeans_seconds(rows, n_clusters, *, seeded: bool = False):
    """Seconds of the k-means this module runs on ``rows`` points (:func:`.costs.kmeans_seconds`).

    Fitted on at most ``KMEANS_SUBSAMPLE`` rows, ``kmeans_restarts`` times
    (``seeded``: once, from the seed points); 0 for one cluster.
    """
    fitted = np.minimum(np.asarray(rows, dtype=np.int64), KMEANS_SUBSAMPLE)
    restarts = kmeans_restarts(n_clusters)
    return costs.kmeans_seconds(rows, n_clusters, fitted_rows=fitted, restarts=restarts, seeded=seeded)


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
    graph=None,
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
        ``spectral_clustering`` (fewer above 64 clusters, one from about
        200: :func:`kmeans_restarts`; fitted on a random subsample of
        ``KMEANS_SUBSAMPLE`` rows when there are more, then every row is
        assigned to its nearest centre); ``"cluster_qr"``: deterministic QR
        rotation, faster on millions of nodes.
    random_state : int, optional
        Seed for k-means.
    graph : scipy.sparse.csr_array, shape (n_nodes, n_nodes), optional
        The graph the embedding came from. With ``"kmeans"``, the boundary
        between each two neighbouring clusters is then moved to the best
        normalised cut along the line between their centres (see
        :func:`refine_boundaries`).

    Returns
    -------
    ndarray of int64, shape (n_nodes,)
        Cluster of each node, in ``0 .. n_clusters - 1``.
    """
    return drain(iter_cluster_embedding(embedding, n_clusters, method=method, random_state=random_state, graph=graph))


def iter_cluster_embedding(embedding, n_clusters, *, method="kmeans", random_state=None, graph=None):
    """:func:`cluster_embedding` as a generator yielding the part done (0-1) of a long k-means.

    Returns the clusters as the ``StopIteration`` value.
    """
    if n_clusters == 1:
        return np.zeros(len(embedding), dtype=np.int64)
    if method == "cluster_qr":
        return _cluster_qr(embedding, n_clusters).astype(np.int64)
    if method != "kmeans":
        raise ValueError(f"assign_labels={method!r} is unknown; use one of {LABEL_METHODS}.")
    # float64: scikit-learn's k-means++ seeding computes float32 distances
    # in tiny upcast batches, several times slower than on float64.
    points = np.asarray(embedding[:, :n_clusters], dtype=np.float64)
    km = KMeans(n_clusters=n_clusters, n_init=kmeans_restarts(n_clusters), random_state=random_state)
    fitted = min(len(points), KMEANS_SUBSAMPLE)

    def fit():
        # One thread (OpenMP and BLAS): k-means on <= 20k rows of a few columns
        # is too small to gain from threads, and on a busy machine spinning
        # OpenMP threads made it several times slower.
        with single_threaded("labels"):
            if len(points) <= KMEANS_SUBSAMPLE:
                km.fit(points)
            else:
                rng = np.random.default_rng(random_state)
                # With replacement: a few duplicate rows do not move the centres,
                # and it avoids the O(n) permutation of sampling without.
                sample = np.sort(rng.integers(0, len(points), KMEANS_SUBSAMPLE))
                km.fit(points[sample])

    # Only the fit (hundreds of clusters: seconds) is waited for in a helper
    # thread. The assignment of every node runs here: its temporaries of
    # hundreds of MB would come from fresh mmaps in a thread's own malloc
    # arena, faulted in page by page each time (core/_heap.py).
    fit_share = _fit_share(len(points), fitted, n_clusters)
    yield from relay(iter_waiting(fit, float(kmeans_seconds(fitted, n_clusters))), lambda part: fit_share * part)
    if graph is None:
        with single_threaded("labels"):
            return km.predict(points).astype(np.int64)
    refining = iter_refine_boundaries(graph, points, km.cluster_centers_)
    stages = relay(refining, lambda part: fit_share + (1.0 - fit_share) * part, within=_one_thread)
    return (yield from stages)


def _one_thread():
    return single_threaded("labels")


def _fit_share(rows: int, fitted: int, n_clusters: int) -> float:
    """The fit's share of the time of labelling ``rows`` nodes, ``fitted`` of them fitted."""
    total = float(kmeans_seconds(rows, n_clusters))
    return float(kmeans_seconds(fitted, n_clusters)) / total if total > 0 else 1.0


# Nodes whose position between the two nearest centres is within this
# fraction of the centre distance from the midpoint may change cluster.
REFINE_REACH = 0.25
# Candidate boundary positions per pair of clusters (odd: the midpoint is one).
REFINE_THRESHOLDS = 257


def refine_boundaries(
    graph: sp.csr_array,
    points: np.ndarray,
    centres: np.ndarray,
    reach: float = REFINE_REACH,
    n_thresholds: int = REFINE_THRESHOLDS,
) -> np.ndarray:
    """Nearest-centre clusters, each boundary moved to its best normalised cut.

    k-means puts the boundary between two clusters at the midpoint of their
    centres, which in a smooth embedding can lie well off the graph's
    bottleneck between them (e.g. inside the smaller of two touching
    discs). For each pair of neighbouring clusters ``a, b`` the nodes
    between them are ordered by their position along the line between the
    centres (the relaxed cluster indicator); the threshold on it that
    minimises the pair's terms of the normalised cut,
    ``cut(A, V-A) / vol(A) + cut(B, V-B) / vol(B)``, then decides them: the
    sweep cut with which Shi & Malik (2000) round their eigenvector, here
    restricted to the nodes that are ambiguous between the two centres
    (within ``reach`` of the midpoint, in units of the centre distance).

    Parameters
    ----------
    graph : scipy.sparse.csr_array, shape (n, n)
        Symmetric weights.
    points : ndarray of float64, shape (n, k)
        Embedding rows that were clustered.
    centres : ndarray, shape (n_clusters, k)
        k-means centres of ``points``.
    reach : float
        Nodes whose position between their two nearest centres is within
        ``reach`` of the midpoint (the centres are at +-1/2) may move.
    n_thresholds : int
        Candidate thresholds per pair, evenly spaced over ``[-reach, reach]``.

    Returns
    -------
    ndarray of int64, shape (n,)
        Cluster of each node.
    """
    return drain(iter_refine_boundaries(graph, points, centres, reach, n_thresholds))


def iter_refine_boundaries(
    graph: sp.csr_array,
    points: np.ndarray,
    centres: np.ndarray,
    reach: float = REFINE_REACH,
    n_thresholds: int = REFINE_THRESHOLDS,
) -> Generator[float, None, np.ndarray]:
    """:func:`refine_boundaries` as a generator yielding the part done (0-1) between its stages.

    Returns the clusters as the ``StopIteration`` value.
    """
    n_clusters = len(centres)
    centres = np.asarray(centres, dtype=np.float64)
    labels, second, gap = _nearest_two_centres(points, centres)
    yield 0.4
    # Position along the centre line, in units of the centre distance:
    # +-1/2 at the centres, 0 at the midpoint (nearest side negative).
    diff = centres[:, None, :] - centres[None, :, :]
    dist2 = np.einsum("abk,abk->ab", diff, diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = -gap / (2.0 * dist2.ravel()[labels * n_clusters + second])
    band = np.flatnonzero(pos > -reach)
    if len(band) == 0:
        return labels.astype(np.int64)
    degree, cut, vol = _degree_cut_volume(graph, labels, n_clusters)
    yield 0.8
    thresholds = np.linspace(-reach, reach, n_thresholds)
    bin_of_node = np.full(len(points), -1, dtype=np.int64)
    for a, b, nodes, oriented in _ambiguous_pairs(band, labels, second, pos, n_clusters):
        if not np.isfinite(dist2[a, b]) or dist2[a, b] <= 0:
            continue
        # Bin 0: below every threshold (always side a), n_thresholds: side b.
        bins = np.searchsorted(thresholds, oriented, side="right")
        _sweep_pair(graph, labels, bin_of_node, (degree, cut, vol), (a, b), nodes, bins, n_thresholds)
    return labels.astype(np.int64)


def _nearest_two_centres(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest and runner-up centre of each point, and how much farther the runner-up is (squared)."""
    n, n_clusters = len(points), len(centres)
    # Squared distance to each centre, up to the row's own |x|^2; one row
    # per centre, so that every step below is a pass along n (reductions
    # across a few columns of an (n, k) array are ~10x slower in numpy).
    score = (-2.0 * centres) @ points.T
    score += np.einsum("ij,ij->i", centres, centres)[:, None]
    labels = np.zeros(n, dtype=np.int64)
    nearest = score[0].copy()
    for c in range(1, n_clusters):
        closer = score[c] < nearest
        labels[closer] = c
        np.minimum(nearest, score[c], out=nearest)
    second = np.zeros(n, dtype=np.int64)
    runner_up = np.full(n, np.inf)
    for c in range(n_clusters):
        candidate = np.where(labels == c, np.inf, score[c])
        closer = candidate < runner_up
        second[closer] = c
        np.minimum(runner_up, candidate, out=runner_up)
    return labels, second, runner_up - nearest  # the gap is >= 0


def _degree_cut_volume(
    graph: sp.csr_array, labels: np.ndarray, n_clusters: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each node's degree, and each cluster's cut and volume, all float64."""
    n = len(labels)
    # Each node's edge weight into every cluster, through one product with
    # the cluster indicators (float32, the graph's own dtype: no converted
    # copy); its row sum is the degree, the entry of the node's own cluster
    # the part that is not cut.
    # Indicators scattered into a flat array: a row gather from np.eye is
    # about 3x slower (rows of a few entries).
    own_entry = np.arange(0, n * n_clusters, n_clusters, dtype=np.int64)
    own_entry += labels
    indicator = np.zeros(n * n_clusters, dtype=graph.dtype)
    indicator[own_entry] = 1
    into = graph @ indicator.reshape(n, n_clusters)
    del indicator
    degree = (into @ np.ones(n_clusters, dtype=into.dtype)).astype(np.float64)
    inside = into.ravel()[own_entry].astype(np.float64)
    del own_entry, into
    cut = np.bincount(labels, weights=degree - inside, minlength=n_clusters)
    vol = np.bincount(labels, weights=degree, minlength=n_clusters)
    return degree, cut, vol


def _ambiguous_pairs(
    band: np.ndarray, labels: np.ndarray, second: np.ndarray, pos: np.ndarray, n_clusters: int
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """The nodes of ``band`` grouped by the pair of clusters they lie between.

    Returns ``(a, b, nodes, oriented)`` per pair, ``a < b``, in order of
    ``(a, b)``; ``oriented`` is each node's position along the centre line,
    negative towards ``a``.
    """
    lo_c, hi_c = np.minimum(labels[band], second[band]), np.maximum(labels[band], second[band])
    oriented = np.where(labels[band] == lo_c, pos[band], -pos[band])
    pair_of = lo_c * n_clusters + hi_c
    order = np.argsort(pair_of, kind="stable")
    bounds = np.flatnonzero(np.diff(pair_of[order])) + 1
    return [
        (int(lo_c[group[0]]), int(hi_c[group[0]]), band[group], oriented[group]) for group in np.split(order, bounds)
    ]


def _sweep_pair(graph, labels, bin_of_node, cluster_sums, pair, nodes, bins, n_thresholds):
    """Give ``nodes`` to cluster ``a`` or ``b`` at the threshold of the lowest normalised cut.

    ``bins`` are the nodes' threshold bins; threshold ``g`` puts bins
    ``<= g`` on side ``a``. The middle threshold (the nearest-centre split)
    is kept unless another is strictly better. Updates ``labels`` of
    ``nodes`` and the ``cut`` and ``vol`` of ``a`` and ``b`` (in
    ``cluster_sums = (degree, cut, vol)``) in place; ``bin_of_node`` is
    -1 outside the pair's nodes before and after.
    """
    degree, cut, vol = cluster_sums
    a, b = pair
    mid = n_thresholds // 2  # threshold 0: the nearest-centre split
    bin_of_node[nodes] = bins
    band_a, band_b = _band_cuts(graph, labels, bin_of_node, pair, nodes, bins, n_thresholds)
    vol_a = (
        vol[a]
        - degree[nodes][labels[nodes] == a].sum()
        + np.cumsum(np.bincount(bins, degree[nodes], minlength=n_thresholds + 1))[:n_thresholds]
    )
    vol_b = vol[a] + vol[b] - vol_a
    fixed_a, fixed_b = cut[a] - band_a[mid], cut[b] - band_b[mid]
    with np.errstate(divide="ignore", invalid="ignore"):
        ncut = (fixed_a + band_a) / vol_a + (fixed_b + band_b) / vol_b
    ncut[~np.isfinite(ncut)] = np.inf
    best = int(np.argmin(ncut))
    if not ncut[best] < ncut[mid]:
        best = mid
    labels[nodes] = np.where(bins <= best, a, b)
    cut[a], cut[b] = fixed_a + band_a[best], fixed_b + band_b[best]
    vol[a], vol[b] = vol_a[best], vol_b[best]
    bin_of_node[nodes] = -1


def _edges_at(graph: sp.csr_array, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stored edge of ``nodes``: its node's position in ``nodes``, the neighbour and the float64 weight."""
    starts, stops = graph.indptr[nodes], graph.indptr[nodes + 1]
    n_entries = stops - starts
    owner = np.repeat(np.arange(len(nodes)), n_entries)
    entry = np.arange(len(owner)) - np.repeat(np.cumsum(n_entries) - n_entries, n_entries) + starts[owner]
    return owner, graph.indices[entry], graph.data[entry].astype(np.float64)


def _band_cuts(graph, labels, bin_of_node, pair, nodes, bins, n_thresholds):
    """The part of ``cut(A_g)`` and ``cut(B_g)`` on edges at ``nodes``, for every threshold ``g``.

    ``A_g`` is cluster ``a`` with the nodes of bins ``<= g``, ``B_g`` cluster
    ``b`` with the rest; ``bin_of_node`` holds the bins of ``nodes``, -1 for
    every other node.
    """
    a, b = pair
    g_all = n_thresholds + 1
    owner, neighbour, w = _edges_at(graph, nodes)
    nb_bin = bin_of_node[neighbour]
    # An edge between two band nodes is listed from both ends.
    w = np.where(nb_bin >= 0, 0.5 * w, w)
    nb_label = labels[neighbour]
    nb_bin = np.where(nb_bin >= 0, nb_bin, np.where(nb_label == a, 0, np.where(nb_label == b, n_thresholds, -1)))
    own_bin = bins[owner]
    paired = nb_bin >= 0
    lo = np.minimum(own_bin[paired], nb_bin[paired])
    hi = np.maximum(own_bin[paired], nb_bin[paired])
    # Edge inside a u b: cut between A_g = {bin <= g} and B_g for lo <= g < hi.
    between = np.cumsum(np.bincount(lo, w[paired], minlength=g_all) - np.bincount(hi, w[paired], minlength=g_all))[
        :n_thresholds
    ]
    # Edge to another cluster: cuts A_g for g >= own bin, B_g below it.
    other = np.bincount(own_bin[~paired], w[~paired], minlength=g_all)
    out_a = np.cumsum(other)[:n_thresholds]
    out_b = other.sum() - out_a
    return between + out_a, between + out_b


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
    The scan stops once every value has been seen (a label image's values
    are usually all present).
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
        if not missing.any():  # every value found: the rest of the image cannot change a first index
            break
    return first


def split_counts(eigenvalues_per_component, n_clusters):
    """How many segments each component gets.

    Every component gets one; the remaining ``n_clusters - C`` go to the
    components whose next Laplacian eigenvalue is smallest, i.e. where a
    spectral clustering of the whole (disconnected) graph would spend them.
    """
    n_components = len(eigenvalues_per_component)
    counts = np.ones(n_components, dtype=int)
    extra = n_clusters - n_components
    if extra <= 0:
        return counts
    candidates = [(value, comp) for comp, values in enumerate(eigenvalues_per_component) for value in values[1:]]
    candidates.sort(key=lambda item: item[0])
    for _, comp in candidates[:extra]:
        counts[comp] += 1
    return counts
