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

# Seconds per unit of work: a dense eigh costs n^3 units, the other solvers
# n * k^2 (orthogonalising k vectors of n entries). The multilevel constant
# is a compromise: a few vectors of megapixels cost far less per unit than
# hundreds of vectors (the calibration is in docs/issue17_tests.md).
_SECONDS_PER_UNIT = {"dense": 6e-11, "arpack": 9e-9, "lobpcg": 1e-8, "amg": 1e-8, "multilevel": 6e-9}
# k-means: n * c^2 units per restart of c clusters (k-means++ seeding,
# Lloyd's iterations and the boundary refinement); started at seed points,
# one fit that converges in a few iterations.
_KMEANS_SECONDS_PER_UNIT = 3.5e-9
_SEEDED_KMEANS_SECONDS_PER_UNIT = 2e-9
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
    work = n**3 if solver == "dense" else n * k**2
    return _SECONDS_PER_UNIT[solver] * work


def kmeans_seconds(rows, n_clusters, *, seeded: bool = False):
    """Seconds of the k-means of ``rows`` points (before subsampling) into ``n_clusters`` clusters (0 for one)."""
    rows = np.minimum(np.asarray(rows, dtype=np.float64), KMEANS_ROWS)
    clusters = np.asarray(n_clusters, dtype=np.int64)
    per_unit = _SEEDED_KMEANS_SECONDS_PER_UNIT if seeded else _KMEANS_SECONDS_PER_UNIT * kmeans_restarts(clusters)
    return np.where(clusters > 1, per_unit * rows * clusters.astype(np.float64) ** 2, 0.0)
