"""A failing eigen-solver falls back to another one, or fails with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from napari_spectral_seg import segment as segment_with_defaults
from napari_spectral_seg.core import solve


def segment(image, mask=None, **kwargs):
    """``segment`` on the whole image (or the mask) unless a threshold is given: these tests are about the graph."""
    kwargs.setdefault("threshold", None)
    return segment_with_defaults(image, mask, **kwargs)


def _image(shape=(12, 12), seed=0):
    return np.random.default_rng(seed).random(shape)


def assert_valid_labels(labels, shape):
    assert labels.shape == tuple(shape)
    assert labels.dtype == np.int32
    assert np.all(labels > 0)
    present = np.unique(labels)
    np.testing.assert_array_equal(present, np.arange(1, len(present) + 1))


def test_solver_failure_falls_back(monkeypatch):
    real = solve.iter_laplacian_eigenvectors
    calls = []

    def flaky(graph, k, *, solver, rng):
        calls.append(solver)
        if solver == "lobpcg":
            raise spla.ArpackError(-9999)
        return (yield from real(graph, k, solver=solver, rng=rng))

    monkeypatch.setattr(solve, "iter_laplacian_eigenvectors", flaky)
    with pytest.warns(RuntimeWarning, match="eigen_solver='lobpcg' failed .* used 'arpack'"):
        labels = segment(_image(), eigen_solver="lobpcg", random_state=0)
    assert_valid_labels(labels, (12, 12))
    assert calls[:2] == ["lobpcg", "arpack"]


@pytest.mark.parametrize(
    "error",
    [
        spla.ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0))),
        np.linalg.LinAlgError("eigh"),
        FloatingPointError(),
    ],
)
def test_solver_failure_becomes_clear_error(monkeypatch, error):
    def broken(graph, k, *, solver, rng):
        raise error
        yield  # a generator, as the solver it replaces

    monkeypatch.setattr(solve, "iter_laplacian_eigenvectors", broken)
    with pytest.raises(ValueError, match="eigen_solver='auto' could not compute the eigenvectors"):
        segment(_image(), random_state=0)


def test_solver_nan_result_becomes_clear_error(monkeypatch):
    def nans(graph, k, *, solver, rng):
        n = graph.shape[0]
        return np.full(k, np.nan), np.full((n, k), np.nan)
        yield  # a generator, as the solver it replaces

    monkeypatch.setattr(solve, "iter_laplacian_eigenvectors", nans)
    with pytest.raises(ValueError, match="NaN or infinite eigenvectors"):
        segment(_image(), random_state=0)


def test_no_arpack_fallback_on_large_components(monkeypatch):
    calls = []

    def broken(graph, k, *, solver, rng):
        calls.append(solver)
        raise RuntimeError("boom")
        yield  # a generator, as the solver it replaces

    monkeypatch.setattr(solve, "iter_laplacian_eigenvectors", broken)
    monkeypatch.setattr(solve, "_ARPACK_FALLBACK_LIMIT", 10)
    block = sp.csr_array(np.ones((20, 20)))
    with pytest.raises(
        ValueError, match=r"eigen_solver='amg' could not compute.*\(tried amg: RuntimeError; lobpcg: RuntimeError\)"
    ) as failure:
        solve.solve_component(block, 2, eigen_solver="amg", rng_factory=np.random.default_rng)
    assert "boom" not in str(failure.value)  # the solver's own words stay out of the message
    assert any("boom" in detail for detail in failure.value.details)
    assert calls == ["amg", "lobpcg"]
