"""Seconds of the work that grows with the number of segments: the eigen-solve and k-means.

One cost model serves the guard that refuses runs too long to wait for
(:func:`~.memory.check_run`) and the progress reported while such a step
runs (:func:`~.progress.iter_waiting`), so what the guard lets through is
what the progress expects. The constants are one-thread seconds measured on
this project's 2-core machine, lightly loaded. The functions take numbers
or numpy arrays (one entry per piece of the mask).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KMEANS_ROWS", "kmeans_restarts", "kmeans_seconds", "solve_seconds"]

# Seconds per unit of work: a dense eigh costs n^3 units, ARPACK n * k^2
# (orthogonalising k vectors of n entries) and n * k (its shift-invert
# solves). The calibration is in docs/issue17_tests.md (bench/costs.py).
_DENSE_PER_UNIT = 6e-11
_ARPACK_PER_NODE_VECTOR2, _ARPACK_PER_NODE_VECTOR = 5.5e-9, 9e-8
# LOBPCG, plain or AMG-preconditioned, per iteration on m vectors (m = k, and
# k + 4 for "amg"): n * m (applying the Laplacian) and n * m^2 (its
# Rayleigh-Ritz). Pixel graphs converge slowly: they were measured to run to
# the iteration limit (eigen._lobpcg's maxiter: 500, and 100 for "amg").
_LOBPCG_PER_NODE_VECTOR, _LOBPCG_PER_NODE_VECTOR2 = 3e-8, 1e-9
_LOBPCG_ITERATIONS = {"lobpcg": 500, "amg": 100}
_LOBPCG_EXTRA_VECTORS = {"lobpcg": 0, "amg": 4}  # eigen.GUARD_COLUMNS for "amg"
# The multilevel solver on m = k + 4 vectors (k wanted, multilevel.GUARD_VECTORS
# more). Up to SMOOTH_MIN_NODES nodes every level runs LOBPCG: n * m^2.
# Above, the finest levels are smoothed (n * m for the smoothing steps,
# n * m^2 for one Rayleigh-Ritz) and the coarse levels, whose LOBPCG work
# hardly grows with n, cost about m^2.
_MULTILEVEL_GUARD_VECTORS = 4  # multilevel.GUARD_VECTORS (a test keeps them equal)
_MULTILEVEL_SMOOTH_MIN_NODES = 100_000  # multilevel.SMOOTH_MIN_NODES (likewise)
_MULTILEVEL_SMALL_PER_UNIT = 1.2e-8
_MULTILEVEL_PER_NODE_VECTOR, _MULTILEVEL_PER_NODE_VECTOR2, _MULTILEVEL_COARSE_PER_VECTOR2 = 5.6e-8, 9e-11, 5e-4
# k-means: n * c^2 units per restart of c clusters (k-means++ seeding and
# Lloyd's iterations) on at most KMEANS_ROWS rows; started at seed points,
# one fit that converges in a few iterations. Then every row of the piece is
# assigned and its boundary refined: n * c units.
_KMEANS_SECONDS_PER_UNIT = 3.5e-9
_SEEDED_KMEANS_SECONDS_PER_UNIT = 2e-9
_ASSIGN_SECONDS_PER_ROW_CLUSTER = 7e-8
# k-means is fitted on at most this many rows (labels.KMEANS_SUBSAMPLE).
KMEANS_ROWS = 20_000
# Up to this many clusters k-means keeps scikit-learn's 10 restarts; above,
# fewer, so that no fit costs more than 10 restarts of this many clusters
# (one restart from about 200 clusters): with hundreds of small clusters a
# restart changes little, and ten of them dominated the run.
_FULL_RESTART_CLUSTERS = 64
_RESTARTS = 10


def kmeans_restarts(n_clusters):
    """Restarts (``n_init``) of the k-means that labels ``n_clusters`` clusters."""
    budget = _RESTARTS * _FULL_RESTART_CLUSTERS**2
    clusters = np.maximum(np.asarray(n_clusters, dtype=np.int64), 1)
    restarts = np.clip(budget // clusters**2, 1, _RESTARTS)
    return int(restarts) if restarts.ndim == 0 else restarts


def solve_seconds(solver: str, n, k):
    """Seconds of the eigen-solve of ``k`` vectors on ``n`` nodes by ``solver`` (as resolved)."""
    n, k = np.asarray(n, dtype=np.float64), np.asarray(k, dtype=np.float64)
    if solver == "dense":
        return _DENSE_PER_UNIT * n**3
    if solver == "arpack":
        return _ARPACK_PER_NODE_VECTOR2 * n * k**2 + _ARPACK_PER_NODE_VECTOR * n * k
    if solver in _LOBPCG_ITERATIONS:
        m = k + _LOBPCG_EXTRA_VECTORS[solver]
        per_iteration = _LOBPCG_PER_NODE_VECTOR * n * m + _LOBPCG_PER_NODE_VECTOR2 * n * m**2
        return _LOBPCG_ITERATIONS[solver] * per_iteration
    m = k + _MULTILEVEL_GUARD_VECTORS
    small = _MULTILEVEL_SMALL_PER_UNIT * n * m**2
    large = (
        _MULTILEVEL_PER_NODE_VECTOR * n * m
        + _MULTILEVEL_PER_NODE_VECTOR2 * n * m**2
        + _MULTILEVEL_COARSE_PER_VECTOR2 * m**2
    )
    return np.where(n <= _MULTILEVEL_SMOOTH_MIN_NODES, small, large)


def kmeans_seconds(rows, n_clusters, *, seeded: bool = False):
    """Seconds of the k-means of ``rows`` points into ``n_clusters`` clusters (0 for one).

    The fit (on at most :data:`KMEANS_ROWS` of them) and, unless ``seeded``,
    the assignment and boundary refinement of every row.
    """
    rows = np.asarray(rows, dtype=np.float64)
    fitted = np.minimum(rows, KMEANS_ROWS)
    clusters = np.asarray(n_clusters, dtype=np.int64)
    c = clusters.astype(np.float64)
    if seeded:
        seconds = _SEEDED_KMEANS_SECONDS_PER_UNIT * fitted * c**2
    else:
        per_unit = _KMEANS_SECONDS_PER_UNIT * kmeans_restarts(clusters)
        seconds = per_unit * fitted * c**2 + _ASSIGN_SECONDS_PER_ROW_CLUSTER * rows * c
    return np.where(clusters > 1, seconds, 0.0)
