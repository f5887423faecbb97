"""Regressions found in review: engine death, stacks in split/merge and seeds, transforms, warnings."""

import os
import signal

import numpy as np
import pytest
from conftest import run_and_wait
from napari.utils.notifications import notification_manager

from napari_spectral_seg.data import four_circles

PLUGIN = "napari-spectral-seg"


def messages():
    return [str(n.message) for n in notification_manager.records]


def run(widget, qtbot):
    run_and_wait(widget, qtbot)


def test_engine_killed_mid_run_notifies_and_frees_the_buttons(dock, qtbot):
    image, mask, _ = four_circles(size=400, seed=0)
    viewer, widget = dock(image, name="big")
    viewer.add_labels(mask.astype(np.uint8), name="big mask")
    widget.mask.value = viewer.layers["big mask"]
    widget.eigen_solver.value = "arpack"
    widget.run.native.click()
    qtbot.waitUntil(lambda: widget._engine.pid is not None and "eigenvectors" in widget.status.value, timeout=60_000)
    os.kill(widget._engine.pid, signal.SIGKILL)  # as the out-of-memory killer would
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    assert any("stopped unexpectedly" in m for m in messages())
    assert widget.run.enabled and not widget.cancel.enabled and "big spectral" not in viewer.layers
    run(widget, qtbot)  # a new engine serves the next run
    assert viewer.layers["big spectral"].data.max() == 4


def test_result_copies_rotate_and_shear(dock, qtbot):
    image, _, _ = four_circles(seed=0)
    viewer, widget = dock(image, name="tilted", rotate=30, shear=[0.2], scale=(2, 3), translate=(5, 7))
    run(widget, qtbot)
    labels = viewer.layers["tilted spectral"]
    np.testing.assert_allclose(labels.data_to_world((30, 40)), viewer.layers["tilted"].data_to_world((30, 40)))


def test_result_keeps_units_and_a_rerun_updates_the_same_layer(dock, qtbot):
    image, _, _ = four_circles(seed=0)
    viewer, widget = dock(image, name="cells", scale=(0.5, 0.5), units=("um", "um"))
    run(widget, qtbot)
    first = viewer.layers["cells spectral"]
    assert [str(u) for u in first.units] == ["micrometer", "micrometer"]
    viewer.layers["cells"].scale = (0.25, 0.25)  # the user corrects the pixel size
    widget.seed.value = 1
    run(widget, qtbot)
    assert viewer.layers["cells spectral"] is first  # updated in place, no second layer
    np.testing.assert_allclose(first.scale, (0.25, 0.25))
    assert first.metadata["spectral_seg"]["random_state"] == 1


def test_pipeline_warnings_reach_the_user(dock, qtbot):
    viewer, widget = dock(np.ones((30, 30)), name="flat")
    widget.auto_threshold.value = False
    widget.threshold.value = 0.0
    widget.n_clusters.value = 2
    run(widget, qtbot)
    assert any("image is constant inside the mask" in m for m in messages())


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
    assert layer.data[0].max() == before[0].max() + 1
    np.testing.assert_array_equal(layer.data[1:], before[1:])
    widget.click_mode.value = "merge"
    widget.merge_at((0, 17, 14))
    widget.merge_at((0, 40, 35))
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


def test_status_shows_engine_start_up_apart_from_the_segmentation_time(dock, qtbot):
    from napari_spectral_seg._widget import _result_status

    assert _result_status(4, {"wall": 1.9, "engine_start": 1.85}) == ("4 segments in 0.05 s (+ 1.9 s engine start-up)")
    assert _result_status(4, {"wall": 0.3, "engine_start": 0.01}) == "4 segments in 0.29 s"
    image, mask, _ = four_circles(seed=0)
    viewer, widget = dock(image, name="first")
    run(widget, qtbot)  # right after docking: may include the engine's start
    meta = viewer.layers["first spectral"].metadata["spectral_seg"]
    seconds = meta["seconds"]
    assert widget.status.value.startswith("4 segments in ")
    # The metadata's time is the status line's: the start-up wait apart.
    shown = float(widget.status.value.split(" segments in ")[1].split(" s")[0])
    assert abs(shown - seconds) <= 0.011
    assert meta["engine_start_seconds"] >= 0
    run(widget, qtbot)  # the engine is up now: no start-up part
    assert "start-up" not in widget.status.value
    assert seconds > 0
