"""Eigen-solvers for the normalised Laplacian of one connected pixel graph.

All solvers return the ``k`` smallest eigenvalues of the symmetric normalised
Laplacian ``L = I - D^-1/2 W D^-1/2`` and the matching random-walk embedding
``D^-1/2 U`` (one row per node), which is what spectral clustering clusters.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ._threads import single_threaded
from .costs import solve_seconds
from .multilevel import iter_multilevel_eigenvectors, multilevel_eigenvectors
from .progress import drain, iter_waiting, relay

__all__ = [
    "EIGEN_SOLVERS",
    "check_graph",
    "edge_laplacian_eigenvectors",
    "iter_laplacian_eigenvectors",
    "laplacian_eigenvectors",
    "normalized_laplacian",
    "resolve_solver",
]

EIGEN_SOLVERS = ("auto", "arpack", "lobpcg", "amg", "multilevel")

# Below this many nodes a dense eigen-decomposition of the component is the
# fastest and most robust choice (a 400 x 400 matrix is 1.3 MB).
DENSE_LIMIT = 400
# For two eigenpairs (auto mode's Fiedler vectors, two clusters) shift-invert ARPACK
# with a banded factorisation overtakes the dense solve at fewer nodes.
TWO_PAIRS_DENSE_LIMIT = 150
# "auto" switches from exact shift-invert ARPACK to the multilevel solver
# above this many nodes, where the factorisation starts to cost more time
# and memory than coarse-to-fine refinement (measured, CPU seconds: 24k
# nodes arpack 0.18 / multilevel 0.09; 43k nodes 0.34 / 0.15; 694k nodes
# sklearn's arpack 19 s). Up to here results are exact, as the seed's.
AUTO_ARPACK_LIMIT = 50_000
# Shift-invert ARPACK works on (L + ARPACK_SHIFT * I)^-1.
ARPACK_SHIFT = 1e-5
# Shift-invert ARPACK factorises by banded Cholesky while band^2 * n is at
# most this (about the work of SuperLU's set-up on such a piece), else by SuperLU.
BANDED_WORK = 4_000_000
# Extra LOBPCG columns in the "amg" path (see multilevel.GUARD_VECTORS).
GUARD_COLUMNS = 4


def hide_lobpcg_notes() -> None:
    """Filter LOBPCG's notes that it stopped at its iteration limit or fell back to a dense solve.

    The result is still usable. One narrow filter, installed at import (they
    are attributed to scipy's module or to this one, its caller), instead of
    ``catch_warnings`` around each call, which saves and restores every
    thread's filters at once.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"(Exited|Failed) at iteration|Exited postprocessing|The problem size",
        category=UserWarning,
        module=r"(scipy\.sparse\.linalg\._eigen\.lobpcg|napari_spectral_seg\.core\.eigen)",
    )


hide_lobpcg_notes()


def normalized_laplacian(graph: sp.csr_array) -> tuple[sp.csr_array, np.ndarray]:
    """Symmetric normalised Laplacian of a weighted graph.

    Parameters
    ----------
    graph : scipy.sparse.csr_array, shape (n, n)
        Symmetric non-negative weights, no isolated nodes.

    Returns
    -------
    laplacian : scipy.sparse.csr_array, shape (n, n)
        ``I - D^-1/2 W D^-1/2``; eigenvalues in [0, 2].
    sqrt_degree : ndarray, shape (n,)
        ``sqrt(D)``, the (unnormalised) first eigenvector.
    """
    degree = np.asarray(graph.sum(axis=1)).ravel()
    sqrt_degree = np.sqrt(degree)
    inv = 1.0 / sqrt_degree
    scaled = sp.diags_array(inv) @ graph @ sp.diags_array(inv)
    laplacian = sp.eye_array(graph.shape[0], dtype=graph.dtype, format="csr") - scaled
    return laplacian.tocsr(), sqrt_degree


def _edge_laplacian_entries(w, a, b, n):
    """Rows, columns and values of the off-diagonal Laplacian entries in CSR order, and ``sqrt(D)``.

    Bit for bit those of :func:`normalized_laplacian` on the graph of these
    edges: each degree summed in CSR order (ascending column per row) by
    ``np.add.reduceat``, as the sparse row sum does, and each entry
    ``(d_i^-1/2 w_ij) d_j^-1/2``, the order of the sparse products.
    """
    rows = np.concatenate([a, b])
    cols = np.concatenate([b, a])
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    values = np.concatenate([w, w])[order]
    row_start = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))[:-1]])
    sqrt_degree = np.sqrt(np.add.reduceat(values, row_start))  # every node has an edge: no empty row
    if not (np.all(sqrt_degree > 0) and np.all(np.isfinite(sqrt_degree))):  # also NaN; see check_graph
        raise ValueError(
            "graph has a node without an edge of positive weight, or weights that are not finite; "
            "pass one connected component with finite weights > 0."
        )
    inv = 1.0 / sqrt_degree
    return rows, cols, -((inv[rows] * values) * inv[cols]), sqrt_degree


def edge_laplacian_eigenvectors(w: np.ndarray, a: np.ndarray, b: np.ndarray, n: int, k: int, solver: str, rng):
    """:func:`laplacian_eigenvectors` of a graph given by its edges, for the dense and ARPACK solvers.

    Auto mode solves thousands of small graphs, where the sparse route
    (COO to CSR, two diagonal products, a difference) costs as much as the
    solve. The Laplacian built here from the edges is bit for bit that route's
    (see :func:`_edge_laplacian_entries`; the diagonal is exactly 1), so the
    results are identical.

    Parameters
    ----------
    w : ndarray of float64, shape (n_edges,)
        Weight of each edge, each edge once, no self-loops.
    a, b : ndarray of int, shape (n_edges,)
        Its end nodes.
    n, k : int
        Number of nodes (connected), number of eigenpairs.
    solver : {"dense", "arpack"}
        As chosen by :func:`resolve_solver`.
    rng : numpy.random.Generator
        Start vector of ARPACK.

    Returns
    -------
    eigenvalues, embedding
        As :func:`laplacian_eigenvectors`.
    """
    rows, cols, entries, sqrt_degree = _edge_laplacian_entries(w, a, b, n)
    if solver == "dense":
        laplacian = np.zeros((n, n))
        laplacian[rows, cols] = entries
        laplacian[np.arange(n), np.arange(n)] = 1.0
    else:
        # The diagonal's 1 goes before the row's first larger column (CSR order).
        diagonal = np.searchsorted(rows * n + cols, np.arange(n) * (n + 1))
        data, indices = _with_diagonal(entries, cols, diagonal)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n) + 1)])
        laplacian = sp.csr_array((data, indices.astype(np.int32), indptr.astype(np.int32)), shape=(n, n))
        laplacian.has_canonical_format = True
    with single_threaded("eigen", user_api="blas"):
        if solver == "dense":
            values, vectors = scipy.linalg.eigh(laplacian, subset_by_index=(0, k - 1))
        else:
            values, vectors = _arpack(laplacian, k, rng)
    return np.asarray(values), _fix_signs(vectors / sqrt_degree[:, None])


def _with_diagonal(entries, cols, diagonal):
    """``np.insert`` of the diagonal's 1 and column into the CSR data and indices, before positions ``diagonal``.

    ``diagonal`` is ascending (one per row), so the ``i``-th inserted entry
    lands at ``diagonal[i] + i``, as ``np.insert`` places it; without its
    argument handling, which costs more than the copy on a small piece.
    """
    n = len(diagonal)
    at = diagonal + np.arange(n)
    off = np.ones(len(entries) + n, dtype=bool)
    off[at] = False
    data = np.empty(len(off), dtype=entries.dtype)
    data[at], data[off] = 1.0, entries
    indices = np.empty(len(off), dtype=cols.dtype)
    indices[at], indices[off] = np.arange(n), cols
    return data, indices


def _dense(laplacian, k):
    values, vectors = scipy.linalg.eigh(laplacian.toarray(), subset_by_index=(0, k - 1))
    return values, vectors


def _arpack(laplacian, k, rng):
    # Shift-invert just below 0 factorises L + 1e-5 I (positive definite) and
    # maps the wanted tiny eigenvalues to well separated large ones,
    # 1 / (lambda + 1e-5). The seed's shift of 1 (sklearn: sigma=1 on -L)
    # maps them all to ~1 instead: measured 3.7 s vs 0.24 s at 200 x 200.
    v0 = rng.uniform(-1, 1, laplacian.shape[0])
    laplacian = laplacian.astype(np.float64, copy=False)
    inverse = _Solver(_shifted_solver(laplacian), laplacian.shape[0])
    values, vectors = spla.eigsh(laplacian, k=k, sigma=-ARPACK_SHIFT, which="LM", v0=v0, tol=1e-8, OPinv=inverse)
    order = np.argsort(values)
    return values[order], vectors[:, order]


class _Solver(spla.LinearOperator):
    """``solve`` as the operator ARPACK applies: its vectors go straight to it.

    ARPACK's loop applies the operator tens of times per solve to 1-D float64
    slices of its work array; :meth:`LinearOperator.matvec`'s checks and
    reshapes would cost more than a small piece's banded solve.
    """

    def __init__(self, solve, n: int):
        super().__init__(np.float64, (n, n))
        self._solve = solve

    def _matvec(self, x):
        return self._solve(x)

    def matvec(self, x):
        return self._solve(x)


def _shifted_solver(laplacian):
    """A function solving ``(L + ARPACK_SHIFT * I) x = y``: banded Cholesky for a narrow band, else sparse LU."""
    rows = np.repeat(np.arange(laplacian.shape[0]), np.diff(laplacian.indptr))
    below = rows > laplacian.indices
    offsets = rows[below] - laplacian.indices[below]
    n = laplacian.shape[0]
    band = int(offsets.max()) if offsets.size else 0
    if band * band * n <= BANDED_WORK and np.array_equal(laplacian.diagonal(), np.ones(n)):
        # Pieces in raster order have a band about as wide as a row of their box:
        # LAPACK's banded Cholesky then costs far less than SuperLU's ordering and set-up.
        lower = np.zeros((band + 1, n))
        lower[0] = 1.0 + ARPACK_SHIFT
        lower[offsets, laplacian.indices[below]] = laplacian.data[below]
        factor, info = scipy.linalg.lapack.dpbtrf(lower, lower=1)
        if info == 0:
            return lambda y: scipy.linalg.lapack.dpbtrs(factor, y, lower=1)[0]
    # The shifted matrix is symmetric positive definite: a symmetric
    # fill-reducing order without pivoting factorises it with far less fill
    # than eigsh's own (COLAMD, general pivoting), most of all on 3D graphs.
    shifted = (laplacian + ARPACK_SHIFT * sp.eye_array(n, format="csr")).tocsc()
    factor = spla.splu(shifted, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return factor.solve


def _start_block(sqrt_degree, k, rng):
    x = rng.standard_normal((len(sqrt_degree), k))
    # The first eigenvector is known exactly: start from it.
    x[:, 0] = sqrt_degree
    return x


def _lobpcg(laplacian, k, sqrt_degree, rng, preconditioner=None, tol=1e-6, maxiter=500, start=None):
    x = _start_block(sqrt_degree, k, rng) if start is None else start
    values, vectors = spla.lobpcg(laplacian, x, M=preconditioner, tol=tol, maxiter=maxiter, largest=False)
    order = np.argsort(values)
    return values[order], vectors[:, order]


def _amg_preconditioner(laplacian):
    import pyamg

    # L is singular (constant-like null vector); a tiny shift makes the
    # multigrid hierarchy well posed without moving the eigenvectors.
    shifted = (laplacian + 1e-6 * sp.eye_array(laplacian.shape[0], format="csr")).tocsr()
    # Jacobi prolongation smoothing weighted by each row's Gershgorin bound
    # ("local") instead of a global spectral-radius estimate: that estimate
    # (restarted Arnoldi on every level) is most of pyamg's setup time.
    ml = pyamg.smoothed_aggregation_solver(
        shifted, max_coarse=500, smooth=("jacobi", {"omega": 4.0 / 3.0, "weighting": "local"})
    )
    return ml.aspreconditioner()


def _amg(graph, laplacian, k, sqrt_degree, rng):
    """AMG-preconditioned LOBPCG, started from the multilevel solution.

    The multilevel block is already close, so LOBPCG only polishes it; its
    tolerance is relative to the smallest nonzero eigenvalue (scikit-learn
    passes none, and the default ``n * sqrt(eps)`` is far above the ~1e-6
    eigenvalues of a megapixel graph: the result is then unconverged).
    """
    m = min(k + GUARD_COLUMNS, graph.shape[0] - 1)
    values0, start, _ = multilevel_eigenvectors(graph, m, rng=rng)
    start = start.astype(np.float64) * sqrt_degree[:, None]
    tol = 1e-3 * max(float(values0[1]), 1e-12)
    values, vectors = _lobpcg(
        laplacian.astype(np.float64),
        m,
        sqrt_degree,
        rng,
        preconditioner=_amg_preconditioner(laplacian.astype(np.float64)),
        tol=tol,
        maxiter=100,
        start=start,
    )
    return values[:k], vectors[:, :k]


def resolve_solver(solver: str, n: int, k: int = 1) -> str:
    """Solver that :func:`laplacian_eigenvectors` runs for ``n`` nodes.

    Returns one of "dense", "arpack", "lobpcg", "amg", "multilevel".
    """
    if n <= max(TWO_PAIRS_DENSE_LIMIT if k == 2 else DENSE_LIMIT, 5 * k):
        return "dense"
    if solver == "auto":
        return "arpack" if n <= AUTO_ARPACK_LIMIT else "multilevel"
    return solver


def laplacian_eigenvectors(
    graph: sp.csr_array,
    k: int,
    *,
    solver: str = "auto",
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Smallest eigenpairs of the normalised Laplacian of a connected graph.

    Parameters
    ----------
    graph : scipy.sparse.csr_array, shape (n, n)
        Symmetric weights of one connected component, ``n >= 2``.
    k : int
        Number of eigenpairs, ``1 <= k <= n``.
    solver : {"auto", "arpack", "lobpcg", "amg", "multilevel"}
        ``"arpack"``: shift-invert Lanczos (exact, factorises the matrix);
        ``"lobpcg"``: unpreconditioned LOBPCG; ``"amg"``: LOBPCG
        preconditioned by pyamg smoothed aggregation, started from the
        multilevel solution and converged to a tolerance relative to the
        eigenvalues (slower than "multilevel", closer to exact); ``"multilevel"``:
        coarse-to-fine refinement over a strong-edge aggregation hierarchy
        (see :mod:`.multilevel`; O(n) time and memory, float32 blocks);
        ``"auto"``: dense for tiny graphs, arpack up to
        ``AUTO_ARPACK_LIMIT`` nodes, multilevel above.
    rng : numpy.random.Generator, optional
        Source of the random start vectors.

    Returns
    -------
    eigenvalues : ndarray of float, shape (k,)
        Ascending; the first is 0 up to rounding.
    embedding : ndarray of float, shape (n, k)
        Random-walk eigenvectors ``D^-1/2 u`` (rows are the nodes' spectral
        coordinates), signs fixed so each column's largest entry is positive.
        float32 from the multilevel solver, float64 otherwise.
    """
    return drain(iter_laplacian_eigenvectors(graph, k, solver=solver, rng=rng))


def iter_laplacian_eigenvectors(
    graph: sp.csr_array,
    k: int,
    *,
    solver: str = "auto",
    rng: np.random.Generator | None = None,
) -> Generator[tuple[float, str], None, tuple[np.ndarray, np.ndarray]]:
    """:func:`laplacian_eigenvectors` as a generator that reports its progress.

    The multilevel solver yields ``(fraction, message)`` after each level
    (see :func:`.multilevel.iter_multilevel_eigenvectors`); the other
    solvers, one native call each, yield their estimated part done every
    0.25 s when they are expected to take a second or more (see
    :func:`.progress.iter_waiting`). Returns ``(eigenvalues, embedding)`` as the
    ``StopIteration`` value.
    """
    if solver not in EIGEN_SOLVERS:
        raise ValueError(f"eigen_solver={solver!r} is unknown; use one of {', '.join(EIGEN_SOLVERS)}.")
    rng = np.random.default_rng() if rng is None else rng
    n = graph.shape[0]
    check_graph(graph)

    chosen = resolve_solver(solver, n, k)
    if chosen == "multilevel":
        values, embedding, _ = yield from iter_multilevel_eigenvectors(graph, k, rng=rng)
        return values, _fix_signs(embedding)

    laplacian, sqrt_degree = normalized_laplacian(graph)

    def solve():
        # Single-threaded BLAS: the dense parts are small (n x k blocks, k x k
        # problems) and extra threads only add contention on a busy machine,
        # where they made a small dense eigen-solve many times slower.
        with single_threaded("eigen", user_api="blas"):
            if chosen == "dense":
                return _dense(laplacian, k)
            if chosen == "arpack":
                return _arpack(laplacian, k, rng)
            if chosen == "lobpcg":
                return _lobpcg(laplacian.astype(np.float64), k, sqrt_degree, rng)
            return _amg(graph, laplacian, k, sqrt_degree, rng)

    # One native call of up to tens of seconds (hundreds of eigenvectors): waited for in slices.
    waiting = iter_waiting(solve, solve_seconds(chosen, n, k))
    values, vectors = yield from relay(waiting, lambda part: (part, f"{chosen} eigen-solve of {k} vectors"))
    return np.asarray(values), _fix_signs(vectors / sqrt_degree[:, None])


def check_graph(graph: sp.csr_array) -> None:
    """Refuse a graph the normalised Laplacian is undefined for: a weight that is not finite and >= 0, a node without edges.

    Such a graph made the eigen-solvers fail in their own words (SuperLU's
    "Factor is exactly singular" for a NaN weight) or return NaN silently
    (an isolated node: division by a zero degree).
    """
    data = np.asarray(graph.data)
    # Two passes without temporaries: a NaN makes the minimum NaN (not >= 0), +inf is the maximum.
    if data.size and not (data.min() >= 0 and data.max() < np.inf):
        raise ValueError(
            "graph has NaN, infinite or negative edge weights; pass finite weights >= 0 (e.g. from build_pixel_graph)."
        )
    # Non-negative weights: a row sums to 0 only without a positive weight,
    # in any order of summation (a product with ones: one compiled pass).
    degree = graph @ np.ones(graph.shape[1], dtype=np.result_type(data.dtype, np.float32))
    isolated = int(np.count_nonzero(~(degree > 0)))
    if isolated:
        raise ValueError(
            f"graph has {isolated} node(s) without an edge of positive weight; pass one connected "
            "component (scipy.sparse.csgraph.connected_components), each node with an edge."
        )


def _fix_signs(embedding):
    """Deterministic signs: each column's largest-magnitude entry is positive.

    Flips columns in place (the callers own the array). Decided from each
    column's maximum and minimum, column by column (measured 5 ms at
    700k x 4, against 15 ms for an argmax of ``|embedding|`` along axis 0
    and a multiplied copy); on an exact tie ``max == -min`` the column
    stays as it is.
    """
    for column in range(embedding.shape[1]):
        values = embedding[:, column]
        if values.max() < -values.min():
            values *= -1
    return embedding
