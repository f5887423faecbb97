"""Seconds of the work that grows with the number of segments: the eigen-solve and k-means.

One cost model serves the guard that refuses runs too long to wait for
(:func:`~.memory.check_run`), the progress reported while such a step runs
(:func:`~.progress.iter_waiting`) and each step's share of the progress
fraction (:mod:`.shares`), so what the guard lets through is what the
progress expects. The behaviour it costs (k-means' restarts and subsample)
is decided in :mod:`.labels`. The constants are one-thread seconds measured on
this project's 2-core machine, lightly loaded. The functions take numbers
or numpy arrays (one entry per piece of the mask).
"""

from __future__ import annotations

import numpy as np

__all__ = ["kmeans_seconds", "solve_seconds"]

# Seconds per unit of work: a dense eigh costs n^3 units, ARPACK n^1.4 (the
# factorisation of a pixel graph's Laplacian, which dominates for a few
# vectors), n * k^2 (orthogonalising k vectors of n entries) and n * k (its
# shift-invert solves). The calibration is in docs/issue17_tests.md
# (bench/costs.py; the factorisation: bench/progress.py).
_DENSE_PER_UNIT = 6e-11
_ARPACK_FACTOR_PER_UNIT, _ARPACK_FACTOR_POWER = 1.16e-7, 1.4
_ARPACK_PER_NODE_VECTOR2, _ARPACK_PER_NODE_VECTOR = 5.5e-9, 9e-8
# Each piece's solve has a fixed cost too (building the Laplacian, starting
# the solver; the multilevel solver's coarsening): it dominates many small
# pieces' solves.
_PIECE_OVERHEAD = {"dense": 2e-3, "arpack": 2e-3, "lobpcg": 2e-3, "amg": 2e-3, "multilevel": 0.06}
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
# Lloyd's iterations) on the rows it is fitted on; started at seed points,
# one fit that converges in a few iterations. Then every row of the piece is
# assigned and its boundary refined: n * c units.
_KMEANS_SECONDS_PER_UNIT = 3.5e-9
_SEEDED_KMEANS_SECONDS_PER_UNIT = 2e-9
_ASSIGN_SECONDS_PER_ROW_CLUSTER = 7e-8


def solve_seconds(solver: str, n, k):
    """Seconds of the eigen-solve of ``k`` vectors on ``n`` nodes by ``solver`` (as resolved).

    ``solver`` is what :func:`.eigen.resolve_solver` returns; the fixed
    cost of each piece's solve is included.
    """
    if solver not in _PIECE_OVERHEAD:
        raise ValueError(f"solver={solver!r} is not one of {list(_PIECE_OVERHEAD)} (resolve it first)")
    n, k = np.asarray(n, dtype=np.float64), np.asarray(k, dtype=np.float64)
    return _PIECE_OVERHEAD[solver] + _work_seconds(solver, n, k)


def _work_seconds(solver: str, n: np.ndarray, k: np.ndarray):
    """:func:`solve_seconds` without the fixed cost of each piece."""
    if solver == "dense":
        return _DENSE_PER_UNIT * n**3
    if solver == "arpack":
        vectors = _ARPACK_PER_NODE_VECTOR2 * n * k**2 + _ARPACK_PER_NODE_VECTOR * n * k
        return _ARPACK_FACTOR_PER_UNIT * n**_ARPACK_FACTOR_POWER + vectors
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


def kmeans_seconds(rows, n_clusters, *, fitted_rows, restarts, seeded: bool = False):
    """Seconds of the k-means of ``rows`` points into ``n_clusters`` clusters (0 for one).

    The fit (``restarts`` of them on ``fitted_rows`` of the rows; seeded:
    one) and, unless ``seeded``, the assignment and boundary refinement of
    every row. :func:`.labels.kmeans_seconds` passes what it runs.
    """
    rows = np.asarray(rows, dtype=np.float64)
    fitted = np.asarray(fitted_rows, dtype=np.float64)
    clusters = np.asarray(n_clusters, dtype=np.int64)
    c = clusters.astype(np.float64)
    if seeded:
        seconds = _SEEDED_KMEANS_SECONDS_PER_UNIT * fitted * c**2
    else:
        per_unit = _KMEANS_SECONDS_PER_UNIT * np.asarray(restarts)
        seconds = per_unit * fitted * c**2 + _ASSIGN_SECONDS_PER_ROW_CLUSTER * rows * c
    return np.where(clusters > 1, seconds, 0.0)
