"""No shared-memory block of the widget outlives its run, on a real viewer, whichever way the run ends.

Finished, cancelled, its image removed, the viewer closed, the engine killed:
after each, /dev/shm holds no ``spectralseg_<this pid>_*`` segment.
"""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import dock_big_circles

from napari_spectral_seg._widget.shared import (
    BLOCK_PREFIX,
    SharedBlock,
    our_blocks,
    pid_namespace,
    remove_stale_blocks,
)

PLUGIN = "napari-spectral-seg"

pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="POSIX shared memory shown in /dev/shm (Linux)")


def ours() -> list[str]:
    return our_blocks(os.getpid())


@pytest.fixture
def running(make_napari_viewer, qtbot):
    """A viewer whose run (a 300 x 300 image, exact solver: seconds) is under way in the engine."""
    viewer, widget = dock_big_circles(make_napari_viewer, size=300)
    widget.eigen_solver.value = "arpack"

    def start():
        widget.run.native.click()
        qtbot.waitUntil(lambda: widget._engine.started_job_at is not None or not widget.running, timeout=60_000)
        assert widget.running, "the run ended before the test could act on it"
        assert ours(), "the run made no named block"

    return viewer, widget, start


def wait_idle(widget, qtbot):
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)


def test_a_block_is_named_after_this_process():
    block = SharedBlock((3, 4), np.float32)
    try:
        assert block.shared.name.startswith(f"{BLOCK_PREFIX}_{os.getpid()}_")
        assert block.shared.name in ours()
    finally:
        block.close()
    assert ours() == []


def test_a_finished_run_leaves_no_block(running, qtbot):
    viewer, widget, start = running
    start()
    wait_idle(widget, qtbot)
    assert "big spectral" in viewer.layers
    assert ours() == []


def test_a_cancelled_run_leaves_no_block(running, qtbot):
    _, widget, start = running
    start()
    widget.cancel.native.click()
    wait_idle(widget, qtbot)
    assert widget.status.value == "cancelled"
    assert ours() == []


def test_removing_the_image_mid_run_leaves_no_block(running, qtbot):
    viewer, widget, start = running
    start()
    viewer.layers.remove("big")
    wait_idle(widget, qtbot)
    assert ours() == []


def test_closing_the_viewer_mid_run_leaves_no_block(running, qtbot):
    viewer, widget, start = running
    start()
    viewer.close()
    qtbot.waitUntil(lambda: not ours(), timeout=30_000)


def test_an_engine_killed_mid_run_leaves_no_block(running, qtbot):
    _, widget, start = running
    start()
    os.kill(widget._engine.pid, signal.SIGKILL)
    wait_idle(widget, qtbot)
    assert widget.status.value.startswith("failed: ")
    assert ours() == []


def test_blocks_of_a_process_that_no_longer_runs_are_removed():
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    stale = f"/dev/shm/{BLOCK_PREFIX}_{dead_pid}_{pid_namespace()}_0badf00d"
    # The same pid in another PID namespace (a container sharing /dev/shm): its process may well run.
    elsewhere = f"/dev/shm/{BLOCK_PREFIX}_{dead_pid}_{pid_namespace()}0_0badf00d"
    mine = SharedBlock((2, 2), np.uint8)
    for path in (stale, elsewhere):
        with open(path, "wb") as file:
            file.write(b"\0" * 16)
    try:
        removed = remove_stale_blocks()
        assert os.path.basename(stale) in removed
        assert not os.path.exists(stale)
        assert os.path.exists(elsewhere) and os.path.basename(elsewhere) not in removed
        assert mine.shared.name in ours()  # a live process's block is never touched
    finally:
        mine.close()
        for path in (stale, elsewhere):
            if os.path.exists(path):
                os.unlink(path)
