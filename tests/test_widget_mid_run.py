"""A run under way, on a real viewer: its image removed or switched, a second Run click, the viewer closed."""

import numpy as np
import pytest
from napari.utils.notifications import notification_manager

from napari_spectral_seg.data import four_circles

PLUGIN = "napari-spectral-seg"


@pytest.fixture
def slow_setup(make_napari_viewer):
    """A viewer with a 300 x 300 image whose exact (arpack) run takes seconds."""
    viewer = make_napari_viewer()
    image, mask, _ = four_circles(size=300, seed=0)
    viewer.add_image(image, name="big", scale=(2.0, 2.0))
    viewer.add_labels(mask.astype(np.uint8), name="big mask")
    viewer.add_image(four_circles(size=300, seed=1)[0], name="other", scale=(0.5, 0.5))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    widget.image.value = viewer.layers["big"]
    widget.mask.value = viewer.layers["big mask"]
    widget.eigen_solver.value = "arpack"
    return viewer, widget


def wait_done(widget, qtbot):
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)


def test_image_removed_mid_run_discards_the_result(slow_setup, qtbot):
    viewer, widget = slow_setup
    widget.run.native.click()
    viewer.layers.remove("big")
    wait_done(widget, qtbot)
    assert "big spectral" not in viewer.layers
    assert any("was removed while it was being segmented" in str(n.message) for n in notification_manager.records)
    assert widget.run.enabled


def test_image_switched_mid_run_lands_on_the_computed_image(slow_setup, qtbot):
    viewer, widget = slow_setup
    widget.run.native.click()
    widget.image.value = viewer.layers["other"]
    viewer.layers.selection.active = viewer.layers["other"]
    wait_done(widget, qtbot)
    assert "other spectral" not in viewer.layers
    result = viewer.layers["big spectral"]
    np.testing.assert_allclose(result.scale, (2.0, 2.0))
    assert result.metadata["spectral_seg"]["image"] == "big"


def test_two_run_clicks_start_one_run(slow_setup, qtbot):
    viewer, widget = slow_setup
    widget.run.native.click()
    worker = widget._worker
    widget.start()  # a second click that got through (the button is disabled)
    assert widget._worker is worker
    wait_done(widget, qtbot)
    assert [layer.name for layer in viewer.layers].count("big spectral") == 1


def test_viewer_closed_mid_run_stops_the_engine(slow_setup, qtbot):
    viewer, widget = slow_setup
    widget.run.native.click()
    qtbot.wait(200)
    engine = widget._engine
    viewer.close()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    assert not engine.running
