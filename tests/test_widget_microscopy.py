"""Widget options for real microscopy data: auto segment count, smoothing, time series, volumes."""

import numpy as np
import pytest
from conftest import ari_against_truth, run_and_wait

from napari_spectral_seg import segment
from napari_spectral_seg.data import four_circles

PLUGIN = "napari-spectral-seg"


def run(widget, qtbot):
    run_and_wait(widget, qtbot)


def two_separate_and_one_touching_pair():
    """Three blobs: two apart, and two touching (a neck): auto should give 4 objects."""
    yy, xx = np.mgrid[:80, :120]
    truth = np.zeros((80, 120), np.int32)
    for i, (cy, cx, r) in enumerate([(20, 20, 12), (60, 20, 12), (40, 70, 14), (40, 96, 14)], start=1):
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = i
    image = (truth > 0) * 1.0 + 0.05 * np.random.default_rng(0).standard_normal(truth.shape)
    return image, truth


def test_auto_segments_finds_each_object(dock, qtbot):
    image, truth = two_separate_and_one_touching_pair()
    viewer, widget = dock(image, name="blobs")
    widget.mask.value = None  # Otsu
    widget.auto_segments.value = True
    assert not widget.n_clusters.enabled and widget.sensitivity.enabled
    widget.n_clusters.value = 1  # ignored in auto mode
    run(widget, qtbot)
    layer = viewer.layers["blobs spectral"]
    assert layer.data.max() == 4
    assert ari_against_truth(layer.data, truth) > 0.95
    meta = layer.metadata["spectral_seg"]
    assert meta["n_clusters"] == "auto" and meta["sensitivity"] == pytest.approx(0.85)


def bright_and_dim_disc():
    """Two blurred discs of radius 7 on an offset background, one at 40 % of the other's brightness."""
    import scipy.ndimage as ndi

    yy, xx = np.mgrid[:48, :80]
    bright = (yy - 24) ** 2 + (xx - 20) ** 2 < 49
    dim = (yy - 24) ** 2 + (xx - 58) ** 2 < 49
    signal = 1.0 * bright + 0.4 * dim
    noise = np.random.default_rng(0).standard_normal(signal.shape)
    return ndi.gaussian_filter(signal, 1.5) + 0.1 + 0.01 * noise, dim


def test_edge_level_gives_a_dim_object_its_own_outline(dock, qtbot):
    # Otsu's level, set between the bright disc and the background, sits high
    # on the dim disc's flank and cuts it about a third too small.
    image, dim = bright_and_dim_disc()
    viewer, widget = dock(image, name="discs")
    assert not widget.edge_level.enabled  # auto is off
    widget.mask.value = None  # Otsu
    widget.auto_segments.value = True
    assert widget.edge_level.enabled and widget.edge_level.value == pytest.approx(0.4)
    ious = {}
    for level in (0.0, 0.4):
        widget.edge_level.value = level
        run(widget, qtbot)
        layer = viewer.layers["discs spectral"]
        assert layer.data.max() == 2
        dim_label = layer.data == layer.data[24, 58]
        ious[level] = (dim_label & dim).sum() / (dim_label | dim).sum()
        area = dim_label.sum()
        meta = layer.metadata["spectral_seg"]
        if level:
            assert meta["edge_level"] == pytest.approx(0.4)
            assert abs(area - np.pi * 49) < 15
        else:
            assert meta["edge_level"] is None  # 0: the threshold's edges were kept
            assert area < 0.75 * np.pi * 49
    assert ious[0.0] < 0.75 and ious[0.4] > 0.9
    # With a mask layer there is no threshold, so the field is off and not passed.
    viewer.add_labels((image > 0.2).astype(np.int32), name="cells mask")
    widget.mask.value = viewer.layers["cells mask"]
    assert not widget.edge_level.enabled
    assert widget.current_parameters().used_edge_level() is None


def test_sigma_smooths_before_segmenting(dock, qtbot):
    image, _, _ = four_circles(seed=0)
    viewer, widget = dock(image, name="circles")
    widget.auto_sigma.value = False
    widget.sigma.value = 1.5
    run(widget, qtbot)
    layer = viewer.layers["circles spectral"]
    assert layer.metadata["spectral_seg"]["sigma"] == 1.5
    expected = segment(image, n_clusters=4, sigma=1.5)
    np.testing.assert_array_equal(layer.data, expected)
    # Smoothing removes the noise specks that Otsu alone lets through.
    assert layer.data.max() == 4


def time_series():
    frames = [four_circles(size=60, seed=s)[0] for s in range(3)]
    return np.stack(frames)


def test_current_frame_fills_only_that_frame(dock, qtbot):
    stack = time_series()
    viewer, widget = dock(stack, name="movie")
    widget.dims.value = "2D"
    assert widget.frames.enabled
    viewer.dims.set_current_step(0, 1)
    widget.frames.value = "current frame"
    run(widget, qtbot)
    layer = viewer.layers["movie spectral"]
    assert layer.data.shape == stack.shape  # the image's full shape
    assert np.all(layer.data[0] == 0) and np.all(layer.data[2] == 0)
    expected = segment(stack[1], threshold="otsu", n_clusters=4, min_size=20, random_state=0)
    np.testing.assert_array_equal(layer.data[1], expected)
    assert layer.metadata["spectral_seg"]["frames"] == (1,)
    # The next frame lands in the same layer, keeping frame 1.
    viewer.dims.set_current_step(0, 2)
    run(widget, qtbot)
    assert len([lay for lay in viewer.layers if lay.name.startswith("movie spectral")]) == 1
    np.testing.assert_array_equal(layer.data[1], expected)
    assert layer.data[2].max() == 4


def test_all_frames_segments_every_frame(dock, qtbot):
    stack = time_series()
    viewer, widget = dock(stack, name="movie", scale=(5.0, 0.5, 0.5))
    widget.dims.value = "2D"
    widget.frames.value = "all frames"
    steps = []
    widget.run.native.click()
    qtbot.waitUntil(lambda: steps.append(widget.status.value) or not widget.running, timeout=120_000)
    layer = viewer.layers["movie spectral"]
    np.testing.assert_allclose(layer.scale, (5.0, 0.5, 0.5))
    for t in range(3):
        expected = segment(stack[t], threshold="otsu", n_clusters=4, min_size=20, random_state=0, spacing=(0.5, 0.5))
        np.testing.assert_array_equal(layer.data[t], expected)
    assert layer.metadata["spectral_seg"]["frames"] == "all"


def test_all_frames_can_be_cancelled_between_frames(dock, qtbot):
    # Frames enough that the run is still going when the status first names one (shown at most every 0.5 s).
    stack = np.stack([four_circles(size=300, seed=s)[0] for s in range(10)])
    viewer, widget = dock(stack, name="movie")
    widget.dims.value = "2D"
    widget.frames.value = "all frames"
    widget.eigen_solver.value = "arpack"
    widget.run.native.click()
    qtbot.waitUntil(lambda: "frame" in widget.status.value, timeout=60_000)
    widget.cancel.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert "movie spectral" not in viewer.layers and widget.status.value == "cancelled"


def test_volume_as_3d_or_as_2d_frames(dock, qtbot):
    volume, mask, truth = four_circles(size=30, ndim=3, seed=0)
    viewer, widget = dock(volume, name="vol")
    assert widget.dims.value == "3D" and not widget.frames.enabled
    viewer.add_labels(mask.astype(np.uint8), name="vol mask")
    widget.mask.value = viewer.layers["vol mask"]
    run(widget, qtbot)
    assert ari_against_truth(viewer.layers["vol spectral"].data, truth) > 0.95
    # The same stack as 2D planes: each plane segmented on its own.
    widget.dims.value = "2D"
    assert widget.frames.enabled
    widget.frames.value = "all frames"
    run(widget, qtbot)
    planes = viewer.layers["vol spectral"].data
    np.testing.assert_array_equal(planes[15], segment(volume[15], mask[15], n_clusters=4, min_size=20, random_state=0))


def test_rgb_layer_uses_colour_differences(dock, qtbot):
    # Two halves of equal brightness but different colour: only the colour
    # vectors separate them.
    rgb = np.zeros((40, 60, 3))
    rgb[:, :30] = (1.0, 0.0, 0.5)
    rgb[:, 30:] = (0.0, 1.0, 0.5)
    rgb += 0.05 * np.random.default_rng(0).standard_normal(rgb.shape)
    viewer, widget = dock(np.clip(rgb, 0, 1), name="colour", rgb=True, scale=(2.0, 2.0))
    widget.auto_threshold.value = False
    widget.threshold.value = -1.0  # the whole image
    widget.n_clusters.value = 2
    widget.beta.value = 5.0
    run(widget, qtbot)
    layer = viewer.layers["colour spectral"]
    assert layer.data.shape == (40, 60)
    np.testing.assert_allclose(layer.scale, (2.0, 2.0))
    assert len(np.unique(layer.data[:, :28])) == 1 and len(np.unique(layer.data[:, 32:])) == 1
    assert layer.data[0, 0] != layer.data[0, -1]
    assert layer.metadata["spectral_seg"]["channel_axis"] == -1


def test_auto_with_a_labels_mask_of_touching_regions(dock, qtbot):
    # A Labels layer whose regions touch, with Auto on: each region is cut
    # into its own objects and no object crosses a region border (this
    # path raised IndexError before pixel_edges left out cross-region edges).
    from napari_spectral_seg.data import touching_blobs

    image, truth = touching_blobs((128, 128), 14, seed=1)
    regions = np.zeros_like(truth)
    regions[:, :64], regions[:, 64:] = 1, 2
    regions[truth == 0] = 0
    viewer, widget = dock(image, name="blobs")
    viewer.add_labels(regions, name="halves")
    widget.mask.value = viewer.layers["halves"]
    widget.auto_segments.value = True
    run(widget, qtbot)
    labels = viewer.layers["blobs spectral"].data
    assert labels.max() >= 10
    for lab in range(1, labels.max() + 1):
        assert len(np.unique(regions[labels == lab])) == 1
    np.testing.assert_array_equal(labels, segment(image, regions, **widget.current_parameters().as_kwargs()))
    np.testing.assert_array_equal(viewer.layers["halves"].data, regions)  # the user's layer is untouched
