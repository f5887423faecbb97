"""Failures reach the user, on a real viewer: the engine killed mid-run, warnings of the pipeline."""

import os
import signal

import numpy as np
from conftest import run_and_wait, wait_engine_working
from napari.utils.notifications import notification_manager

from napari_spectral_seg.data import four_circles


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
    # The engine has the job (the status line shows a step only every half second, so its text may skip one).
    wait_engine_working(widget, qtbot)
    os.kill(widget._engine.pid, signal.SIGKILL)  # as the out-of-memory killer would
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    assert any("stopped unexpectedly" in m for m in messages())
    assert widget.run.enabled and not widget.cancel.enabled and "big spectral" not in viewer.layers
    run(widget, qtbot)  # a new engine serves the next run
    assert viewer.layers["big spectral"].data.max() == 4


def test_pipeline_warnings_reach_the_user(dock, qtbot):
    viewer, widget = dock(np.ones((30, 30)), name="flat")
    widget.auto_threshold.value = False
    widget.threshold.value = 0.0
    widget.n_clusters.value = 2
    run(widget, qtbot)
    assert any("image is constant inside the mask" in m for m in messages())


def test_a_notification_headline_keeps_the_fix_and_reads_past_e_g():
    # issue 17 rerun: "e.g." was taken as the end of a sentence (the NaN notification stopped at
    # "replace them first, e.g."), and a long first clause dropped the fix ("use at most 2500").
    from napari_spectral_seg._widget.messages import HEADLINE_LENGTH, headline

    nan = "image has 101 NaN or infinite pixel(s); replace them first, e.g. with np.nan_to_num(image)."
    assert headline(nan) == nan
    many = (
        "'segments' 3000 asks for segments of 3.3 pixel(s) each on average in a mask of 10000 pixels of the "
        "image; use at most 2500 (one per 4 pixels), or enlarge the mask."
    )
    short = headline(many)
    assert len(short) <= HEADLINE_LENGTH and short.endswith(
        "; use at most 2500 (one per 4 pixels), or enlarge the mask"
    )
    assert short.startswith("'segments' 3000 asks for segments of") and "…" in short
