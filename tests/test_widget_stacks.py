"""Stacks on a real viewer: split and merge stay in the clicked frame, seed points of other frames
are ignored, each frame keeps its parameters."""

import numpy as np
import pytest
from conftest import run_and_wait
from napari.utils.notifications import notification_manager

from napari_spectral_seg.data import four_circles


def messages():
    return [str(n.message) for n in notification_manager.records]


def run(widget, qtbot):
    run_and_wait(widget, qtbot)


def stack_result(dock, qtbot):
    stack = np.stack([four_circles(size=60, seed=s)[0] for s in range(3)])
    viewer, widget = dock(stack, name="movie")
    widget.dims.value = "2D"
    widget.frames.value = "all frames"
    run(widget, qtbot)
    return viewer, widget, viewer.layers["movie spectral"]


def test_split_and_merge_on_a_stack_stay_in_the_clicked_frame(dock, qtbot):
    viewer, widget, layer = stack_result(dock, qtbot)
    before = layer.data.copy()
    widget.click_mode.value = "split"
    point = (0, 17, 14)  # inside circle 1 of frame 0
    widget.split_at(point)
    widget.wait()  # the split is computed by the engine
    assert layer.data[0].max() == before[0].max() + 1
    np.testing.assert_array_equal(layer.data[1:], before[1:])
    widget.click_mode.value = "merge"
    widget.merge_at((0, 17, 14))
    widget.merge_at((0, 40, 35))
    widget.wait()
    np.testing.assert_array_equal(layer.data[1:], before[1:])
    with pytest.raises(ValueError, match="different frames"):
        widget.merge_at((0, 17, 14))
        widget.merge_at((1, 40, 35))


def test_split_after_renaming_the_image_is_a_clear_message(dock, qtbot):
    viewer, widget, layer = stack_result(dock, qtbot)
    viewer.layers["movie"].name = "renamed"
    widget.click_mode.value = "split"
    with pytest.raises(ValueError, match="no longer in the viewer"):
        widget.split_at((0, 17, 14), layer)


def test_seed_points_of_other_frames_are_ignored(dock, qtbot):
    stack = np.stack([four_circles(size=60, seed=s)[0] for s in range(3)])
    viewer, widget = dock(stack, name="movie")
    widget.dims.value = "2D"
    widget.frames.value = "current frame"
    viewer.add_points(np.array([[0, 17, 14], [0, 40, 35], [1, 17, 14]]), name="clicks")
    widget.seeds.value = viewer.layers["clicks"]
    viewer.dims.set_current_step(0, 0)
    run(widget, qtbot)
    frame0 = viewer.layers["movie spectral"].data[0]
    assert frame0.max() == 2 and frame0[17, 14] == 1 and frame0[40, 35] == 2
    assert any("1 on other frames are ignored" in m for m in messages())
    viewer.dims.set_current_step(0, 2)
    widget.run.native.click()
    assert not widget.running and any("None of the seed points" in m for m in messages())


def test_each_frame_keeps_the_parameters_it_was_made_with(dock, qtbot):
    stack = np.stack([four_circles(size=60, seed=s)[0] for s in range(2)])
    viewer, widget = dock(stack, name="movie")
    widget.dims.value = "2D"
    viewer.dims.set_current_step(0, 0)
    run(widget, qtbot)
    viewer.dims.set_current_step(0, 1)
    widget.n_clusters.value = 2
    widget.beta.value = 5.0
    run(widget, qtbot)
    meta = viewer.layers["movie spectral"].metadata["spectral_seg"]
    assert meta["per_frame"]["(0,)"]["n_clusters"] == 4 and meta["per_frame"]["(0,)"]["beta"] == 1.0
    assert meta["per_frame"]["(1,)"]["n_clusters"] == 2 and meta["per_frame"]["(1,)"]["beta"] == 5.0
