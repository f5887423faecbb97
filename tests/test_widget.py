"""The dock widget on a real napari viewer (Xvfb): dock, set fields, click Run, check the layer."""

import numpy as np
import pytest
from conftest import ari_against_truth, dock_big_circles
from napari.layers import Labels
from napari.utils.notifications import notification_manager

from napari_spectral_seg.data import four_circles

PLUGIN = "napari-spectral-seg"
RESULT = "four circles spectral"


def click_run_and_wait(widget, qtbot, timeout=60_000):
    widget.run.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def messages():
    return [str(n.message) for n in notification_manager.records]


def test_widget_segments_the_sample_into_four_circles(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    image_layer = viewer.layers["four circles"]
    image_layer.scale = (2.0, 2.0)
    image_layer.translate = (10.0, -3.0)
    widget.image.value = image_layer
    widget.mask.value = viewer.layers["four circles mask"]
    widget.n_clusters.value = 4
    widget.seed.value = 3

    widget.run.native.click()
    assert widget.running and not widget.run.enabled and widget.cancel.enabled
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert widget.run.enabled and not widget.cancel.enabled

    layer = viewer.layers[RESULT]
    assert isinstance(layer, Labels)
    _, _, truth = four_circles(seed=0)
    assert ari_against_truth(layer.data, truth) >= 0.97
    np.testing.assert_allclose(layer.scale, (2.0, 2.0))
    np.testing.assert_allclose(layer.translate, (10.0, -3.0))
    meta = layer.metadata["spectral_seg"]
    assert meta["n_clusters"] == 4 and meta["random_state"] == 3 and meta["beta"] == 1.0
    assert meta["image"] == "four circles" and meta["mask"] == "four circles mask"
    assert meta["seconds"] > 0 and meta["n_segments"] == 4
    assert "4 segments" in widget.status.value


def test_running_again_updates_the_same_layer(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    widget.mask.value = viewer.layers["four circles mask"]
    click_run_and_wait(widget, qtbot)
    n_layers = len(viewer.layers)
    widget.n_clusters.value = 2
    click_run_and_wait(widget, qtbot)
    assert len(viewer.layers) == n_layers
    layer = viewer.layers[RESULT]
    assert layer.data.max() == 2 and layer.metadata["spectral_seg"]["n_clusters"] == 2


def test_otsu_without_mask_fills_in_the_threshold(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    widget.mask.value = None
    assert widget.auto_threshold.enabled and not widget.threshold.enabled
    click_run_and_wait(widget, qtbot)
    meta = viewer.layers[RESULT].metadata["spectral_seg"]
    assert meta["threshold"] == "auto"
    assert 1.3 < meta["threshold_used"] < 1.7
    assert widget.threshold.value == pytest.approx(meta["threshold_used"], abs=0.01)


def test_user_layers_are_not_modified(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    image_before = viewer.layers["four circles"].data.copy()
    mask_before = viewer.layers["four circles mask"].data.copy()
    widget.mask.value = viewer.layers["four circles mask"]
    click_run_and_wait(widget, qtbot)
    np.testing.assert_array_equal(viewer.layers["four circles"].data, image_before)
    np.testing.assert_array_equal(viewer.layers["four circles mask"].data, mask_before)


def test_empty_mask_gives_a_notification_and_no_layer(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    viewer.add_labels(np.zeros((100, 100), np.uint8), name="empty")
    widget.mask.value = viewer.layers["empty"]
    click_run_and_wait(widget, qtbot)
    assert RESULT not in viewer.layers
    assert any("mask is empty" in m for m in messages())
    assert widget.run.enabled and widget.status.value.startswith("failed: mask is empty")


def test_mask_of_another_shape_is_refused_before_running(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    viewer.add_labels(np.ones((50, 60), np.uint8), name="small mask")
    widget.mask.value = viewer.layers["small mask"]
    widget.run.native.click()
    assert not widget.running
    assert any("has shape" in m for m in messages())  # the first sentence; the fix in the status tooltip
    assert "pick a mask drawn on this image" in widget.status.tooltip
    assert RESULT not in viewer.layers


def test_too_many_clusters_gives_a_notification(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    viewer.add_labels(np.pad(np.ones((2, 2), np.uint8), 49), name="tiny")
    widget.mask.value = viewer.layers["tiny"]
    widget.min_size.value = 0
    widget.n_clusters.value = 10
    click_run_and_wait(widget, qtbot)
    assert any("'segments' 10 is larger than the 4 pixel(s)" in m for m in messages())  # the field's label
    assert "tiny spectral" not in [layer.name for layer in viewer.layers]


def test_no_image_layer_gives_a_notification(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    widget.run.native.click()
    assert not widget.running
    assert any("No image layer" in m for m in messages())


def test_cancel_leaves_no_layer_and_a_new_run_works(make_napari_viewer, qtbot):
    viewer, widget = dock_big_circles(make_napari_viewer, size=300)
    widget.eigen_solver.value = "arpack"
    widget.run.native.click()
    widget.cancel.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert "big spectral" not in viewer.layers
    assert widget.status.value == "cancelled"
    assert widget.run.enabled and not widget.cancel.enabled
    click_run_and_wait(widget, qtbot)
    assert viewer.layers["big spectral"].data.max() == 4


def test_active_image_is_selected_by_default(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    viewer.add_image(np.zeros((10, 10)), name="a")
    viewer.add_image(np.ones((10, 10)), name="b")
    assert widget.image.value is viewer.layers["b"]
    viewer.layers.selection.active = viewer.layers["a"]
    assert widget.image.value is viewer.layers["a"]


def test_save_parameters_writes_what_segment_takes(viewer_and_widget, tmp_path, qtbot):
    import json

    from napari_spectral_seg import segment

    viewer, widget = viewer_and_widget
    widget.mask.value = None
    widget.n_clusters.value = 3
    widget.beta.value = 2.5
    widget.seed.value = 11
    path = tmp_path / "params.json"
    widget.save_parameters(path)
    saved = json.loads(path.read_text())["spectral_seg"]
    assert saved["threshold"] == "auto" and saved["n_clusters"] == 3
    assert saved["beta"] == 2.5 and saved["random_state"] == 11
    assert saved["spacing"] == [1.0, 1.0] and saved["channel_axis"] is None
    # What the widget computes is what batch replays from the file.
    from napari_spectral_seg.batch import load_parameters

    widget.run.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    image = viewer.layers["four circles"].data
    np.testing.assert_array_equal(segment(image, **load_parameters(path)), viewer.layers[RESULT].data)


def test_shapes_layer_mask_segments_the_drawn_region(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    # A rectangle around the top-left circle only (centre (28, 24), radius 16).
    viewer.add_shapes([np.array([[8, 4], [8, 44], [48, 44], [48, 4]])], shape_type="rectangle", name="roi")
    widget.mask.value = viewer.layers["roi"]
    assert widget.auto_threshold.enabled  # a region of interest keeps the threshold
    widget.n_clusters.value = 2
    click_run_and_wait(widget, qtbot)
    labels = viewer.layers[RESULT].data
    assert np.all(labels[:7] == 0) and np.all(labels[50:] == 0) and np.all(labels[:, 46:] == 0)
    # Inside the rectangle only the circle is segmented (Otsu's threshold of the region), not its background.
    meta = viewer.layers[RESULT].metadata["spectral_seg"]
    assert meta["threshold"] == "otsu" and meta["threshold_used"] is not None
    assert labels[10, 6] == 0 and labels[28, 24] > 0
    assert labels.max() == 2 and 0.5 < np.count_nonzero(labels) / (np.pi * 16**2) < 1.3


def test_labels_mask_keeps_its_regions_apart(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    _, _, truth = four_circles(seed=0)
    viewer.add_labels(truth, name="truth")  # four touching regions
    widget.mask.value = viewer.layers["truth"]
    widget.n_clusters.value = 4
    click_run_and_wait(widget, qtbot)
    labels = viewer.layers[RESULT].data
    for value in range(1, 5):
        assert len(np.unique(labels[truth == value])) == 1
    assert ari_against_truth(labels, truth) == 1.0


def test_anisotropic_volume_uses_the_layer_scale_as_voxel_size(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image, mask, _ = four_circles(size=30, ndim=3, seed=0)
    viewer.add_image(image[::3], name="stack", scale=(3.0, 1.0, 1.0))  # z step 3x the xy pixel
    viewer.add_labels(mask[::3].astype(np.uint8), name="stack mask", scale=(3.0, 1.0, 1.0))
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    widget.image.value = viewer.layers["stack"]
    widget.mask.value = viewer.layers["stack mask"]
    click_run_and_wait(widget, qtbot)
    layer = viewer.layers["stack spectral"]
    assert layer.metadata["spectral_seg"]["spacing"] == [3.0, 1.0, 1.0]
    np.testing.assert_allclose(layer.scale, (3.0, 1.0, 1.0))
    assert layer.data.shape == image[::3].shape and layer.data.max() == 4
