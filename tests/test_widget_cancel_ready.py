"""Cancel answers at once whatever the engine is doing, and the engine is ready for the next Run;
a run's progress is shown at most every half second (issue 14 items 2 and 4), on a real viewer."""

import os
import signal
import time

import numpy as np
import pytest
from conftest import dock_big_circles, wait_engine_working

from napari_spectral_seg._widget.engine import CANCEL_GRACE
from napari_spectral_seg._widget.run_status import INTERVAL
from napari_spectral_seg.data import four_circles


@pytest.fixture
def slow(make_napari_viewer):
    viewer, widget = dock_big_circles(make_napari_viewer)
    widget.eigen_solver.value = "arpack"
    return viewer, widget


def _cancel_and_time(widget, qtbot) -> float:
    started = time.perf_counter()
    widget.cancel.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    return time.perf_counter() - started


def test_cancel_while_the_engine_starts_answers_at_once_and_it_goes_on_starting(slow, qtbot):
    viewer, widget = slow
    engine = widget._engine
    pid = engine.pid
    os.kill(pid, signal.SIGSTOP)  # held in its start-up, however fast the machine
    try:
        widget.run.native.click()
        qtbot.waitUntil(lambda: widget.status.value.startswith("queued"), timeout=30_000)
        assert _cancel_and_time(widget, qtbot) < 2.0  # before: the wait for the whole start-up
        assert widget.status.value == "cancelled" and widget.run.enabled
        assert "big spectral" not in viewer.layers
    finally:
        os.kill(pid, signal.SIGCONT)
    # The same engine finished starting in the background: the next Run uses it.
    qtbot.waitUntil(lambda: not widget.running, timeout=5_000)
    widget.eigen_solver.value = "auto"
    widget.run.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert viewer.layers["big spectral"].data.max() == 4 and engine.pid == pid


def _run_until_working(widget, qtbot) -> int:
    """Click Run, wait until the engine works on the job; the engine's process id."""
    widget.run.native.click()
    wait_engine_working(widget, qtbot)
    return widget._engine.pid


def test_after_cancel_the_next_run_is_taken_by_the_same_engine_at_once(slow, qtbot):
    viewer, widget = slow
    engine = widget._engine
    pid = _run_until_working(widget, qtbot)
    assert _cancel_and_time(widget, qtbot) < 2.0
    started = time.perf_counter()
    widget.eigen_solver.value = "auto"
    widget.run.native.click()
    wait_engine_working(widget, qtbot)
    # No new start-up (1-21 s under load): the warm process dropped its job and took the new one.
    assert engine.pid == pid and time.perf_counter() - started < 5.0
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert viewer.layers["big spectral"].data.max() == 4


def test_cancel_of_a_frozen_engine_answers_at_once_and_the_next_run_gets_a_fresh_one(slow, qtbot):
    viewer, widget = slow
    engine = widget._engine
    frozen = _run_until_working(widget, qtbot)
    os.kill(frozen, signal.SIGSTOP)
    assert _cancel_and_time(widget, qtbot) < 2.0  # before: the 5 s grace on the GUI's side
    assert widget.status.value == "cancelled"
    # Run at once: queued while the frozen one is given its grace, then replaced.
    widget.eigen_solver.value = "auto"
    widget.run.native.click()
    assert widget.status.value.startswith("queued")
    qtbot.waitUntil(lambda: not widget.running, timeout=60 * 1000 + int(CANCEL_GRACE * 1000))
    assert viewer.layers["big spectral"].data.max() == 4
    assert engine.pid not in (None, frozen)


def test_progress_is_shown_at_most_every_half_second_and_the_last_state_stays(make_napari_viewer, qtbot):
    from napari_spectral_seg.data import touching_blobs

    viewer = make_napari_viewer()
    image, _ = touching_blobs((512, 512), n_objects=80, seed=0)
    viewer.add_image(image, name="blobs")
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    widget.auto_segments.value = True
    changes = []

    def note_change():  # polled every few ms: when the status line's text changed
        if not changes or changes[-1][1] != widget.status.value:
            changes.append((time.perf_counter(), widget.status.value))

    pushed = []
    widget.run.native.click()
    widget._worker.yielded.connect(lambda update: pushed.append(update))
    qtbot.waitUntil(lambda: note_change() or not widget.running, timeout=120_000)
    note_change()
    # Every change from the Run's "running..." to the last progress; the result's line may follow at once.
    during = [t for t, text in changes if not text.split(" ", 1)[0].isdigit()]
    gaps = np.diff(during)
    # One repaint per half second at most (a little slack for the timer), far fewer than the updates.
    assert len(during) >= 3 and gaps.min() >= INTERVAL * 0.9
    assert len(during) < len([u for u in pushed if not isinstance(u, str)])
    assert "segments in" in widget.status.value and widget.status.value[0].isdigit()
    assert widget["progress"].native.isHidden()


def test_the_last_progress_update_is_shown_when_the_run_goes_quiet(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image, mask, _ = four_circles(size=400, seed=0)
    viewer.add_image(image, name="big")
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    throttle = widget._progress
    from napari_spectral_seg.core.pipeline import Progress

    throttle.start("test")
    throttle.push(Progress("graph", 0.1, "first"))
    throttle.push(Progress("graph", 0.2, "second"))
    throttle.push(Progress("eigenvectors", 0.3, "third (5 s so far, about 12 s left)"))
    assert not widget.status.value.startswith(("graph", "eigenvectors"))  # they wait for the interval
    qtbot.waitUntil(lambda: widget.status.value.startswith("eigenvectors"), timeout=5_000)
    assert widget.status.value == "eigenvectors: third (5 s so far, about 12 s left)"  # the estimate is not lost
    assert widget["progress"].value.endswith(" 30%") and throttle.shown == 1
    throttle.finish()
