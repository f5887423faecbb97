"""The GUI thread never waits: layers are read by the worker, click edits computed by the engine,
and Cancel leaves the engine ready (a real viewer, a real engine process)."""

import threading

import dask.array as da
import numpy as np
import pytest
from conftest import run_and_wait, wait_engine_working

from napari_spectral_seg.data import four_circles


def _recording_dask(image, chunks, threads):
    """``image`` as a dask array whose chunks note the thread that computes them."""

    def read(block):
        threads.add(threading.current_thread().name)
        return block

    return da.from_array(image, chunks=chunks).map_blocks(read, dtype=image.dtype)


def test_a_dask_layer_is_computed_off_the_gui_thread(dock, qtbot):
    image, mask, _ = four_circles(size=120, seed=0)
    threads = set()
    lazy = _recording_dask(image, (30, 120), threads)
    viewer, widget = dock(lazy, name="lazy", multiscale=False)
    threads.clear()  # napari itself computes the slice it shows, on the GUI thread
    widget.n_clusters.value = 4
    run_and_wait(widget, qtbot)
    assert threading.main_thread().name not in threads and threads  # read, but never on the GUI thread
    labels = viewer.layers["lazy spectral"].data
    assert labels.shape == image.shape and labels.max() == 4


def test_a_click_split_runs_in_the_engine_as_one_undo_step(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    run_and_wait(widget, qtbot)
    layer = viewer.layers["four circles spectral"]
    before = layer.data.copy()
    widget.click_mode.value = "split"
    widget.split_at((28, 24))
    # The click returns at once: the split is being computed elsewhere.
    assert widget._clicks.busy and widget.status.value.startswith("splitting label")
    np.testing.assert_array_equal(layer.data, before)
    with pytest.raises(ValueError, match="still being computed"):  # a second click is refused
        widget.split_at((40, 50))
    with pytest.raises(ValueError, match="still being computed"):
        widget.merge_at((40, 50))
    widget.run.native.click()  # and Run waits for the edit
    assert not widget.running
    widget.wait()
    assert layer.data.max() == before.max() + 1 and widget.status.value.startswith("split label")
    layer.undo()
    np.testing.assert_array_equal(layer.data, before)


def test_a_click_during_a_run_is_refused(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    run_and_wait(widget, qtbot)
    layer = viewer.layers["four circles spectral"]
    widget.click_mode.value = "split"
    widget.eigen_solver.value = "arpack"
    widget.run.native.click()
    with pytest.raises(ValueError, match="segmentation is running"):
        widget.split_at((28, 24), layer)
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)


def test_cancel_leaves_the_engine_ready(dock, qtbot):
    image, mask, _ = four_circles(size=500, seed=0)
    viewer, widget = dock(image, name="big")
    viewer.add_labels(mask.astype(np.uint8), name="mask")
    widget.mask.value = viewer.layers["mask"]
    widget.eigen_solver.value = "arpack"
    run_and_wait(widget, qtbot)  # the engine is up and warm
    pid = widget._engine.pid
    widget.run.native.click()
    wait_engine_working(widget, qtbot)
    widget.stop()
    qtbot.waitUntil(lambda: not widget.running, timeout=10_000)
    assert widget.status.value == "cancelled"
    assert widget._engine.pid == pid  # the same process: no new start-up before the next Run
    widget.eigen_solver.value = "auto"
    run_and_wait(widget, qtbot)
    assert viewer.layers["big spectral"].data.max() == 4
