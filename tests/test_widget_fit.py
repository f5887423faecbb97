"""Small napari-fit items on a real, shown viewer: the view re-fits when the dock opens (a fitted view
only), a long status line does not widen the dock, a click on a Points layer in split/merge mode says
what to do."""

import numpy as np

PLUGIN = "napari-spectral-seg"


def _shown_viewer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1000, 700)
    qtbot.wait(50)
    viewer.open_sample(PLUGIN, "four_circles")
    qtbot.wait(50)
    return viewer


def _fitted_zoom(viewer):
    camera = viewer.camera
    before = (tuple(camera.center), camera.zoom)
    viewer.reset_view()
    zoom = camera.zoom
    camera.center, camera.zoom = before
    return zoom


def test_the_view_refits_when_the_dock_opens(make_napari_viewer, qtbot):
    viewer = _shown_viewer(make_napari_viewer, qtbot)
    viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    qtbot.waitUntil(lambda: np.isclose(viewer.camera.zoom, _fitted_zoom(viewer), rtol=1e-3), timeout=5_000)


def test_a_zoomed_view_is_left_as_it_is(make_napari_viewer, qtbot):
    viewer = _shown_viewer(make_napari_viewer, qtbot)
    viewer.camera.zoom *= 3  # the user zoomed in
    zoom = viewer.camera.zoom
    viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    qtbot.wait(300)
    assert viewer.camera.zoom == zoom


def test_a_long_status_line_wraps_instead_of_widening_the_dock(make_napari_viewer, qtbot):
    viewer = _shown_viewer(make_napari_viewer, qtbot)
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    qtbot.wait(100)
    width = dock.width()
    widget.status.value = "a very long message about what went wrong and how to fix it " * 8
    qtbot.wait(100)
    assert dock.width() == width
    assert widget.status.native.wordWrap()


def test_a_click_on_points_in_split_mode_says_what_to_do(make_napari_viewer, qtbot):
    from conftest import run_and_wait
    from napari.utils.notifications import notification_manager
    from qtpy.QtCore import QPoint, Qt

    viewer = _shown_viewer(make_napari_viewer, qtbot)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    run_and_wait(widget, qtbot)
    points = viewer.add_points(name="seeds")
    points.mode = "add"
    widget.click_mode.value = "split"
    viewer.layers.selection.active = points
    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(canvas.width() // 2, canvas.height() // 2))
    qtbot.wait(50)
    messages = [str(n.message) for n in notification_manager.records]
    assert any("'seeds' (points) is selected" in m and "'four circles spectral'" in m for m in messages)
    widget.click_mode.value = "off"
    count = len(notification_manager.records)
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(canvas.width() // 3, canvas.height() // 3))
    assert len(notification_manager.records) == count  # no notice while clicks do not edit
