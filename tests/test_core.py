"""Core pipeline: the seed example's accuracy, the contract of segment(), progress and cancel."""

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import ari_against_truth
from sklearn.feature_extraction import image as sk_image

from napari_spectral_seg import SegmentationCancelled, build_pixel_graph, iter_segment
from napari_spectral_seg import segment as segment_with_defaults
from napari_spectral_seg.core import STEPS, otsu_threshold
from napari_spectral_seg.data import four_circles


def segment(image, mask=None, **kwargs):
    """``segment`` on the whole image (or the mask) unless a threshold is given: these tests are about the graph."""
    kwargs.setdefault("threshold", None)
    return segment_with_defaults(image, mask, **kwargs)


@pytest.mark.parametrize("seed", range(10))
def test_seed_example_finds_the_four_circles(seed):
    image, mask, truth = four_circles(seed=seed)
    labels = segment(image, mask, n_clusters=4, random_state=seed)
    assert ari_against_truth(labels, truth) >= 0.97


def test_graph_weights_equal_the_seed_example(circles):
    image, mask, _ = circles
    seed_graph = sk_image.img_to_graph(image, mask=mask)
    seed_graph.data = np.exp(-seed_graph.data / seed_graph.data.std())
    seed_graph = sp.csr_array(seed_graph)
    seed_graph.setdiag(0)  # the Laplacian ignores the diagonal
    seed_graph.eliminate_zeros()
    ours = build_pixel_graph(image, mask, dtype=np.float64)
    assert ours.shape == seed_graph.shape
    assert abs(ours - seed_graph).max() < 1e-12


def test_labels_contract(circles):
    image, mask, _ = circles
    labels = segment(image, mask, n_clusters=4, random_state=0)
    assert labels.dtype == np.int32 and labels.shape == image.shape
    assert np.all(labels[~mask] == 0)
    assert np.all(labels[mask] > 0)
    assert set(np.unique(labels[mask])) == {1, 2, 3, 4}


def test_same_seed_same_labels_and_input_untouched(circles):
    image, mask, _ = circles
    before = image.copy()
    a = segment(image, mask, n_clusters=4, random_state=7)
    b = segment(image, mask, n_clusters=4, random_state=7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(image, before)


def test_otsu_threshold_recovers_the_circles(circles):
    image, mask, truth = circles
    assert 1.3 < otsu_threshold(image) < 1.7
    labels = segment(image, threshold="otsu", n_clusters=4, min_size=20, random_state=0)
    assert ari_against_truth(labels, truth) >= 0.95
    # Specks of noise above the threshold are dropped by min_size.
    assert labels.max() == 4


def test_threshold_number_masks_pixels(circles):
    image, _, _ = circles
    labels = segment(image, threshold=1.5, n_clusters=4, min_size=20, random_state=0)
    assert np.all(labels[image <= 1.5] == 0)


def test_no_mask_no_threshold_uses_whole_image():
    image, _, _ = four_circles(size=40, seed=0)
    labels = segment(image, n_clusters=2, random_state=0)
    assert np.all(labels > 0)
    assert set(np.unique(labels)) == {1, 2}


def test_separate_components_each_get_a_segment():
    image = np.zeros((40, 40))
    image[5:15, 5:15] = 1
    image[25:35, 25:35] = 1
    mask = image > 0
    labels = segment(image, mask, n_clusters=2, random_state=0)
    assert labels[10, 10] != labels[30, 30]
    assert len(np.unique(labels[5:15, 5:15])) == 1
    # More components than n_clusters: each piece still gets its own label.
    image[5:15, 25:35] = 1
    labels = segment(image, image > 0, n_clusters=2, random_state=0)
    assert labels.max() == 3


def test_extra_segments_go_to_the_component_that_splits():
    # A dumbbell (two squares joined by a thin neck) and a compact square:
    # with 3 segments, the dumbbell is cut at its neck.
    mask = np.zeros((40, 70), bool)
    mask[5:25, 5:25] = True
    mask[5:25, 35:55] = True
    mask[14:16, 25:35] = True
    mask[30:38, 60:68] = True
    labels = segment(mask.astype(float), mask, n_clusters=3, random_state=0)
    assert labels[15, 10] != labels[15, 50]
    assert labels[34, 64] not in (labels[15, 10], labels[15, 50])


def test_three_dimensional_spheres():
    image, mask, truth = four_circles(size=40, ndim=3, seed=0)
    labels = segment(image, mask, n_clusters=4, random_state=0)
    assert labels.shape == image.shape
    assert ari_against_truth(labels, truth) >= 0.95


def test_rgb_channels_give_edges():
    # Two halves with equal brightness but different colour: only the
    # channel vectors tell them apart.
    rgb = np.zeros((30, 40, 3))
    rgb[:, :20] = (1.0, 0.0, 0.5)
    rgb[:, 20:] = (0.0, 1.0, 0.5)
    rgb += 0.05 * np.random.default_rng(0).standard_normal(rgb.shape)
    labels = segment(rgb, n_clusters=2, channel_axis=-1, beta=5.0, random_state=0)
    assert labels.shape == (30, 40)
    assert len(np.unique(labels[:, :18])) == 1 and len(np.unique(labels[:, 22:])) == 1
    assert labels[0, 0] != labels[0, -1]


@pytest.mark.parametrize("solver", ["arpack", "lobpcg", "amg"])
def test_every_solver_finds_the_circles(solver):
    image, mask, truth = four_circles(size=100, seed=3)
    labels = segment(image, mask, n_clusters=4, eigen_solver=solver, random_state=3)
    assert ari_against_truth(labels, truth) >= 0.95


def test_generator_reports_every_step_in_order(circles):
    image, mask, _ = circles
    steps = iter_segment(image, mask, n_clusters=4, random_state=0)
    seen = []
    while True:
        try:
            update = next(steps)
        except StopIteration as stop:
            result = stop.value
            break
        seen.append(update)
    order = [s.step for s in seen]
    assert [s for s in STEPS if s in order] == list(STEPS)
    assert sorted(order, key=STEPS.index) == order
    fractions = [s.fraction for s in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert result.parameters["random_state"] == 0
    assert result.labels.max() == 4


def test_progress_callback_can_cancel(circles):
    image, mask, _ = circles
    seen = []

    def stop_at_graph(update):
        seen.append(update.step)
        if update.step == "graph":
            raise SegmentationCancelled

    with pytest.raises(SegmentationCancelled):
        segment(image, mask, progress=stop_at_graph)
    assert seen[-1] == "graph" and "eigenvectors" not in seen


@pytest.fixture(scope="module")
def big_circles():
    # 271k masked pixels: above AUTO_ARPACK_LIMIT, so "auto" runs the multilevel solver.
    return four_circles(1000, noise=0.2, seed=0)


def test_multilevel_solve_reports_progress_per_level(big_circles):
    image, mask, truth = big_circles
    seen = []
    labels = segment(image, mask, n_clusters=4, random_state=0, progress=seen.append)
    assert ari_against_truth(labels, truth) >= 0.99
    during = [s for s in seen if s.step == "eigenvectors"]
    levels = [s for s in during if "level" in s.message]
    # Coarsening steps, the coarsest solve and every refined level: several
    # events inside the one big component's solve, each further along.
    assert len(levels) >= 5
    assert any("refined level 0" in s.message for s in levels)
    # The finest level (seconds at 16 MP) reports each smoothing step too.
    assert sum("level 0" in s.message and "smoothing step" in s.message for s in levels) >= 3
    fractions = [s.fraction for s in during]
    assert fractions == sorted(fractions)
    assert len(set(s.fraction for s in levels)) == len(levels)
    assert during[0].fraction < levels[0].fraction and levels[-1].fraction <= 0.9


def test_cancel_between_multilevel_levels(big_circles):
    from threadpoolctl import threadpool_info

    image, mask, _ = big_circles
    threads = [pool["num_threads"] for pool in threadpool_info()]
    seen = []

    def stop_mid_solve(update):
        seen.append(update)
        if "refined level 2" in update.message:
            raise SegmentationCancelled

    with pytest.raises(SegmentationCancelled):
        segment(image, mask, n_clusters=4, random_state=0, progress=stop_mid_solve)
    assert "refined level 2" in seen[-1].message
    assert not any("refined level 1" in s.message or s.step == "labels" for s in seen)
    # No single-thread limit is left behind by the interrupted solver.
    assert [pool["num_threads"] for pool in threadpool_info()] == threads


def test_random_state_none_is_recorded_and_replays(circles):
    image, mask, _ = circles
    steps = iter_segment(image, mask, n_clusters=4)
    from napari_spectral_seg.core import run_to_end

    result = run_to_end(steps)
    seed = result.parameters["random_state"]
    assert isinstance(seed, int)
    np.testing.assert_array_equal(result.labels, segment(image, mask, n_clusters=4, random_state=seed))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_clusters=0), "n_clusters"),
        (dict(n_clusters=2.5), "n_clusters"),
        (dict(beta=-1.0), "beta"),
        (dict(eigen_solver="magic"), "eigen_solver"),
        (dict(threshold="median"), "threshold"),
        (dict(threshold=100.0), "mask is empty"),
        (dict(n_clusters=10**6), "n_clusters"),
    ],
)
def test_bad_parameters_name_the_parameter(circles, kwargs, match):
    image, _, _ = circles
    with pytest.raises((ValueError, TypeError), match=match):
        segment(image, **kwargs)


def test_mask_of_another_shape_is_refused(circles):
    image, _, _ = circles
    with pytest.raises(ValueError, match="mask has shape"):
        segment(image, np.ones((10, 10), bool))


def test_label_mask_keeps_touching_regions_apart():
    # Two touching rectangles of a label image, on a flat image: without the
    # labels they would be one piece; with them, each is its own segment.
    regions = np.zeros((20, 40), np.int32)
    regions[2:18, 2:20] = 5
    regions[2:18, 20:38] = 9
    image = np.ones((20, 40))
    labels = segment(image, regions, n_clusters=2, random_state=0)
    assert len(np.unique(labels[regions == 5])) == 1
    assert len(np.unique(labels[regions == 9])) == 1
    assert labels[10, 10] != labels[10, 30]
    # n_clusters beyond the regions goes to the cheapest cut, inside a region only.
    labels = segment(image, regions, n_clusters=3, random_state=0)
    assert labels.max() == 3
    for value in (5, 9):
        assert set(np.unique(labels[regions == value])).isdisjoint(
            np.unique(labels[(regions != value) & (regions > 0)])
        )


@pytest.mark.parametrize("numbering", ["raster", "permuted"])
def test_the_pixel_graph_is_the_coo_conversion_of_its_edges(numbering):

    from napari_spectral_seg.core.graph import edge_weights_graph

    image, mask, _ = four_circles(50, seed=3)
    node_of_pixel = np.full(mask.shape, -1, dtype=np.int32)
    n = int(mask.sum())
    order = np.arange(n) if numbering == "raster" else np.random.default_rng(0).permutation(n)
    node_of_pixel[mask] = order
    graph = edge_weights_graph(image, node_of_pixel, n, spacing=(1.0, 2.0))
    # Reference: every neighbour pair in both directions, converted by scipy (sorted, summed).
    rows, cols = [], []
    for axis in range(2):
        lo = node_of_pixel[tuple(slice(None, -1) if a == axis else slice(None) for a in range(2))]
        hi = node_of_pixel[tuple(slice(1, None) if a == axis else slice(None) for a in range(2))]
        both = (lo >= 0) & (hi >= 0)
        rows += [lo[both], hi[both]]
        cols += [hi[both], lo[both]]
    pattern = sp.coo_array((np.ones(sum(map(len, rows))), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    pattern = pattern.tocsr()
    assert graph.has_sorted_indices
    assert np.array_equal(graph.indptr, pattern.indptr) and np.array_equal(graph.indices, pattern.indices)
    assert np.allclose((graph - graph.T).data, 0) and graph.data.min() > 0
