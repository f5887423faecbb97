"""The time left the widget adds to the engine's progress (_widget/clock.py): no Qt, a fake clock."""

from __future__ import annotations

from napari_spectral_seg._widget.clock import HEARTBEAT, ProgressClock
from napari_spectral_seg.core.progress import Progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_silent_step_counts_the_estimate_down_and_then_leaves_it_out():
    clock = FakeClock()
    progress = ProgressClock(clock=clock)
    progress.taken(clock.now)
    clock.now += 2.0
    shown = progress.update(Progress("mask", 0.2, "polarity and background"))
    assert shown.message == "polarity and background (2 s so far, about 8 s left)"
    clock.now += 0.5
    assert progress.heartbeat() is HEARTBEAT  # not due yet
    clock.now += 3.5  # 6 s in, nothing new from the engine
    assert progress.heartbeat().message == "polarity and background (6 s so far, about 4 s left)"
    clock.now += 20.0  # past the estimate: the stale fraction no longer says how long is left
    assert progress.heartbeat().message == "polarity and background (26 s so far)"
    clock.now += 2.0
    shown = progress.update(Progress("graph", 0.5, "shape and intensity cues"))
    assert shown.message == "shape and intensity cues (28 s so far, about 28 s left)"


def test_no_estimate_before_a_fraction_says_anything():
    clock = FakeClock()
    progress = ProgressClock(Progress("mask", 0.0, "waiting for the engine to start"), clock=clock)
    clock.now += 3.0
    assert progress.heartbeat().message == "waiting for the engine to start (3 s)"
    progress.taken(clock.now)
    clock.now += 1.5
    assert progress.update(Progress("mask", 0.01, "checking the image")).message == "checking the image (2 s so far)"
