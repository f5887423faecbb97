"""Eigen-solvers, the multilevel path, the memory guard and the fast label helpers."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg
from sklearn.metrics import adjusted_rand_score

from napari_spectral_seg import segment
from napari_spectral_seg.core import coarsen, eigen, labels, memory, multilevel, refine
from napari_spectral_seg.core.graph import edge_weights_graph, index_pixels
from napari_spectral_seg.core.pipeline import iter_segment, run_to_end
from napari_spectral_seg.data import four_circles


@pytest.fixture(scope="module")
def reference(circles_graph):
    return _reference(circles_graph, 4)


@pytest.fixture(scope="module")
def circles_graph():
    """Pixel graph of the seed example (one connected component, 2678 nodes)."""
    image, mask, _ = four_circles(100, noise=0.2, seed=0)
    index = index_pixels(mask)
    assert index.n_components == 1
    return edge_weights_graph(image, index.node_of_pixel, index.n_nodes)


def _reference(graph, k):
    """Smallest eigenpairs of I - D^-1/2 W D^-1/2 from scipy's eigsh (shift-invert)."""
    lap, sqrt_degree = eigen.normalized_laplacian(graph.astype(np.float64))
    # A shift just below 0, close to the wanted eigenvalues (~1e-4), makes
    # them the best separated ones of the inverted operator.
    values, vectors = scipy.sparse.linalg.eigsh(lap, k=k, sigma=-1e-4, which="LM", v0=np.ones(lap.shape[0]), tol=1e-10)
    order = np.argsort(values)
    return values[order], vectors[:, order] / sqrt_degree[:, None]


def _subspace_cosine(a, b, weight):
    """Smallest cosine of the principal angles between span(a) and span(b) (D-weighted)."""
    qa, _ = np.linalg.qr(a.astype(np.float64) * np.sqrt(weight)[:, None])
    qb, _ = np.linalg.qr(b.astype(np.float64) * np.sqrt(weight)[:, None])
    return np.linalg.svd(qa.T @ qb, compute_uv=False).min()


@pytest.mark.parametrize("solver", ["arpack", "amg", "multilevel"])
def test_eigenvalues_match_dense_reference(circles_graph, reference, solver, monkeypatch):
    # Force the iterative paths on this small graph (normally solved dense).
    monkeypatch.setattr(eigen, "DENSE_LIMIT", 10)
    want_values, want_vectors = reference
    values, embedding = eigen.laplacian_eigenvectors(circles_graph, 4, solver=solver, rng=np.random.default_rng(0))
    assert values.shape == (4,) and embedding.shape == (circles_graph.shape[0], 4)
    assert abs(values[0]) < 1e-6
    np.testing.assert_allclose(values[1:], want_values[1:], rtol=2e-2)
    degree = np.asarray(circles_graph.sum(axis=1)).ravel()
    assert _subspace_cosine(embedding, want_vectors, degree) > 0.999


def test_multilevel_builds_levels_and_refines(circles_graph, reference):
    values, embedding, info = multilevel.multilevel_eigenvectors(
        circles_graph, 4, rng=np.random.default_rng(0), coarsest=100
    )
    assert len(info["levels"]) >= 3  # really coarsened, then refined back
    assert info["levels"][0] == circles_graph.shape[0]
    assert embedding.dtype == np.float32
    want_values, _ = reference
    np.testing.assert_allclose(values[1:], want_values[1:], rtol=2e-2)


def test_coarse_graph_keeps_degrees_and_total_weight(circles_graph):
    agg, n_agg = coarsen.aggregate_nodes(circles_graph)
    n = circles_graph.shape[0]
    assert agg.shape == (n,) and agg.min() == 0 and agg.max() == n_agg - 1
    assert n_agg < n / 2  # aggregates of several pixels
    coarse = coarsen.coarsen_graph(circles_graph, agg, n_agg)
    assert coarse.shape == (n_agg, n_agg)
    fine_degree = np.asarray(circles_graph.sum(axis=1)).ravel()
    coarse_degree = np.asarray(coarse.sum(axis=1)).ravel()
    np.testing.assert_allclose(coarse_degree, np.bincount(agg, weights=fine_degree), rtol=1e-5)
    assert abs(coarse - coarse.T).max() < 1e-5


def test_laplacian_operator_matches_d_minus_w(circles_graph):
    lap = refine.EdgeLaplacian(circles_graph, np.float64)
    x = np.random.default_rng(0).standard_normal((circles_graph.shape[0], 3))
    degree = np.asarray(circles_graph.sum(axis=1)).ravel()
    want = degree[:, None] * x - circles_graph.astype(np.float64) @ x
    np.testing.assert_allclose(lap @ x, want, rtol=1e-5, atol=1e-5)


def test_multilevel_segments_four_circles_400():
    image, mask, truth = four_circles(400, noise=0.2, seed=0)
    result = segment(image, mask, n_clusters=4, eigen_solver="multilevel", random_state=0)
    inside = truth > 0
    assert adjusted_rand_score(truth[inside], result[inside]) >= 0.99  # 0.97 without refine_boundaries
    assert set(np.unique(result)) == {0, 1, 2, 3, 4}


def test_auto_picks_multilevel_for_large_components():
    assert eigen.resolve_solver("auto", 200) == "dense"
    assert eigen.resolve_solver("auto", 5_000) == "arpack"
    assert eigen.resolve_solver("auto", eigen.AUTO_ARPACK_LIMIT + 1) == "multilevel"
    assert eigen.resolve_solver("auto", 5_000_000) == "multilevel"
    assert eigen.resolve_solver("amg", 5_000_000) == "amg"


def test_two_pairs_switch_to_arpack_on_fewer_nodes():
    limit = eigen.TWO_PAIRS_DENSE_LIMIT
    assert eigen.resolve_solver("auto", limit, 2) == "dense"
    assert eigen.resolve_solver("auto", limit + 1, 2) == "arpack"
    assert eigen.resolve_solver("auto", limit + 1, 3) == "dense"


def _grid_laplacian(shape):
    """Normalised Laplacian of a grid graph with random weights, nodes in raster order."""
    rng = np.random.default_rng(3)
    index = np.arange(int(np.prod(shape))).reshape(shape)
    a = np.concatenate([np.delete(index, -1, axis).ravel() for axis in range(len(shape))])
    b = np.concatenate([np.delete(index, 0, axis).ravel() for axis in range(len(shape))])
    w = rng.uniform(0.1, 1.0, len(a))
    graph = sp.coo_array((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(index.size,) * 2).tocsr()
    return eigen.normalized_laplacian(graph)[0]


@pytest.mark.parametrize(("shape", "banded"), [((20, 30), True), ((20, 20, 20), False)])
def test_shifted_solver_solves_the_shifted_system(shape, banded):
    laplacian = _grid_laplacian(shape)
    solve = eigen._shifted_solver(laplacian)
    # A narrow band goes to LAPACK's banded Cholesky, a wide one (3D) to SuperLU.
    assert isinstance(getattr(solve, "__self__", None), scipy.sparse.linalg.SuperLU) != banded
    y = np.random.default_rng(4).standard_normal(laplacian.shape[0])
    shifted = laplacian + eigen.ARPACK_SHIFT * sp.eye_array(laplacian.shape[0])
    x = solve(y)
    assert np.allclose(shifted @ x, y, rtol=0, atol=1e-9 * np.abs(x).max())


def test_memory_guard_refuses_absurd_size_with_the_fix():
    with pytest.raises(ValueError) as info:
        memory.check_memory(10**12, 10**12, 2, 4, "arpack", available=16 * 2**30)
    message = str(info.value)
    assert "GiB" in message
    assert "multilevel" in message and "crop" in message and "downsample" in message
    # A normal size passes and returns its estimate.
    assert memory.check_memory(10**6, 3 * 10**5, 2, 4, "multilevel", available=16 * 2**30) > 0


def test_memory_guard_runs_before_the_graph(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1024)

    def no_graph(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("graph built before the memory check")

    monkeypatch.setattr("napari_spectral_seg.core.pipeline.edge_weights_graph", no_graph)
    image, mask, _ = four_circles(100, noise=0.2, seed=0)
    with pytest.raises(ValueError, match="memory"):
        run_to_end(iter_segment(image, mask, random_state=0))


def test_memory_estimate_grows_with_size_and_arpack_costs_more():
    small = memory.estimate_peak_bytes(10**6, 10**5, 2, 4, "multilevel")
    large = memory.estimate_peak_bytes(10**8, 10**7, 2, 4, "multilevel")
    assert large > 50 * small
    assert memory.estimate_peak_bytes(10**8, 10**7, 2, 4, "arpack") > 3 * large


def test_available_memory_is_positive():
    available = memory.available_memory()
    assert available is None or available > 0


def test_kmeans_on_subsample_assigns_every_row(monkeypatch):
    monkeypatch.setattr(labels, "KMEANS_SUBSAMPLE", 300)
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    points = np.repeat(centres, 1000, axis=0) + rng.standard_normal((3000, 3))
    clusters = labels.cluster_embedding(points, 3, random_state=0)
    truth = np.repeat(np.arange(3), 1000)
    assert adjusted_rand_score(truth, clusters) == 1.0


def test_relabel_by_first_pixel_is_raster_ordered():
    image = np.array([[0, 7, 7, 3], [2, 2, 3, 0], [9, 9, 0, 0]])
    out = labels.relabel_by_first_pixel(image)
    np.testing.assert_array_equal(out, [[0, 1, 1, 2], [3, 3, 2, 0], [4, 4, 0, 0]])
    assert out.dtype == np.int32
    assert labels.relabel_by_first_pixel(np.zeros((2, 2), int)).max() == 0


def test_component_solver_on_disconnected_graph_blocks():
    # Two separate 30 x 30 squares: each is solved alone, as in the pipeline.
    mask = np.zeros((30, 70), bool)
    mask[:, :30] = True
    mask[:, 40:] = True
    index = index_pixels(mask)
    graph = edge_weights_graph(np.ones(mask.shape), index.node_of_pixel, index.n_nodes)
    assert index.n_components == 2
    assert sp.issparse(graph)
    result = segment(np.ones(mask.shape), mask, n_clusters=2, random_state=0)
    assert set(np.unique(result)) == {0, 1, 2}


def test_chebyshev_step_sizes_give_the_chebyshev_polynomial():
    steps, lower = 5, 0.4
    factors = refine._step_sizes(steps, 2.0 / 3.0, lower)
    mu = np.linspace(lower, 2.0, 200)
    product = np.prod([1.0 - w * mu for w in factors], axis=0)
    # Equioscillates with the minimax bound 1 / T_s((2 + lower) / (2 - lower)).
    bound = 1.0 / np.cosh(steps * np.arccosh((2.0 + lower) / (2.0 - lower)))
    assert np.abs(product).max() <= bound * (1 + 1e-9)
    assert np.abs(product).max() > 0.99 * bound
    assert refine._step_sizes(3, 0.5, None) == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("lower", [None, 0.4])
def test_smoothing_removes_rough_error_on_a_graph_with_self_loops(circles_graph, lower):
    # A Galerkin coarse graph keeps internal weights as self-loops; smoothing
    # through W must account for them (L = D - W with both including them).
    agg, n_agg = coarsen.aggregate_nodes(circles_graph)
    coarse = coarsen.coarsen_graph(circles_graph, agg, n_agg).astype(np.float32)
    assert coarse.diagonal().max() > 0
    want_values, _ = _reference(coarse, 4)
    degree = np.asarray(coarse.sum(axis=1)).ravel()
    rng = np.random.default_rng(0)
    _, exact = _reference(coarse, 6)
    start = (exact + 0.02 * rng.standard_normal(exact.shape) / np.sqrt(degree)[:, None]).astype(np.float32)
    start_values, _ = refine.smooth_block(coarse, degree.astype(np.float32), start, 0)
    values, x = refine.smooth_block(coarse, degree.astype(np.float32), start, 6, lower=lower)
    err_start = np.abs(start_values[1:4] / want_values[1:4] - 1).max()
    err = np.abs(values[1:4] / want_values[1:4] - 1).max()
    assert err < err_start / 3
    assert x.dtype == np.float32


def _chain(weights):
    n = len(weights) + 1
    i = np.arange(n - 1)
    w = np.asarray(weights, dtype=np.float32)
    return sp.csr_array((np.r_[w, w], (np.r_[i, i + 1], np.r_[i + 1, i])), shape=(n, n))


def test_refine_boundaries_moves_the_cut_to_the_bottleneck():
    # A chain of 100 nodes with one weak edge between 59 and 60, and a
    # smooth 1-D "embedding" whose k-means midpoint is node 50.
    weights = np.ones(99)
    weights[59] = 0.01
    points = np.c_[np.ones(100), np.linspace(0, 1, 100)]
    centres = np.array([[1.0, 0.25], [1.0, 0.75]])
    out = labels.refine_boundaries(_chain(weights), points, centres)
    np.testing.assert_array_equal(out, np.r_[np.zeros(60), np.ones(40)])
    # Without a bottleneck the balanced nearest-centre split stays.
    out = labels.refine_boundaries(_chain(np.ones(99)), points, centres)
    np.testing.assert_array_equal(out, np.r_[np.zeros(50), np.ones(50)])
    # A bottleneck beyond reach of the midpoint is not taken.
    weights = np.ones(99)
    weights[89] = 0.01
    out = labels.refine_boundaries(_chain(weights), points, centres)
    assert out[:50].max() == 0 and out[70:].min() == 1


def test_kmeans_with_graph_refines_the_seed_example():
    image, mask, truth = four_circles(100, noise=0.2, seed=8)
    index = index_pixels(mask)
    graph = edge_weights_graph(image, index.node_of_pixel, index.n_nodes)
    _, embedding = eigen.laplacian_eigenvectors(graph, 4, rng=np.random.default_rng(0))
    node_truth = truth.ravel()[index.pixel_of_node]
    inside = node_truth > 0
    plain = labels.cluster_embedding(embedding, 4, random_state=0)
    refined = labels.cluster_embedding(embedding, 4, random_state=0, graph=graph)
    score_plain = adjusted_rand_score(node_truth[inside], plain[inside])
    score_refined = adjusted_rand_score(node_truth[inside], refined[inside])
    assert score_plain < 0.98 and score_refined > 0.99


@pytest.mark.parametrize("solver", ["auto", "arpack", "lobpcg", "amg", "multilevel"])
def test_a_graph_with_a_nan_weight_or_an_isolated_node_is_refused_in_our_words(solver):
    # Issue 17: SuperLU's "Factor is exactly singular" leaked for a NaN weight
    # (ARPACK's factorisation), and an isolated node gave NaN eigenvectors silently.
    rng = np.random.default_rng(0)
    w = sp.random_array((600, 600), density=0.01, rng=rng)
    w = (w + w.T).tocsr()
    nan = w.copy()
    nan.data[0] = np.nan
    isolated = w.tolil()
    isolated[5, :] = 0
    isolated[:, 5] = 0
    isolated = sp.csr_array(isolated.tocsr())
    isolated.eliminate_zeros()
    with pytest.raises(ValueError, match=r"^graph has NaN, infinite or negative edge weights; pass finite"):
        eigen.laplacian_eigenvectors(nan, 3, solver=solver, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"^graph has 1 node\(s\) without an edge of positive weight; pass one"):
        eigen.laplacian_eigenvectors(isolated, 3, solver=solver, rng=np.random.default_rng(0))


@pytest.mark.parametrize("solver", ["dense", "arpack"])
def test_the_edge_list_route_refuses_a_node_without_weight_in_our_words(solver):
    n = 500
    a = np.arange(n - 1)
    b = a + 1
    w = np.ones(n - 1)
    w[-1] = 0.0  # the last node's only edge has no weight
    with pytest.raises(ValueError, match="node without an edge of positive weight"):
        eigen.edge_laplacian_eigenvectors(w, a, b, n, 2, solver, np.random.default_rng(0))


def test_a_lobpcg_solve_hides_only_its_own_notes_not_other_user_warnings():
    # Other code's UserWarnings during a solve (here: from inside its preconditioner) are shown;
    # LOBPCG's note at its iteration limit is not.
    import warnings

    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    from napari_spectral_seg.core import eigen

    n = 2000
    laplacian = sp.diags([2 * np.ones(n), -np.ones(n - 1), -np.ones(n - 1)], [0, 1, -1]).tocsr()

    def precondition(x):
        warnings.warn("a note from the preconditioner", UserWarning, stacklevel=1)
        return x

    preconditioner = spla.LinearOperator((n, n), matvec=precondition, matmat=precondition)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        eigen.hide_lobpcg_notes()
        eigen._lobpcg(laplacian, 3, np.ones(n), np.random.default_rng(0), preconditioner, maxiter=2)
    messages = [str(w.message) for w in caught]
    assert "a note from the preconditioner" in messages
    assert not any(m.startswith("Exited") for m in messages)
