"""An eigen-solve of one connected component that never leaks a solver error.

If the requested solver raises an ARPACK/LAPACK error or returns NaN or
infinite values, the next solver in ``_FALLBACK`` is tried; when every one
fails, the error names ``eigen_solver`` and says what to change.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator

import numpy as np
import scipy.sparse as sp

from .eigen import AUTO_ARPACK_LIMIT, iter_laplacian_eigenvectors
from .progress import drain, relay

__all__ = ["iter_solve_component", "solve_component"]

# Above this many pixels "arpack" is not tried as a fallback.
_ARPACK_FALLBACK_LIMIT = AUTO_ARPACK_LIMIT
_FALLBACK = {"auto": ("arpack", "lobpcg"), "arpack": ("lobpcg",), "lobpcg": ("arpack",), "amg": ("arpack", "lobpcg")}


class EigenSolveError(ValueError):
    """Every solver failed on a component; ``details`` holds each solver's own message."""

    details: list = []


def solve_component(
    block: sp.csr_array,
    k: int,
    *,
    eigen_solver: str,
    rng_factory: Callable[[], np.random.Generator],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`laplacian_eigenvectors` that never leaks a solver error.

    Tries ``eigen_solver``, then the fallbacks in ``_FALLBACK``; a result
    with NaN or infinite values counts as a failure.

    Parameters
    ----------
    block : scipy.sparse.csr_array, shape (n, n)
        Weights of one connected component.
    k : int
        Number of eigenpairs wanted.
    eigen_solver : str
        One of ``EIGEN_SOLVERS``, tried first.
    rng_factory : callable
        ``rng_factory()`` gives a fresh generator per attempt, so a run stays
        reproducible.

    Returns
    -------
    eigenvalues : ndarray, shape (k,)
    embedding : ndarray, shape (n, k)

    Raises
    ------
    ValueError
        If every solver failed, naming ``eigen_solver`` and the original error.
    """
    return drain(iter_solve_component(block, k, eigen_solver=eigen_solver, rng_factory=rng_factory))


def _floating_point_warnings_off():
    """``np.errstate`` for one solver step: a fault shows as an error or a NaN result, which fall back."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


def iter_solve_component(
    block: sp.csr_array,
    k: int,
    *,
    eigen_solver: str,
    rng_factory: Callable[[], np.random.Generator],
) -> Generator[tuple[float, str], None, tuple[np.ndarray, np.ndarray]]:
    """:func:`solve_component` as a generator yielding the solver's ``(fraction, message)``.

    Progress restarts from 0 when a fallback solver takes over.

    Parameters
    ----------
    block, k, eigen_solver, rng_factory
        As for :func:`solve_component`.

    Returns
    -------
    eigenvalues, embedding
        As :func:`solve_component` returns them, as the ``StopIteration`` value.
    """
    errors = []
    fallbacks = _FALLBACK.get(eigen_solver, ())
    if block.shape[0] > _ARPACK_FALLBACK_LIMIT:
        # shift-invert ARPACK factorises the matrix: too slow and large here
        fallbacks = tuple(s for s in fallbacks if s != "arpack")
    for solver in (eigen_solver, *fallbacks):
        try:
            values, embedding = yield from relay(
                iter_laplacian_eigenvectors(block, k, solver=solver, rng=rng_factory()),
                within=_floating_point_warnings_off,
            )
        except (ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError) as err:
            # ArpackError / ArpackNoConvergence are RuntimeErrors; LinAlgError a ValueError.
            errors.append(f"{solver}: {type(err).__name__}: {err}")
            continue
        if np.all(np.isfinite(values)) and np.all(np.isfinite(embedding)):
            if solver != eigen_solver:
                warnings.warn(
                    f"eigen_solver={eigen_solver!r} failed on a component of {block.shape[0]} pixels; "
                    f"used {solver!r} instead.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return values, embedding
        errors.append(f"{solver}: NaN or infinite eigenvectors")
    # Each solver and the kind of its failure; the solvers' own words are in ``details``.
    tried = "; ".join(":".join(error.split(":")[:2]) for error in errors)
    failure = EigenSolveError(
        f"eigen_solver={eigen_solver!r} could not compute the eigenvectors of a connected component of "
        f"{block.shape[0]} pixels (tried {tried}). Try another eigen_solver or random_state, a "
        "smaller beta, or n_clusters=1; please report this with the image if it persists."
    )
    failure.details = errors  # the solvers' own messages, for a bug report, not for the user
    raise failure
