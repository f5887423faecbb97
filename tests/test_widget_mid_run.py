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


def test_cancel_says_so_in_the_status_line_without_a_notification(slow_setup, qtbot):
    """A notification's slide-in costs a window repaint per frame; the status line is where the user looked."""
    viewer, widget = slow_setup
    before = len(notification_manager.records)
    widget.run.native.click()
    qtbot.waitUntil(lambda: widget._engine.started_job_at is not None, timeout=60_000)
    widget.cancel.native.click()
    wait_done(widget, qtbot)
    assert widget.status.value == "cancelled"
    assert "big spectral" not in viewer.layers
    assert not [n for n in notification_manager.records[before:] if "cancel" in str(n.message)]


def test_removing_the_image_only_flags_the_cancel_inside_napari_event(slow_setup, qtbot):
    """The notification and the status wait for napari to finish removing the layer (its canvas included)."""
    viewer, widget = slow_setup
    widget.run.native.click()
    before = len(notification_manager.records)
    viewer.layers.remove("big")
    assert widget._cancel.is_set()
    assert len(notification_manager.records) == before  # nothing shown from inside the removal
    qtbot.waitUntil(lambda: len(notification_manager.records) > before, timeout=10_000)
    assert "was removed while it was being segmented" in str(notification_manager.records[-1].message)
    wait_done(widget, qtbot)
    assert widget.status.value == "cancelled"
