"""Undo on the result layer, on a real viewer: a re-run is one undo step (never a mix of two runs), the
run's parameters follow undo and redo, frames of a stack likewise, and an undo during a run is an edit."""

import numpy as np
import pytest
from conftest import dock_big_circles, run_and_wait, wait_engine_working
from qtpy.QtCore import Qt

from napari_spectral_seg._widget import undo  # noqa
from napari_spectral_seg.data import four_circles

PLUGIN = "napari-spectral-seg"


def _press_undo(viewer, qtbot, redo=False):
    """Ctrl+Z (Ctrl+Shift+Z: redo) on the canvas, as a user does, with the result layer selected."""
    canvas = viewer.window._qt_viewer.canvas.native
    modifiers = Qt.KeyboardModifier.ControlModifier
    if redo:
        modifiers |= Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(canvas, Qt.Key.Key_Z, modifiers)


def test_undo_after_a_rerun_brings_back_the_previous_result_with_the_edits(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    run_and_wait(widget, qtbot)
    result = viewer.layers["four circles spectral"]
    first = np.array(result.data)
    result.selected_label = 9
    result.brush_size = 7
    result.paint((50, 50), 9)  # the user's brush stroke: one undo step
    edited = np.array(result.data)
    assert (edited != first).sum() > 0
    widget.n_clusters.value = 2
    widget.seed.value = 3
    run_and_wait(widget, qtbot)
    second = np.array(result.data)
    assert viewer.layers["four circles spectral"] is result and second.max() == 2
    viewer.layers.selection.active = result
    _press_undo(viewer, qtbot)  # the re-run is undone as a whole
    np.testing.assert_array_equal(result.data, edited)
    assert result.metadata["spectral_seg"]["n_clusters"] == 4  # the parameters of what is shown
    result.undo()  # then the stroke
    np.testing.assert_array_equal(result.data, first)
    result.redo()
    _press_undo(viewer, qtbot, redo=True)
    np.testing.assert_array_equal(result.data, second)
    assert result.metadata["spectral_seg"]["n_clusters"] == 2


def test_a_rerun_of_one_frame_is_one_undo_step(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    frames = np.stack([four_circles(size=60, seed=s)[0] for s in range(3)])
    layer = viewer.add_image(frames, name="movie", axis_labels=("t", "y", "x"))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    widget.image.value = layer
    viewer.dims.set_point(0, 1)
    run_and_wait(widget, qtbot)
    result = viewer.layers["movie spectral"]
    first = np.array(result.data)
    assert first[1].max() == 4 and first[0].max() == 0
    widget.n_clusters.value = 2
    run_and_wait(widget, qtbot)
    assert result.data[1].max() == 2
    result.undo()
    np.testing.assert_array_equal(result.data, first)
    assert result.metadata["spectral_seg"]["n_clusters"] == 4
    assert result.metadata["spectral_seg"]["per_frame"]["(1,)"]["n_clusters"] == 4
    result.undo()  # the first run made the layer: nothing older to undo, and no mix
    np.testing.assert_array_equal(result.data, first)


@pytest.mark.parametrize("limit", ["MAX_STEP_PIXELS", "MAX_COMPARED_PIXELS"])
def test_a_run_too_large_for_one_step_clears_the_history(viewer_and_widget, qtbot, monkeypatch, limit):
    viewer, widget = viewer_and_widget
    run_and_wait(widget, qtbot)
    result = viewer.layers["four circles spectral"]
    result.paint((50, 50), 9)
    result.mode = "paint"
    monkeypatch.setattr(undo, limit, 10)
    widget.n_clusters.value = 2
    run_and_wait(widget, qtbot)
    second = np.array(result.data)
    result.undo()  # nothing to undo: never the old stroke over the new labels
    np.testing.assert_array_equal(result.data, second)
    assert result.metadata["spectral_seg"]["n_clusters"] == 2
    assert result.mode == "paint"  # the user's tool is kept


@pytest.fixture
def slow(make_napari_viewer):
    """A viewer with a 400 x 400 image whose exact (arpack) run takes seconds."""
    return dock_big_circles(make_napari_viewer)


def test_an_undo_during_a_run_is_an_edit_the_run_keeps(slow, qtbot):
    viewer, widget = slow
    run_and_wait(widget, qtbot)
    result = viewer.layers["big spectral"]
    result.paint((200, 200), 9)
    widget.eigen_solver.value = "arpack"
    widget.run.native.click()
    wait_engine_working(widget, qtbot)
    viewer.layers.selection.active = result
    _press_undo(viewer, qtbot)  # the user undoes the stroke while the run is under way
    undone = np.array(result.data)
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    np.testing.assert_array_equal(result.data, undone)  # the undo is kept, not overwritten
    assert any(layer.name.startswith("big spectral [") for layer in viewer.layers)
