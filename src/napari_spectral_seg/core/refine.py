"""Refinement of a block of approximate eigenvectors on one level of the multilevel solver.

Both refiners solve ``L x = lambda D x`` for one level's graph, starting from
a block interpolated from the next coarser level: :func:`refine_block` runs a
few iterations of a lean LOBPCG, :func:`smooth_block` (for the largest
levels) a few Chebyshev or Jacobi smoothing steps and one Rayleigh-Ritz.
Blocks are float32: :class:`EdgeLaplacian` applies ``L`` through edge
differences so that the tiny wanted eigenvalues survive.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

try:  # the compiled sparse kernels, for a product that accumulates in place
    from scipy.sparse import _sparsetools
except ImportError:  # pragma: no cover - a scipy that moved them
    _sparsetools = None

from .progress import drain

__all__ = ["EdgeLaplacian", "iter_smooth_block", "refine_block", "smooth_block"]

# Rows per chunk of the element-wise smoothing update (fits in L2 cache).
_SMOOTH_CHUNK = 16_384


class EdgeLaplacian:
    """Action of the combinatorial Laplacian ``L = D - W`` through edge differences.

    ``L x = B^T diag(w) B x`` with ``B`` the (edges x nodes) incidence matrix.
    Forming ``x_i - x_j`` first is what keeps float32 usable: the wanted
    eigenvalues are ~1e-7 at 16 MP, far below float32's resolution of
    ``D x - W x`` (a difference of two O(1) numbers), while the difference of
    two nearby float32 numbers is exact.
    """

    def __init__(self, graph: sp.csr_array, dtype: npt.DTypeLike):
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

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        return self.bt @ (self.b @ x)


def _rayleigh_ritz(basis, l_basis, degree, m, gram_l=None, gram_d=None):
    """Best m-dimensional subspace of span(basis) for ``L x = lambda D x``.

    The Gram matrices are formed in the block dtype, then scaled to a unit
    diagonal and solved in float64 (scaling the small matrices replaces
    normalising the tall columns, which would be extra passes over memory).
    A nearly dependent basis is pruned through the eigen-decomposition of
    the D-Gram matrix rather than a Cholesky factor that could fail.

    ``gram_l`` and ``gram_d`` (``basis^T L basis``, ``basis^T D basis``)
    may be given; they are formed from the tall blocks otherwise.

    Returns
    -------
    values : ndarray of float64, shape (m,)
    coef : ndarray, shape (basis.shape[1], m), dtype of ``basis``
        Ritz vectors are ``basis @ coef`` (D-orthonormal).
    """
    if gram_d is None:
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


def refine_block(
    lap: EdgeLaplacian, degree: np.ndarray, x: np.ndarray, iterations: int, tol: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, int]:
    """A few LOBPCG iterations for ``L x = lambda D x`` (Jacobi preconditioner).

    Parameters
    ----------
    lap : EdgeLaplacian
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


def smooth_block(
    graph: sp.csr_array,
    degree: np.ndarray,
    x: np.ndarray,
    steps: int,
    omega: float = 2.0 / 3.0,
    values: np.ndarray | None = None,
    lower: float | None = None,
    overwrite: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
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
    ``1 / T_s((2 + lower) / (2 - lower))`` (0.03 for 5 steps on [0.4, 2]).

    Since ``L = D - W`` (self-loops in both), a step is
    ``x <- (1 - omega + omega lambda) x + omega D^-1 W x``: one product with
    the graph itself (one stored entry per directed edge) instead of two
    with the incidence matrix. ``W x`` in float32 cannot resolve ``L x``
    (see :class:`EdgeLaplacian`), but the step only needs ``x`` to float32
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


def iter_smooth_block(
    graph: sp.csr_array,
    degree: np.ndarray,
    x: np.ndarray,
    steps: int,
    omega: float = 2.0 / 3.0,
    values: np.ndarray | None = None,
    lower: float | None = None,
    overwrite: bool = False,
) -> Generator[tuple[int, int], None, tuple[np.ndarray, np.ndarray]]:
    """:func:`smooth_block` as a generator: yields ``(steps done, steps)`` after each step.

    Parameters
    ----------
    graph, degree, x, steps, omega, values, lower, overwrite
        As for :func:`smooth_block`.

    Returns
    -------
    values, x
        As :func:`smooth_block` returns them, as the ``StopIteration`` value.
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
    other = np.empty_like(x)  # the next step's block: two buffers, swapped, no block allocated per step
    chunk = _SMOOTH_CHUNK * m
    for done, w in enumerate(_step_sizes(steps, omega, lower), start=1):
        # x <- (keep / w) x + D^-1 W x, which is the step x <- w ((keep / w) x
        # + D^-1 W x) divided by w: the block's scale drifts by the product
        # of the 1 / w (within float32's range for any step count used), and
        # the Rayleigh-Ritz below does not depend on it. That saves a pass
        # over the block per step. The scaled copy is written a cache-sized
        # chunk of rows at a time, the product accumulates onto it.
        ratio = np.tile(((1.0 - w + w * lam) / w).astype(x.dtype), _SMOOTH_CHUNK)
        flat_x, flat_next = x.reshape(-1), other.reshape(-1)  # views: both C-contiguous
        for start in range(0, n * m, chunk):
            stop = min(start + chunk, n * m)
            np.multiply(flat_x[start:stop], ratio[: stop - start], out=flat_next[start:stop])
        _accumulate_product(walk, x, other)
        x, other = other, x
        yield done, steps
    del other
    values, coef = _rayleigh_ritz_w64(graph, degree, x, m)
    # The Ritz vectors in place, a chunk of rows at a time (no second block).
    for start in range(0, n, _SMOOTH_CHUNK):
        rows = slice(start, start + _SMOOTH_CHUNK)
        x[rows] = x[rows] @ coef
    return values, x


def _accumulate_product(matrix: sp.csr_array, x: np.ndarray, out: np.ndarray) -> None:
    """``out += matrix @ x`` in place, for C-contiguous blocks of the matrix's dtype.

    scipy's own product allocates a new block for every step (at 8192^2 a
    576 MB block, faulted in afresh each time).
    Its compiled kernel accumulates into its output; where that private
    routine is missing, the public product is added instead.
    """
    kernel = getattr(_sparsetools, "csr_matvecs", None)
    if kernel is None:  # pragma: no cover - a scipy without the routine
        out += matrix @ x
        return
    n_rows, n_cols = matrix.shape
    kernel(n_rows, n_cols, x.shape[1], matrix.indptr, matrix.indices, matrix.data, x.reshape(-1), out.reshape(-1))


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


# Rows per chunk of the float64 products with W in :func:`_rayleigh_ritz_w64`,
# and how far (in chunks) a chunk's neighbours may spread before the whole
# block is converted instead.
_GRAM_CHUNK = 1 << 14
_GRAM_SPAN = 4


def _rayleigh_ritz_w64(graph, degree, x, m):
    """:func:`_rayleigh_ritz` with ``x^T L x = x^T (D x - W x)`` summed in float64.

    float64 ``W x`` resolves ``L x`` where float32 cannot (see
    :class:`EdgeLaplacian`): the float32 weights and block convert exactly,
    and the degrees are row sums of the same float64 weights, so ``D x - W x``
    keeps about 10 significant digits of the ~1e-7 eigenvalues. It needs no
    incidence matrix, only one product with the graph. Row chunks bound the extra
    memory: each converts only the rows its neighbours span (in raster
    order, a few image rows), a float64 copy of ``x`` only where they
    spread wider (the edge differences this replaces took twice that).
    """
    n, m_x = x.shape
    gram_l, gram_d = np.zeros((m_x, m_x)), np.zeros((m_x, m_x))
    indptr, indices, data = graph.indptr, graph.indices, graph.data
    whole = None  # float64 x, converted once only where a chunk's neighbours lie far apart
    ones = np.ones(0)
    for start in range(0, n, _GRAM_CHUNK):
        stop = min(start + _GRAM_CHUNK, n)
        lo, hi = indptr[start], indptr[stop]
        columns = indices[lo:hi]
        first = min(start, int(columns.min())) if hi > lo else start
        last = max(stop, int(columns.max()) + 1) if hi > lo else stop
        if last - first <= _GRAM_SPAN * _GRAM_CHUNK:
            # Nodes follow raster order: a chunk's neighbours are near it,
            # and only they are converted (no float64 copy of the whole block).
            x_near, columns = x[first:last].astype(np.float64), columns - first
        else:
            whole = x.astype(np.float64) if whole is None else whole
            x_near, first = whole, 0
        rows = sp.csr_array(
            (data[lo:hi].astype(np.float64), columns, indptr[start : stop + 1] - lo),
            shape=(stop - start, len(x_near)),
        )
        x_rows = x_near[start - first : stop - first]
        # The D-Gram matrix here too, while the rows are in cache: a
        # separate pass over the float32 block took longer than this loop.
        d_rows = x_rows * degree[start:stop, None]
        gram_d += x_rows.T @ d_rows
        # D x, from the float64 row sums (a product with ones: the same sums, in the same order, as
        # rows.sum(axis=1) without its per-call overhead)
        if len(ones) < len(x_near):
            ones = np.ones(len(x_near))
        d_rows = x_rows * (rows @ ones[: len(x_near)])[:, None]
        d_rows -= rows @ x_near
        gram_l += x_rows.T @ d_rows
    return _rayleigh_ritz(x, None, degree, m, gram_l=gram_l, gram_d=gram_d)
