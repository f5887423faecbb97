"""The fast paths of auto mode give exactly what the paths they replace give.

The Fiedler solves of small graphs build their Laplacian from the edges, the sweep's pass
heights come from an interval-maximum table, ``AutoConfig.skip_clear_parts`` leaves out
sweeps that provably split nothing, regional maxima and the pieces of a cut come from labelling
the part's box instead of a sparse graph, a notch's convex hull is tested facet by facet, and
the clear-part test reconstructs by repeated geodesic dilation:
each is checked here against the straightforward computation, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from napari_spectral_seg.core.auto import AutoConfig
from napari_spectral_seg.core.auto.bisection import _cut_heights, _one_top, no_pass_below, reconstruct_by_dilation
from napari_spectral_seg.core.auto.geometry import box_coords, box_mask
from napari_spectral_seg.core.auto.landscape import pixel_edges
from napari_spectral_seg.core.auto.pieces import _side_pieces
from napari_spectral_seg.core.eigen import edge_laplacian_eigenvectors, laplacian_eigenvectors, resolve_solver
from napari_spectral_seg.core.pipeline import iter_segment, run_to_end
from napari_spectral_seg.data import textured_nuclei, touching_blobs


def random_part(rng, shape):
    """Nodes and face-neighbour edges of the largest piece of a random mask."""
    labels, _ = ndi.label(rng.random(shape) < 0.8)
    mask = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    node_of_pixel = np.full(shape, -1)
    node_of_pixel[mask] = np.arange(int(mask.sum()))
    a, b, _ = pixel_edges(node_of_pixel)
    return int(mask.sum()), a, b, np.argwhere(mask)


@pytest.mark.parametrize("shape", [(12, 15), (5, 6, 7), (40, 45), (9, 30, 30)])
def test_edge_built_laplacian_gives_the_sparse_routes_eigenvectors_bit_for_bit(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(3):
        n, a, b, _ = random_part(rng, shape)
        w = rng.random(len(a)) ** 2 + 1e-3
        graph = sp.coo_array(
            (np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n)
        ).tocsr()
        solver = resolve_solver("auto", n, 2)
        assert solver in ("dense", "arpack")
        values, embedding = laplacian_eigenvectors(graph, 2, solver="auto", rng=np.random.default_rng(3))
        fast_values, fast_embedding = edge_laplacian_eigenvectors(w, a, b, n, 2, solver, np.random.default_rng(3))
        assert np.array_equal(values, fast_values) and np.array_equal(embedding, fast_embedding)


def test_pass_heights_equal_those_of_testing_every_edge_against_every_candidate():
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = int(rng.integers(2, 300))
        x, y = rng.integers(0, m, 2 * m), rng.integers(0, m, 2 * m)
        lo, hi = np.minimum(x, y)[x != y], np.maximum(x, y)[x != y]
        heights = rng.random(len(lo)) * (rng.random(len(lo)) < 0.9)
        candidates = np.arange(1, m)
        cut = (lo[:, None] < candidates[None, :]) & (hi[:, None] >= candidates[None, :])
        expected = np.max(np.where(cut, heights[:, None], 0.0), axis=0) if len(lo) else np.zeros(m - 1)
        assert np.array_equal(_cut_heights(lo, hi, heights, candidates), expected)


def regional_maxima(values, a, b):
    """Number of regional maxima: plateaus (equal-valued, connected by edges) without a higher neighbour."""
    n = len(values)
    flat = values[a] == values[b]
    graph = sp.coo_array((np.ones(int(flat.sum())), (a[flat], b[flat])), shape=(n, n))
    n_plateaus, plateau = connected_components(graph, directed=False)
    higher = np.zeros(n, dtype=bool)
    higher[a[values[b] > values[a]]] = True
    higher[b[values[a] > values[b]]] = True
    return n_plateaus - len(np.unique(plateau[higher]))


@pytest.mark.parametrize("shape", [(9, 11), (5, 6, 7), (30, 30)])
def test_one_top_by_box_labelling_agrees_with_the_plateau_graph(shape):
    rng = np.random.default_rng(len(shape) + shape[0])
    footprint = ndi.generate_binary_structure(len(shape), 1)
    outcomes = set()
    for _ in range(150):
        n, a, b, coords = random_part(rng, shape)
        # few levels, so plateaus of many nodes (and ties across them) are common
        values = rng.integers(0, int(rng.integers(1, 5)), n).astype(float)
        local, box_shape = box_coords(coords)
        expected = regional_maxima(values, a, b) == 1
        assert _one_top(values, a, b, tuple(local.T), box_shape, footprint) == expected
        outcomes.add(expected)
    assert outcomes == {True, False}


@pytest.mark.parametrize("shape", [(9, 11), (5, 6, 7), (40, 45)])
def test_pieces_of_a_cut_by_box_labelling_are_the_graphs_components_in_its_order(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(50):
        n, a, b, coords = random_part(rng, shape)
        side = (rng.random(n) < rng.random()).astype(np.int64)
        same = side[a] == side[b]
        graph = sp.coo_array((np.ones(int(same.sum())), (a[same], b[same])), shape=(n, n))
        n_expected, expected = connected_components(graph, directed=False)
        n_pieces, pieces = _side_pieces(side, coords)
        assert n_pieces == n_expected and np.array_equal(pieces, expected)


def dome_part(centres, shape=(30, 50)):
    """Heights of a union of discs: a sum of domes, its coordinates and edges."""
    yy, xx = np.indices(shape)
    height = sum(np.clip(1.0 - np.hypot(yy - cy, xx - cx) / r, 0, None) for cy, cx, r in centres)
    inside = height > 0.05
    coords = np.argwhere(inside)
    node_of_pixel = np.full(shape, -1)
    node_of_pixel[inside] = np.arange(len(coords))
    a, b, _ = pixel_edges(node_of_pixel)
    return height[inside], coords, a, b


@pytest.mark.parametrize("shape", [(1, 9), (17, 23), (6, 7, 8), (3, 40, 41)])
@pytest.mark.parametrize("max_steps", [0, 3, 32])
def test_reconstruction_by_repeated_dilation_is_skimages_exactly(shape, max_steps):
    from skimage.morphology import reconstruction

    rng = np.random.default_rng(sum(shape) + max_steps)
    for smooth in (0.0, 2.0):
        mask = ndi.gaussian_filter(rng.random(shape), smooth) if smooth else rng.random(shape)
        mask = np.round(mask * 20) / 20  # plateaus and ties
        mask[rng.random(shape) < 0.2] = 0.0  # pixels outside the part, as in a part's box
        marker = np.minimum(mask * rng.choice([0.3, 0.9, 1.0], size=shape), mask)
        footprint = ndi.generate_binary_structure(len(shape), 1)
        expected = reconstruction(marker, mask, method="dilation", footprint=footprint)
        np.testing.assert_array_equal(reconstruct_by_dilation(marker, mask, max_steps=max_steps), expected)


def test_one_dome_has_no_pass_and_two_domes_with_a_neck_have_one():
    one = dome_part([(15, 25, 12)])
    assert no_pass_below([one[0]], one[1], one[2], one[3], 0.85)
    two = dome_part([(15, 16, 11), (15, 34, 11)])  # pass: 0.36 of the hills
    assert not no_pass_below([two[0]], two[1], two[2], two[3], 0.85)
    local, box = box_mask(two[1])
    distance = ndi.distance_transform_edt(box)[tuple(local.T)]
    assert not no_pass_below([two[0], distance], two[1], two[2], two[3], 0.85)
    # the pass is below 0.85 of the hills, not below 0.3 of them
    assert no_pass_below([two[0]], two[1], two[2], two[3], 0.3)
    assert not no_pass_below([one[0] * 0.0 + 1e-13], one[1], one[2], one[3], 0.85)  # below the ratio's floor


@pytest.mark.parametrize(
    "make,spacing",
    [
        (lambda: touching_blobs((96, 96), 10, seed=3)[0], None),
        (lambda: textured_nuclei((128, 128), 14, seed=1)[0], None),
        (lambda: textured_nuclei((24, 64, 64), 8, spacing=(2.5, 1.0, 1.0), seed=2)[0], (2.5, 1.0, 1.0)),
    ],
)
def test_skipping_clear_parts_gives_the_same_labels_with_fewer_ratios(make, spacing):
    image = make()

    def run(config):
        steps = iter_segment(
            image,
            threshold="otsu",
            n_clusters="auto",
            sigma="auto",
            min_size="auto",
            spacing=spacing,
            random_state=0,
            auto_config=config,
        )
        return run_to_end(steps)

    full, skipped = run(AutoConfig(skip_clear_parts=False)), run(AutoConfig())
    assert np.array_equal(full.labels, skipped.labels)
    count = lambda result: sum(len(r) for r in result.parameters["split_ratios"])  # noqa: E731
    assert count(skipped) < count(full)


def test_every_lapack_call_of_auto_mode_runs_inside_the_single_thread_limit(monkeypatch):
    import scipy.linalg
    import scipy.sparse.linalg
    import scipy.spatial

    from napari_spectral_seg.core import _threads

    calls = []

    def limited(name, function):
        def call(*args, **kwargs):
            calls.append((name, _threads._depth > 0))
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(np.linalg, "svd", limited("svd", np.linalg.svd))
    monkeypatch.setattr(scipy.linalg, "eigh", limited("eigh", scipy.linalg.eigh))
    monkeypatch.setattr(scipy.sparse.linalg, "eigsh", limited("eigsh", scipy.sparse.linalg.eigsh))
    for name in ("dpbtrf", "dpbtrs"):  # the banded factorisation of shift-invert ARPACK
        monkeypatch.setattr(scipy.linalg.lapack, name, limited(name, getattr(scipy.linalg.lapack, name)))
    monkeypatch.setattr(scipy.spatial, "ConvexHull", limited("hull", scipy.spatial.ConvexHull))
    auto = {"threshold": "otsu", "n_clusters": "auto", "sigma": "auto", "min_size": "auto", "random_state": 0}
    from napari_spectral_seg import segment

    segment(touching_blobs((96, 96), 10, seed=3)[0], **auto)
    segment(touching_blobs((24, 48, 48), 6, seed=4)[0], spacing=(2.0, 1.0, 1.0), **auto)
    # Small blobs: parts small enough for the dense solver.
    segment(touching_blobs((64, 64), 12, radius_range=(4, 7), seed=1)[0], **auto)
    assert {name for name, _ in calls} >= {"eigh", "eigsh", "dpbtrf", "dpbtrs", "hull"}
    assert all(inside for _, inside in calls), [name for name, inside in calls if not inside]


@pytest.mark.parametrize("ndim", [2, 3])
def test_hull_by_facets_covers_the_pixels_the_triangulation_covers(ndim, monkeypatch):
    from napari_spectral_seg.core.auto import shape as shape_module

    rng = np.random.default_rng(ndim)
    for _ in range(60):
        size = rng.integers(4, 50 if ndim == 2 else 14, ndim)
        blobs = ndi.gaussian_filter(rng.random(tuple(size)), rng.uniform(1, 3)) > 0.5
        labels, n = ndi.label(blobs)
        if n == 0:
            continue
        box = np.pad(labels == 1, 1)
        by_facets = shape_module.hull_mask(box)
        monkeypatch.setattr(shape_module, "_FACET_TEST_LIMIT", 0)  # the triangulation's test
        by_cells = shape_module.hull_mask(box)
        monkeypatch.undo()
        assert (by_facets is None and by_cells is None) or np.array_equal(by_facets, by_cells)
