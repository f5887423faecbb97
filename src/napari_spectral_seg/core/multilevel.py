"""Coarse-to-fine (multilevel) eigen-solver for large pixel graphs.

The graph is coarsened by aggregating nodes across *strong* edges only
(:mod:`.coarsen`). The coarse graph is the Galerkin projection
``W_c = P^T W P`` of the fine one onto the aggregates, so its generalised
eigenproblem ``(D_c - W_c) x = lambda D_c x`` is the Rayleigh-Ritz
restriction of the fine problem to piecewise-constant vectors.

The smallest eigenvectors are computed exactly (dense) on the coarsest level,
interpolated to the next finer level (piecewise constant) and refined there,
level by level, with a lean LOBPCG (:func:`.refine.refine_block`); on the two
finest, by far the largest, levels a few Chebyshev smoothing steps and one
Rayleigh-Ritz (:func:`.refine.smooth_block`) replace it. Interpolation leaves
mostly high-frequency error, which smoothing removes cheaply; smooth error is
removed on the coarse levels, where iterations are cheap (a level of
``n_l`` nodes gets about ``3e5 / n_l`` of them). A full-resolution solve
from random vectors, by contrast, has to separate nearly equal tiny
eigenvalues (1e-7 at 16 MP) and needs many expensive iterations: measured
ARI 0.72 at 4096^2 for AMG-preconditioned LOBPCG.

Blocks are float32 (the Laplacian is applied through edge differences, see
:class:`.refine.EdgeLaplacian`, so the tiny eigenvalues survive), small dense
problems float64, BLAS single-threaded. Time and memory are O(n): the blocks
(``n x 3(k+4)`` twice on LOBPCG levels) and the graphs and incidence
matrices of all levels (about 1.25 times the finest).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.linalg
import scipy.sparse as sp

from ._threads import single_threaded
from .coarsen import GraphLevels, iter_coarsen_levels
from .progress import drain, relay
from .refine import EdgeLaplacian, iter_smooth_block, refine_block

__all__ = ["iter_multilevel_eigenvectors", "multilevel_eigenvectors"]

# Stop coarsening at this many nodes: a dense eigen-solve of this size takes
# a few milliseconds.
COARSEST_SIZE = 600
# Extra ("guard") vectors carried along with the k wanted ones: the subspace
# of the k smallest eigenvectors converges at a rate set by the gap to the
# (k + guard)-th eigenvalue instead of the (k + 1)-th, which may be tiny.
GUARD_VECTORS = 4
# Levels smaller than this are refined with LOBPCG even where the defaults
# ask for smoothing only: it is cheap there and makes small graphs accurate.
SMOOTH_MIN_NODES = 100_000
# Share of the coarsening phase in the progress that
# iter_multilevel_eigenvectors reports (its share of the solve's CPU time, bench/progress.py).
_COARSEN_SHARE = 0.3
# The cost of one LOBPCG iteration, and of a smoothed level's set-up and
# final Rayleigh-Ritz, in smoothing steps over the same nodes (calibrated
# with bench/progress.py).
_LOBPCG_STEPS, _SMOOTH_SETUP_STEPS, _SMOOTH_RITZ_STEPS = 9.0, 2.5, 5.0


def multilevel_eigenvectors(graph: sp.csr_array, k: int, **options) -> tuple[np.ndarray, np.ndarray, dict]:
    """Smallest eigenpairs of the normalised Laplacian by coarse-to-fine refinement.

    Parameters
    ----------
    graph : scipy.sparse.csr_array, shape (n, n)
        Symmetric weights of one connected graph, no self-loops.
    k : int
        Number of eigenpairs wanted.
    rng : numpy.random.Generator, optional
        Fills extra start columns when the coarsest level has fewer than
        ``k + guard`` nodes.
    coarsest : int
        Coarsen until at most this many nodes remain.
    iterations : int
        Maximum LOBPCG iterations on the finest level (the expensive one).
    middle_iterations, coarse_iterations : int
        Least and most LOBPCG iterations on the coarser levels; in between,
        a level of ``n_l`` nodes gets ``work / n_l`` iterations (each level
        is about 5x smaller than the next finer one, so iterations there
        are cheap).
    work : float
        Node-iterations per coarse level, see above. Smooth error is only
        removed efficiently on coarse levels: plain LOBPCG on a fine level
        converges the nearly equal smallest eigenvalues very slowly, so
        accuracy is bought here and the finest levels only smooth (the
        defaults are measured in ``docs/solver_tuning.md``).
    smoothing_steps : int, sequence of int or None
        On the ``smooth_levels`` finest levels, this many smoothing steps
        (per level, finest first, for a sequence) and one Rayleigh-Ritz
        (see :func:`.refine.smooth_block`) instead of LOBPCG iterations; None
        runs ``iterations`` LOBPCG iterations on the finest level.
    smooth_levels : int
        How many of the finest levels are smoothed rather than iterated
        (only levels of more than ``SMOOTH_MIN_NODES`` nodes).
    smoothing_lower : float or None
        Chebyshev smoothing of ``D^-1 L`` eigenvalues in ``[smoothing_lower, 2]``;
        None: damped Jacobi (``omega = 2/3``).
    tol : float
        Relative residual tolerance per level (see :func:`.refine.refine_block`).
    guard : int
        Extra vectors iterated with the wanted ones.
    dtype : numpy dtype
        Floating type of the per-level blocks (float32 halves memory traffic;
        see :class:`.refine.EdgeLaplacian` for why it stays accurate).

    Returns
    -------
    eigenvalues : ndarray of float64, shape (k,)
        Ascending; eigenvalues of ``I - D^-1/2 W D^-1/2``.
    embedding : ndarray, shape (n, k)
        Random-walk eigenvectors ``x`` with ``L x = lambda D x``, i.e.
        ``D^-1/2 u`` for the normalised Laplacian's unit eigenvectors ``u``.
    info : dict
        ``levels`` (node count per level, finest first), ``iterations`` and
        ``seconds`` per refined level (coarsest first) and ``coarsen_seconds``.
    """
    return drain(iter_multilevel_eigenvectors(graph, k, **options))


def _blas_single_threaded():
    """One BLAS thread for a step: threads only slow small dense problems down, on a busy machine dramatically."""
    return single_threaded("eigen", user_api="blas")


@dataclass(frozen=True)
class _RefinementSchedule:
    """How each level is refined: the options of :func:`multilevel_eigenvectors` that decide it."""

    iterations: int
    middle_iterations: int
    coarse_iterations: int
    work: float
    smoothing_steps: int | Sequence[int] | None
    smooth_levels: int

    def plan(self, level: int, nodes: int) -> tuple[str, int]:
        """``("smooth", steps)`` or ``("lobpcg", iterations)`` for a level of ``nodes`` nodes."""
        steps = self.smoothing_steps
        if level < self.smooth_levels and steps is not None and nodes > SMOOTH_MIN_NODES:
            # Small graphs can afford LOBPCG refinement on every level.
            return "smooth", steps if np.isscalar(steps) else steps[level]
        if level == 0 and steps is None:
            return "lobpcg", self.iterations
        # Iterations cost O(n_level); spend them where they are cheap.
        return "lobpcg", int(np.clip(self.work / nodes, self.middle_iterations, self.coarse_iterations))


def _progress_spans(plans: list[tuple[str, int]], levels: GraphLevels) -> list[tuple[float, float]]:
    """Progress fractions (start, end) of refining each level, finest first.

    Refinement after coarsening is shared out by each level's work:
    node-steps, a LOBPCG iteration counted as ``_LOBPCG_STEPS`` smoothing
    steps and a smoothed level's set-up and Rayleigh-Ritz as theirs, plus a
    fixed overhead. Levels are refined coarsest first.
    """
    costs = [
        levels.graphs[level].shape[0]
        * (count + _SMOOTH_SETUP_STEPS + _SMOOTH_RITZ_STEPS if kind == "smooth" else count * _LOBPCG_STEPS)
        + 2e4
        for level, (kind, count) in enumerate(plans)
    ]
    total = float(sum(costs)) or 1.0
    spans = [(0.0, 0.0)] * len(costs)
    refined = 0.0
    for level in range(len(costs) - 1, -1, -1):
        start = _COARSEN_SHARE + (1 - _COARSEN_SHARE) * refined / total
        refined += costs[level]
        spans[level] = (start, _COARSEN_SHARE + (1 - _COARSEN_SHARE) * refined / total)
    return spans


def _dense_coarsest(graph: sp.csr_array, degree: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` smallest eigenpairs of ``(D - W) x = lambda D x`` by a dense solve."""
    n_nodes = len(degree)
    weights = graph.toarray().astype(np.float64)
    np.fill_diagonal(weights, 0.0)
    # L = D_off - W_off: self-loop weight counts in the volume d but
    # cancels in the Laplacian. Solved as the standard problem
    # D^-1/2 L D^-1/2 u = lambda u, x = D^-1/2 u (the generalised
    # driver is several times slower).
    inv_sqrt = 1.0 / np.sqrt(degree)
    sym = -(weights * inv_sqrt[:, None]) * inv_sqrt[None, :]
    sym[np.diag_indices(n_nodes)] = weights.sum(axis=1) / degree
    values, u = scipy.linalg.eigh(sym, subset_by_index=(0, min(m, n_nodes) - 1), driver="evr")
    return values, u * inv_sqrt[:, None]


def _solve_coarsest(
    graph: sp.csr_array, degree: np.ndarray, m: int, coarsest: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """``m`` eigenpairs of the coarsest level: dense, or LOBPCG where coarsening stalled on a big graph.

    Returns the values, the block (``m`` columns, random ones past the
    level's node count) and the LOBPCG iterations (None for a dense solve).
    """
    n_nodes = len(degree)
    iterations = None
    if n_nodes > 4 * coarsest:
        x0 = rng.standard_normal((n_nodes, m))
        x0[:, 0] = 1.0
        values, x, iterations = refine_block(EdgeLaplacian(graph, np.float64), degree, x0, 300, tol=1e-6)
    else:
        values, x = _dense_coarsest(graph, degree, m)
    if x.shape[1] < m:
        x = np.hstack([x, rng.standard_normal((n_nodes, m - x.shape[1]))])
    return values, x, iterations


def _iter_smooth_level(
    graph: sp.csr_array,
    degree: np.ndarray,
    x: np.ndarray,
    values: np.ndarray,
    steps: int,
    lower: float | None,
    describe: str,
    span: tuple[float, float],
) -> Generator[tuple[float, str], None, tuple[np.ndarray, np.ndarray]]:
    """Smooth one level's block, reporting each step within the progress ``span``."""
    start_fraction, fraction = span

    def step_progress(update):
        done, _ = update
        # The set-up and the final Rayleigh-Ritz cost a few steps each.
        total = steps + _SMOOTH_SETUP_STEPS + _SMOOTH_RITZ_STEPS
        part = start_fraction + (fraction - start_fraction) * (done + _SMOOTH_SETUP_STEPS) / total
        return part, f"{describe}: smoothing step {done} of {steps}"

    # The guard vectors stay: a final Rayleigh-Ritz over all k + 4 columns
    # is about 10x more accurate than over k. Each step is reported: on the
    # finest level of a 16 MP image they take seconds together.
    smoothing = iter_smooth_block(graph, degree, x, steps, values=values, lower=lower, overwrite=True)
    return (yield from relay(smoothing, step_progress, within=_blas_single_threaded))


def _iter_refine_level(
    levels: GraphLevels,
    level: int,
    x: np.ndarray,
    values: np.ndarray,
    plan: tuple[str, int],
    span: tuple[float, float],
    *,
    smoothing_lower: float | None,
    tol: float,
    dtype: npt.DTypeLike,
) -> Generator[tuple[float, str], None, tuple[np.ndarray, np.ndarray, int]]:
    """Interpolate the next coarser level's block onto ``level`` and refine it as ``plan`` says.

    Returns the Ritz values, the block and the iterations or steps run.
    """
    kind, count = plan
    graph = levels.graphs[level]
    degree = levels.degrees[level].astype(dtype)
    # Piecewise-constant interpolation keeps the block D-orthonormal, since
    # P^T D_f P = D_c.
    with _blas_single_threaded():
        x = x[levels.aggregate_of_node[level]].astype(dtype, copy=False)
    if kind == "smooth":
        describe = f"refining level {level} ({graph.shape[0]} nodes)"
        values, x = yield from _iter_smooth_level(graph, degree, x, values, count, smoothing_lower, describe, span)
        return values, x, count
    with _blas_single_threaded():
        return refine_block(EdgeLaplacian(graph, dtype), degree, x, count, tol)


def iter_multilevel_eigenvectors(
    graph: sp.csr_array,
    k: int,
    *,
    rng: np.random.Generator | None = None,
    coarsest: int = COARSEST_SIZE,
    iterations: int = 2,
    middle_iterations: int = 5,
    coarse_iterations: int = 20,
    work: float = 3e5,
    smoothing_steps: int | Sequence[int] | None = (5, 10),
    smooth_levels: int = 2,
    smoothing_lower: float | None = 0.4,
    tol: float = 1e-3,
    guard: int = GUARD_VECTORS,
    dtype: npt.DTypeLike = np.float32,
) -> Generator[tuple[float, str], None, tuple[np.ndarray, np.ndarray, dict]]:
    """:func:`multilevel_eigenvectors` as a generator that reports its progress.

    Yields ``(fraction, message)`` after each coarsening step, after each
    refined level and after each smoothing step: ``fraction`` in [0, 1] is an
    estimate of the work done (coarsening about a quarter, the rest in
    proportion to the nodes of the refined levels). Nothing native runs
    single-threaded while it is suspended, so the consumer may do anything
    between steps, or stop (close the generator) to cancel.

    Parameters
    ----------
    graph, k, rng, coarsest, iterations, middle_iterations, coarse_iterations, work
        As for :func:`multilevel_eigenvectors`.
    smoothing_steps, smooth_levels, smoothing_lower, tol, guard, dtype
        As for :func:`multilevel_eigenvectors`.

    Returns
    -------
    eigenvalues, embedding, info
        As :func:`multilevel_eigenvectors` returns them, as the ``StopIteration`` value.
    """
    rng = np.random.default_rng() if rng is None else rng
    m = min(k + guard, graph.shape[0])

    t_start = time.perf_counter()
    levels = yield from relay(
        iter_coarsen_levels(graph, coarsest), lambda update: (_COARSEN_SHARE * update[0], update[1])
    )
    info = {
        "levels": [g.shape[0] for g in levels.graphs],
        "iterations": [],
        "seconds": [],
        "coarsen_seconds": time.perf_counter() - t_start,
    }
    with _blas_single_threaded():
        values, x, coarsest_iterations = _solve_coarsest(levels.graphs[-1], levels.degrees[-1], m, coarsest, rng)
    if coarsest_iterations is not None:
        info["iterations"].append(coarsest_iterations)

    schedule = _RefinementSchedule(
        iterations, middle_iterations, coarse_iterations, work, smoothing_steps, smooth_levels
    )
    plans = [schedule.plan(level, levels.graphs[level].shape[0]) for level in range(len(levels.aggregate_of_node))]
    spans = _progress_spans(plans, levels)
    yield _COARSEN_SHARE, f"solved the coarsest level ({len(levels.degrees[-1])} nodes)"

    for level in range(len(plans) - 1, -1, -1):
        t_level = time.perf_counter()
        values, x, level_iterations = yield from _iter_refine_level(
            levels, level, x, values, plans[level], spans[level], smoothing_lower=smoothing_lower, tol=tol, dtype=dtype
        )
        info["iterations"].append(level_iterations)
        info["seconds"].append(time.perf_counter() - t_level)
        yield spans[level][1], f"refined level {level} ({levels.graphs[level].shape[0]} nodes)"
    return np.asarray(values[:k], dtype=np.float64), x[:, :k], info
