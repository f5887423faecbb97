"""Coarse-to-fine (multilevel) eigen-solver for large pixel graphs.

The graph is coarsened by aggregating nodes across *strong* edges only
(edges whose weight is close to the strongest edge of both end nodes), so
that aggregates rarely straddle an intensity edge. The coarse graph is the
Galerkin projection ``W_c = P^T W P`` of the fine one onto the aggregates
(``P`` is the 0/1 node-to-aggregate matrix), which keeps the volumes and cut
weights of every union of aggregates exactly; its generalised eigenproblem
``(D_c - W_c) x = lambda D_c x`` is therefore the Rayleigh-Ritz restriction of
the fine problem to piecewise-constant vectors.

The smallest eigenvectors are computed exactly (dense) on the coarsest level,
interpolated to the next finer level (piecewise constant) and refined there,
level by level, with a lean LOBPCG (:func:`refine_block`); on the two
finest, by far the largest, levels a few Chebyshev smoothing steps and one
Rayleigh-Ritz (:func:`smooth_block`) replace it. Interpolation leaves mostly
high-frequency error, which smoothing removes cheaply; smooth error is
removed on the coarse levels, where iterations are cheap (a level of
``n_l`` nodes gets about ``3e5 / n_l`` of them). A full-resolution solve
from random vectors, by contrast, has to separate nearly equal tiny
eigenvalues (1e-7 at 16 MP) and needs many expensive iterations: measured
ARI 0.72 at 4096^2 for AMG-preconditioned LOBPCG.

Blocks are float32 (the Laplacian is applied through edge differences, see
:class:`_Laplacian`, so the tiny eigenvalues survive), small dense problems
float64, BLAS single-threaded. Time and memory are O(n): the blocks
(``n x 3(k+4)`` twice on LOBPCG levels) and the graphs and incidence
matrices of all levels (about 1.25 times the finest).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ._threads import single_threaded

__all__ = ["coarsen_graph", "iter_multilevel_eigenvectors", "multilevel_eigenvectors"]

# Stop coarsening at this many nodes: a dense eigen-solve of this size takes
# a few milliseconds.
COARSEST_SIZE = 600
# An edge is "strong" when its weight is at least this fraction of the
# geometric mean of the two end nodes' strongest edge weights.
STRENGTH_THETA = 0.5
# Extra ("guard") vectors carried along with the k wanted ones: the subspace
# of the k smallest eigenvectors converges at a rate set by the gap to the
# (k + guard)-th eigenvalue instead of the (k + 1)-th, which may be tiny.
GUARD_VECTORS = 4
# Levels smaller than this are refined with LOBPCG even where the defaults
# ask for smoothing only: it is cheap there and makes small graphs accurate.
SMOOTH_MIN_NODES = 100_000
# Share of the coarsening phase in the progress that
# iter_multilevel_eigenvectors reports (measured 0.11 of 0.45 s at 1600^2).
_COARSEN_SHARE = 0.25
# Rows per chunk of the element-wise smoothing update (fits in L2 cache).
_SMOOTH_CHUNK = 16_384


def _row_max(graph: sp.csr_array, row: np.ndarray | None = None) -> np.ndarray:
    """Largest off-diagonal weight of each row (0 for a row with none).

    ``row`` is the row number of every stored entry, if already at hand.
    Weights are non-negative, so starting from 0 is exact.
    """
    n = graph.shape[0]
    if row is None:
        row = np.repeat(np.arange(n, dtype=graph.indices.dtype), np.diff(graph.indptr))
    data = np.where(graph.indices != row, graph.data, 0)
    out = np.zeros(n, dtype=graph.data.dtype)
    # Unbuffered maximum: measured 2x faster than reduceat over many short rows.
    np.maximum.at(out, row, data)
    return out


def aggregate_nodes(graph: sp.csr_array, theta: float = STRENGTH_THETA) -> tuple[np.ndarray, int]:
    """Group nodes into small aggregates joined by strong edges.

    Parameters
    ----------
    graph : scipy.sparse.csr_array, shape (n, n)
        Symmetric non-negative weights (self-loops allowed and ignored).
    theta : float
        Edge ``ij`` is strong when ``w_ij >= theta * sqrt(m_i m_j)``, with
        ``m_i`` the largest weight at node ``i``.

    Returns
    -------
    aggregate_of_node : ndarray of int64, shape (n,)
        Aggregate number of each node, ``0 .. n_aggregates - 1``.
    n_aggregates : int
    """
    from pyamg import amg_core

    n = graph.shape[0]
    row = np.repeat(np.arange(n, dtype=np.int32), np.diff(graph.indptr))
    row_max = _row_max(graph, row)
    col = graph.indices
    # w >= theta sqrt(m_i m_j), squared: no square roots over all edges.
    # A node without a positive weight gets m = inf: none of its edges is
    # strong (zero weights never are).
    row_max = np.where(row_max > 0, row_max, np.inf).astype(row_max.dtype, copy=False)
    bound = np.repeat(row_max * row_max.dtype.type(theta * theta), np.diff(graph.indptr))
    bound *= row_max[col]
    strong = np.square(graph.data) >= bound
    del bound
    strong &= row != col
    # Strong entries keep the CSR order: the row pointers are a running count.
    running = np.zeros(len(strong) + 1, dtype=np.int32)
    np.cumsum(strong, out=running[1:])
    indptr = running[graph.indptr]
    del running
    indices = col[strong].astype(np.int32, copy=False)
    agg = np.empty(n, dtype=np.int32)
    roots = np.empty(n, dtype=np.int32)
    n_agg = amg_core.standard_aggregation(n, indptr, indices, agg, roots)
    agg = agg.astype(np.int64)
    # Nodes without a strong edge stay alone (pyamg leaves them at -1).
    lonely = agg < 0
    n_lonely = int(lonely.sum())
    agg[lonely] = n_agg + np.arange(n_lonely)
    return agg, int(n_agg + n_lonely)


def coarsen_graph(graph: sp.csr_array, aggregate_of_node: np.ndarray, n_aggregates: int) -> sp.csr_array:
    """Galerkin coarse graph ``P^T W P`` (internal weights become self-loops).

    Parameters
    ----------
    graph : scipy.sparse.csr_array, shape (n, n)
    aggregate_of_node : ndarray of int, shape (n,)
    n_aggregates : int

    Returns
    -------
    scipy.sparse.csr_array, shape (n_aggregates, n_aggregates)
        Same dtype as ``graph``; row sums equal the aggregated degrees.
    """
    index_dtype = np.int32 if n_aggregates < 2**31 - 1 else np.int64
    agg = aggregate_of_node.astype(index_dtype, copy=False)
    row = np.repeat(agg, np.diff(graph.indptr))
    col = agg[graph.indices]
    coarse = sp.coo_array((graph.data, (row, col)), shape=(n_aggregates, n_aggregates))
    coarse = coarse.tocsr()  # sums duplicate entries
    coarse.sum_duplicates()
    return coarse


class _Laplacian:
    """Action of the combinatorial Laplacian ``L = D - W`` through edge differences.

    ``L x = B^T diag(w) B x`` with ``B`` the (edges x nodes) incidence matrix.
    Forming ``x_i - x_j`` first is what keeps float32 usable: the wanted
    eigenvalues are ~1e-7 at 16 MP, far below float32's resolution of
    ``D x - W x`` (a difference of two O(1) numbers), while the difference of
    two nearby float32 numbers is exact.
    """

    def __init__(self, graph: sp.csr_array, dtype):
        n = graph.shape[0]
        index_dtype = np.int32 if max(n, graph.nnz) < 2**31 - 1 else np.int64
        row = np.repeat(np.arange(n, dtype=index_dtype), np.diff(graph.indptr))
        upper = graph.indices > row  # each undirected edge once, no self-loops
        heads = row[upper]
        tails = graph.indices[upper]
        del row
        # float32 sqrt is correctly rounded: same as via float64.
        root_w = np.sqrt(graph.data[upper].astype(dtype))
        n_edges = len(heads)
        indptr = np.arange(0, 2 * n_edges + 1, 2, dtype=index_dtype)
        cols = np.empty(2 * n_edges, dtype=index_dtype)
        cols[0::2], cols[1::2] = heads, tails
        data = np.empty(2 * n_edges, dtype=dtype)
        data[0::2], data[1::2] = root_w, -root_w
        self.b = sp.csr_array((data, cols, indptr), shape=(n_edges, n))
        # The transpose as a CSC view: its product scatters over the same
        # arrays, no converted copy needed (measured faster overall).
        self.bt = self.b.T
        self.shape = (n, n)
        self.dtype = np.dtype(dtype)

    def __matmul__(self, x):
        return self.bt @ (self.b @ x)


def _rayleigh_ritz(basis, l_basis, degree, m, gram_l=None):
    """Best m-dimensional subspace of span(basis) for ``L x = lambda D x``.

    The Gram matrices are formed in the block dtype, then scaled to a unit
    diagonal and solved in float64 (scaling the small matrices replaces
    normalising the tall columns, which would be extra passes over memory).
    A nearly dependent basis is pruned through the eigen-decomposition of
    the D-Gram matrix rather than a Cholesky factor that could fail.

    Returns
    -------
    values : ndarray of float64, shape (m,)
    coef : ndarray, shape (basis.shape[1], m), dtype of ``basis``
        Ritz vectors are ``basis @ coef`` (D-orthonormal).
    """
    scaled = basis * np.sqrt(degree)[:, None]
    gram_d = (scaled.T @ scaled).astype(np.float64)
    del scaled
    gram_l = (basis.T @ l_basis if gram_l is None else gram_l).astype(np.float64)
    diag = np.sqrt(np.clip(np.diag(gram_d), 1e-300, None))
    gram_d = gram_d / diag[:, None] / diag[None, :]
    gram_l = gram_l / diag[:, None] / diag[None, :]
    gram_l = (gram_l + gram_l.T) / 2
    gram_d = (gram_d + gram_d.T) / 2
    s, v = np.linalg.eigh(gram_d)
    cutoff = 1e-12 if basis.dtype == np.float64 else 1e-6
    keep = s > s.max() * cutoff
    v = v[:, keep] / np.sqrt(s[keep])
    values, c = np.linalg.eigh(v.T @ gram_l @ v)
    coef = (v @ c[:, :m]) / diag[:, None]
    return values[:m], coef.astype(basis.dtype)


def refine_block(lap, degree, x, iterations, tol=1e-3):
    """A few LOBPCG iterations for ``L x = lambda D x`` (Jacobi preconditioner).

    Parameters
    ----------
    lap : _Laplacian
        Operator ``L``, shape (n, n).
    degree : ndarray, shape (n,)
        Diagonal of ``D``, same dtype as ``x``.
    x : ndarray, shape (n, m)
        Start block, e.g. interpolated from a coarser level.
    iterations : int
        Maximum iterations (each costs one application of ``L`` to m vectors).
    tol : float
        Stop when every column's residual ``||L x - lambda D x||_{D^-1}`` is
        below ``tol * max(lambda, lambda_2)``: relative, since the wanted
        eigenvalues are tiny and an absolute tolerance would be meaningless.

    Returns
    -------
    values : ndarray of float64, shape (m,)
    x : ndarray, shape (n, m)
        D-orthonormal Ritz vectors.
    n_iterations : int
    """
    n, m = x.shape
    dtype = x.dtype
    # One preallocated (n, 3m) basis [X, T, P] and its image under L: the
    # solver is memory-bound, so every avoided temporary block counts.
    basis = np.empty((n, 3 * m), dtype=dtype, order="F")
    l_basis = np.empty((n, 3 * m), dtype=dtype, order="F")
    xs, ts, ps = slice(0, m), slice(m, 2 * m), slice(2 * m, 3 * m)
    basis[:, xs] = x
    l_basis[:, xs] = lap @ x
    d_col = degree[:, None]
    width = m  # columns in use: X, then X T, then X T P
    it = 0
    while True:
        values, coef = _rayleigh_ritz(basis[:, :width], l_basis[:, :width], degree, m)
        if width == m:
            basis[:, xs] = basis[:, xs] @ coef
            l_basis[:, xs] = l_basis[:, xs] @ coef
        else:
            # Search direction: the part of the update outside the old block.
            new_p = basis[:, m:width] @ coef[m:]
            new_lp = l_basis[:, m:width] @ coef[m:]
            basis[:, xs] = basis[:, xs] @ coef[:m] + new_p
            l_basis[:, xs] = l_basis[:, xs] @ coef[:m] + new_lp
            basis[:, ps], l_basis[:, ps] = new_p, new_lp
            del new_p, new_lp
        if it == iterations:
            break
        t = basis[:, ts]
        np.multiply(basis[:, xs], d_col, out=t)
        t *= values.astype(dtype)
        np.subtract(l_basis[:, xs], t, out=t)  # residual L x - lambda D x
        t /= d_col  # Jacobi preconditioner
        res = np.sqrt(np.abs(np.einsum("ij,ij,i->j", t, t, degree)))
        scale = np.maximum(np.abs(values), abs(values[1]) if m > 1 else 1.0)
        if np.all(res <= tol * scale):
            break
        l_basis[:, ts] = lap @ t
        it += 1
        width = 2 * m if width == m and it == 1 else 3 * m
    return values, np.ascontiguousarray(basis[:, xs]), it


def smooth_block(graph, degree, x, steps, omega=2.0 / 3.0, values=None, lower=None, overwrite=False):
    """Jacobi or Chebyshev smoothing of a block of approximate eigenvectors, then Rayleigh-Ritz.

    Each step is ``x <- x - omega D^-1 (L x - lambda D x)`` with the Ritz
    values ``lambda`` of the start block. It damps the high-frequency error
    left by piecewise-constant interpolation for one sparse product per
    step and no extra (n, m) blocks, which is what the finest, by far the
    largest, levels can afford. With a constant ``omega = 2/3`` (damped
    Jacobi) ``D^-1 L`` eigenvalues in 1..2 shrink by at most 1/3 per step
    but those around 0.2..0.5 hardly at all; with ``lower`` set, the
    step sizes are the reciprocal roots of the Chebyshev polynomial on
    ``[lower, 2]``, which after ``s`` steps shrinks that whole band by
    ``1 / T_s((2 + lower) / (2 - lower))`` (0.03 for 5 steps on [0.4, 2];
    measured at 1600^2: Ritz values 1.5-1.8 % above exact instead of
    4-5 % for Jacobi when the second-finest level is smoothed too).

    Since ``L = D - W`` (self-loops in both), a step is
    ``x <- (1 - omega + omega lambda) x + omega D^-1 W x``: one product with
    the graph itself (one stored entry per directed edge) instead of two
    with the incidence matrix. ``W x`` in float32 cannot resolve ``L x``
    (see :class:`_Laplacian`), but the step only needs ``x`` to float32
    accuracy, which it keeps; the final Rayleigh-Ritz, which does need the
    tiny eigenvalues, takes its energy Gram matrix from ``D x - W x`` in
    float64 (see :func:`_rayleigh_ritz_w64`).

    Parameters
    ----------
    graph : scipy.sparse.csr_array, shape (n, n)
        Weights ``W`` (self-loops allowed), dtype of ``x``.
    degree : ndarray, shape (n,)
        Row sums of ``graph``.
    x : ndarray, shape (n, m)
        D-orthonormal start block.
    steps : int
    omega : float
        Damping factor of Jacobi steps (``lower`` None).
    values : ndarray, shape (m,), optional
        Ritz values of ``x`` when already known, e.g. for a block
        interpolated piecewise-constantly from Ritz vectors of the Galerkin
        coarse graph (``P^T L P`` is the coarse Laplacian, so the Ritz
        values carry over exactly); otherwise a Rayleigh-Ritz step
        computes them first.

    lower : float, optional
        Lower end of the Chebyshev interval of ``D^-1 L`` eigenvalues to damp.
    overwrite : bool
        Whether ``x`` may be updated in place (saves a copy).

    Returns
    -------
    values : ndarray of float64, shape (m,)
    x : ndarray, shape (n, m)
    """
    return drain(iter_smooth_block(graph, degree, x, steps, omega, values, lower, overwrite))


def iter_smooth_block(graph, degree, x, steps, omega=2.0 / 3.0, values=None, lower=None, overwrite=False):
    """:func:`smooth_block` as a generator: yields ``(steps done, steps)`` after each step.

    Returns ``(values, x)`` as the ``StopIteration`` value.
    """
    m = x.shape[1]
    if values is None:
        values, coef = _rayleigh_ritz_w64(graph, degree, x, m)
        x = x @ coef
    elif not (overwrite and x.flags.c_contiguous):
        x = np.array(x, order="C")  # updated in place: not the caller's array
    inv_d = (1.0 / degree.astype(np.float64)).astype(x.dtype)
    lam = np.asarray(values, dtype=np.float64)
    # D^-1 W, formed once: a step then scales rows by nothing and columns
    # by constants, which run as flat element-wise passes (broadcasting a
    # per-row or per-column factor over rows of m = 8 entries was measured
    # 5x slower than a flat pass).
    data = np.repeat(inv_d, np.diff(graph.indptr))
    data *= graph.data  # in place: one array of nnz, in the block dtype
    walk = sp.csr_array((data, graph.indices, graph.indptr), shape=graph.shape)
    del data
    n = x.shape[0]
    flat_x = x.reshape(-1)  # a view: x is C-contiguous
    chunk = _SMOOTH_CHUNK * m
    for done, w in enumerate(_step_sizes(steps, omega, lower), start=1):
        keep = np.tile((1.0 - w + w * lam).astype(x.dtype), _SMOOTH_CHUNK)
        flat_wx = (walk @ x).reshape(-1)
        # x = keep * x + w D^-1 W x, in place, a cache-sized chunk of
        # rows at a time: one pass over memory instead of three.
        for start in range(0, n * m, chunk):
            x_c, wx_c = flat_x[start : start + chunk], flat_wx[start : start + chunk]
            wx_c *= x.dtype.type(w)
            x_c *= keep[: len(x_c)]
            x_c += wx_c
        del flat_wx
        yield done, steps
    values, coef = _rayleigh_ritz_w64(graph, degree, x, m)
    return values, x @ coef


def _step_sizes(steps, omega, lower):
    """Damping factors of the smoothing steps: constant, or Chebyshev on [lower, 2]."""
    if lower is None:
        return [omega] * steps
    # Reciprocals of the roots of the Chebyshev polynomial of degree
    # ``steps`` shifted to [lower, 2]: the product of the steps' factors
    # (1 - mu / root) is that polynomial, the smallest maximum over
    # [lower, 2] among polynomials with p(0) = 1.
    centre, half = (2.0 + lower) / 2, (2.0 - lower) / 2
    roots = centre + half * np.cos(np.pi * (2 * np.arange(steps) + 1) / (2 * steps))
    # Alternate large and small steps to keep intermediate growth small.
    order = np.argsort(roots)
    mixed = [order[i // 2] if i % 2 == 0 else order[-1 - i // 2] for i in range(steps)]
    return list(1.0 / roots[mixed])


# Rows per chunk of the float64 products with W in :func:`_rayleigh_ritz_w64`.
_GRAM_CHUNK = 1 << 14


def _rayleigh_ritz_w64(graph, degree, x, m):
    """:func:`_rayleigh_ritz` with ``x^T L x = x^T (D x - W x)`` summed in float64.

    float64 ``W x`` resolves ``L x`` where float32 cannot (see
    :class:`_Laplacian`): the float32 weights and block convert exactly,
    and the degrees are row sums of the same float64 weights, so ``D x - W x``
    keeps about 10 significant digits of the ~1e-7 eigenvalues. It needs no
    incidence matrix (building one at 700k nodes and its product cost 20 + 17
    ms; this is one product with the graph). Row chunks bound the extra
    memory to the float64 copy of ``x`` (the edge differences it replaces
    took twice that).
    """
    n, m_x = x.shape
    x64 = x.astype(np.float64)
    ones = np.ones(n)
    gram_l = np.zeros((m_x, m_x))
    indptr, indices, data = graph.indptr, graph.indices, graph.data
    for start in range(0, n, _GRAM_CHUNK):
        stop = min(start + _GRAM_CHUNK, n)
        lo, hi = indptr[start], indptr[stop]
        rows = sp.csr_array(
            (data[lo:hi].astype(np.float64), indices[lo:hi], indptr[start : stop + 1] - lo),
            shape=(stop - start, n),
        )
        x_rows = x64[start:stop]
        l_rows = x_rows * (rows @ ones)[:, None]  # D x
        l_rows -= rows @ x64
        gram_l += x_rows.T @ l_rows
    del x64
    return _rayleigh_ritz(x, None, degree, m, gram_l=gram_l)


def multilevel_eigenvectors(graph: sp.csr_array, k: int, **options):
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
        Node-iterations per coarse level, see above. Smooth error
        is only removed efficiently on coarse levels: plain LOBPCG on a fine
        level converges the nearly equal smallest eigenvalues very slowly,
        so accuracy is bought here and the finest level only smooths.
        The defaults (work 3e5, then at most 30 iterations, 5 and 10 Chebyshev
        smoothing steps on the two finest levels) were measured at 1600^2
        four circles to give Ritz values 1.6-1.9 % above the exact ones,
        closer than LOBPCG on the second-finest level with work 5e5
        (1.7-2.0 %), in 20 % less time: a smoothing step on the fine levels
        removes more error per second than LOBPCG iterations there.
        At most 20 instead of 30 iterations on the coarsest levels (measured
        against a converged solve, Ritz value error / ARI / solve time:
        1000^2 1.33 -> 1.35 %, 0.9991 -> 0.9990, 190 -> 169 ms; 1600^2
        1.74 -> 1.76 %, 0.9998 -> 0.9999, 381 -> 370 ms; 2000^2 1.98 ->
        2.11 %, 0.99994 -> 0.99993, 496 -> 484 ms).
    smoothing_steps : int, sequence of int or None
        On the ``smooth_levels`` finest levels, this many smoothing steps
        (per level, finest first, for a sequence) and one Rayleigh-Ritz
        (see :func:`smooth_block`) instead of LOBPCG iterations; None runs
        ``iterations`` LOBPCG iterations on the finest level.
    smooth_levels : int
        How many of the finest levels are smoothed rather than iterated
        (only levels of more than ``SMOOTH_MIN_NODES`` nodes).
    smoothing_lower : float or None
        Chebyshev smoothing of ``D^-1 L`` eigenvalues in ``[smoothing_lower, 2]``;
        None: damped Jacobi (``omega = 2/3``).
    tol : float
        Relative residual tolerance per level (see :func:`refine_block`).
    guard : int
        Extra vectors iterated with the wanted ones.
    dtype : numpy dtype
        Floating type of the per-level blocks (float32 halves memory traffic;
        see :class:`_Laplacian` for why it stays accurate).

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


def drain(steps):
    """Run a progress generator to its end and return its ``StopIteration`` value."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


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
    smoothing_steps=(5, 10),
    smooth_levels: int = 2,
    smoothing_lower: float | None = 0.4,
    tol: float = 1e-3,
    guard: int = GUARD_VECTORS,
    dtype=np.float32,
):
    """:func:`multilevel_eigenvectors` as a generator that reports its progress.

    Yields ``(fraction, message)`` after each coarsening step, after each
    refined level and after each smoothing step: ``fraction`` in [0, 1] is an estimate of the work done
    (coarsening about a quarter, the rest in proportion to the nodes of the
    refined levels). Nothing native runs single-threaded while it is
    suspended, so the consumer may do anything between steps, or stop (close
    the generator) to cancel. Returns what :func:`multilevel_eigenvectors`
    returns, as the ``StopIteration`` value.
    """
    rng = np.random.default_rng() if rng is None else rng
    n = graph.shape[0]
    m = min(k + guard, n)

    t_start = time.perf_counter()
    # Coarsening phase: graphs, degrees and aggregation maps of every level.
    graphs = [graph]
    coarsened = 0
    # Row sums as a product with ones: the same float32 sums as graph.sum(axis=1)
    # up to rounding order, measured 2 ms instead of 9 ms at 700k nodes.
    degrees = [(graph @ np.ones(n, dtype=graph.dtype)).astype(np.float64)]
    maps = []
    while graphs[-1].shape[0] > coarsest:
        agg, n_agg = aggregate_nodes(graphs[-1])
        if n_agg > 0.85 * graphs[-1].shape[0]:
            break  # coarsening stalled; solve here
        maps.append(agg)
        graphs.append(coarsen_graph(graphs[-1], agg, n_agg))
        degrees.append(np.bincount(agg, weights=degrees[-1], minlength=n_agg))
        # Level sizes shrink about 5x per step: all levels hold ~1.25 n nodes.
        coarsened += graphs[-2].shape[0]
        yield _COARSEN_SHARE * min(coarsened / (1.25 * n), 1.0), f"coarsened to {n_agg} nodes"
    info = {
        "levels": [g.shape[0] for g in graphs],
        "iterations": [],
        "seconds": [],
        "coarsen_seconds": time.perf_counter() - t_start,
    }

    # Single-threaded BLAS on every level (entered per level, so that no
    # limit stays on while the generator is suspended): threads only slow
    # small dense problems down, and on a busy machine dramatically so.
    with single_threaded("eigen", user_api="blas"):
        # Coarsest level: generalised problem (D - W) x = lambda D x, dense.
        d = degrees[-1]
        nc = len(d)
        if nc > 4 * coarsest:  # coarsening stalled on a big graph
            lap = _Laplacian(graphs[-1], np.float64)
            x0 = rng.standard_normal((nc, m))
            x0[:, 0] = 1.0
            values, x, its = refine_block(lap, d, x0, 300, tol=1e-6)
            info["iterations"].append(its)
        else:
            w = graphs[-1].toarray().astype(np.float64)
            np.fill_diagonal(w, 0.0)
            # L = D_off - W_off: self-loop weight counts in the volume d but
            # cancels in the Laplacian. Solved as the standard problem
            # D^-1/2 L D^-1/2 u = lambda u, x = D^-1/2 u (the generalised
            # driver was measured several times slower).
            inv_sqrt = 1.0 / np.sqrt(d)
            sym = -(w * inv_sqrt[:, None]) * inv_sqrt[None, :]
            sym[np.diag_indices(nc)] = w.sum(axis=1) / d
            values, u = scipy.linalg.eigh(sym, subset_by_index=(0, min(m, nc) - 1), driver="evr")
            x = u * inv_sqrt[:, None]
            del w, sym
        if x.shape[1] < m:
            x = np.hstack([x, rng.standard_normal((nc, m - x.shape[1]))])

    def plan(level):
        """("smooth", steps) or ("lobpcg", iterations) for a level."""
        if level < smooth_levels and smoothing_steps is not None and graphs[level].shape[0] > SMOOTH_MIN_NODES:
            # Small graphs can afford LOBPCG refinement on every level.
            return "smooth", smoothing_steps if np.isscalar(smoothing_steps) else smoothing_steps[level]
        if level == 0 and smoothing_steps is None:
            return "lobpcg", iterations
        # Iterations cost O(n_level); spend them where they are cheap.
        return "lobpcg", int(np.clip(work / graphs[level].shape[0], middle_iterations, coarse_iterations))

    # Work per level for the progress estimate: node-steps, a LOBPCG
    # iteration counted as two smoothing steps, plus a fixed overhead
    # (measured within 20 % per level at 1000^2).
    costs = {}
    for level in range(len(maps)):
        kind, count = plan(level)
        costs[level] = graphs[level].shape[0] * count * (1 if kind == "smooth" else 2) + 2e4
    refine_total = float(sum(costs.values())) or 1.0
    refined = 0.0
    yield _COARSEN_SHARE, f"solved the coarsest level ({nc} nodes)"

    # Refinement phase: interpolate (piecewise constant keeps the block
    # D-orthonormal, since P^T D_f P = D_c) and refine.
    for level in range(len(maps) - 1, -1, -1):
        t_level = time.perf_counter()
        kind, count = plan(level)
        start_fraction = _COARSEN_SHARE + (1 - _COARSEN_SHARE) * refined / refine_total
        refined += costs[level]
        fraction = _COARSEN_SHARE + (1 - _COARSEN_SHARE) * refined / refine_total
        nodes = graphs[level].shape[0]
        with single_threaded("eigen", user_api="blas"):
            x = x[maps[level]].astype(dtype, copy=False)
        if kind == "smooth":
            # The guard vectors stay: the final Rayleigh-Ritz over all
            # k + 4 columns was measured 10x more accurate than over k.
            # Each step reported: on the finest level of a 16 MP image they
            # take seconds together.
            smoothing = iter_smooth_block(
                graphs[level],
                degrees[level].astype(dtype),
                x,
                count,
                values=values,
                lower=smoothing_lower,
                overwrite=True,
            )
            while True:
                with single_threaded("eigen", user_api="blas"):
                    try:
                        done, _ = next(smoothing)
                    except StopIteration as stop:
                        values, x = stop.value
                        break
                # The final Rayleigh-Ritz costs about three steps (measured
                # 35-50 ms against 5-10 ms per step at 1000^2 and 1600^2).
                part = start_fraction + (fraction - start_fraction) * done / (count + 3)
                yield part, f"refining level {level} ({nodes} nodes): smoothing step {done} of {count}"
            its = count
        else:
            with single_threaded("eigen", user_api="blas"):
                lap = _Laplacian(graphs[level], dtype)
                values, x, its = refine_block(lap, degrees[level].astype(dtype), x, count, tol)
        info["iterations"].append(its)
        info["seconds"].append(time.perf_counter() - t_level)
        yield fraction, f"refined level {level} ({nodes} nodes)"
    return np.asarray(values[:k], dtype=np.float64), x[:, :k], info
