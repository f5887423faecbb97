"""The widget's engine host: the pipeline in a child process gives the same labels, errors come
back, terminate stops it; the worker's relay times the run."""

import time

import numpy as np
import pytest

from napari_spectral_seg import segment
from napari_spectral_seg._widget.engine import HEARTBEAT, EngineProcess, segment_in_worker
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.core.progress import run_to_end
from napari_spectral_seg.data import four_circles


@pytest.fixture
def engine():
    engine = EngineProcess()
    yield engine
    engine.close()


def test_child_process_gives_the_same_labels_and_serves_again(circles, engine):
    image, mask, _ = circles
    params = SegmentationParams(n_clusters=4, random_state=2)
    updates = []
    result = run_to_end(engine.steps(image, mask, params), progress=updates.append)
    np.testing.assert_array_equal(result.labels, segment(image, mask, **params.as_kwargs()))
    steps = [u.step for u in updates if u is not None]
    assert steps[0] == "mask" and steps[-1] == "labels"
    pid = engine.pid
    assert pid is not None
    again = run_to_end(engine.steps(image, mask, params.replace(n_clusters=2)))
    assert again.labels.max() == 2 and engine.pid == pid  # the same warm process


def test_child_errors_are_raised_in_the_parent(circles, engine):
    image, _, _ = circles
    with pytest.raises(ValueError, match="mask is empty"):
        run_to_end(engine.steps(image, np.zeros(image.shape, bool), SegmentationParams(n_clusters=4)))
    assert engine.running  # an input error does not cost the warm process


def test_closing_the_steps_mid_run_stops_the_child(engine):
    image, mask, _ = four_circles(size=400, seed=0)
    steps = engine.steps(image, mask, SegmentationParams(n_clusters=4, eigen_solver="arpack"))
    while engine.started_job_at is None:  # the child starts, then takes the job
        next(steps)
    started = time.perf_counter()
    steps.close()
    assert not engine.running and time.perf_counter() - started < 5
    # The next job starts a fresh child.
    small, small_mask, _ = four_circles(size=40, seed=0)
    assert run_to_end(engine.steps(small, small_mask, SegmentationParams(n_clusters=4))).labels.max() == 4


def test_a_killed_engine_is_an_engine_error_not_a_hang(engine):
    import os
    import signal

    from napari_spectral_seg._widget.engine import EngineError

    image, mask, _ = four_circles(size=400, seed=0)
    steps = engine.steps(image, mask, SegmentationParams(n_clusters=4, eigen_solver="arpack"))
    next(steps)
    os.kill(engine.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    with pytest.raises(EngineError, match="stopped unexpectedly"):
        for _ in steps:
            pass
    assert not issubclass(EngineError, RuntimeError)  # napari's worker swallows RuntimeErrors


def test_warnings_come_back_as_text(engine):
    updates = []
    image = np.ones((20, 20))
    run_to_end(engine.steps(image, None, SegmentationParams(n_clusters=2, threshold=None)), progress=updates.append)
    assert any(isinstance(u, str) and "constant" in u for u in updates)


def test_a_script_without_main_guard_is_not_rerun(tmp_path):
    # The engine child must not execute the user's __main__ (it would open a second viewer).
    import subprocess
    import sys

    marker = tmp_path / "runs.txt"
    script = tmp_path / "script.py"
    script.write_text(
        "import numpy as np\n"
        "from napari_spectral_seg._widget.engine import EngineProcess\n"
        "from napari_spectral_seg.core.params import SegmentationParams\n"
        "from napari_spectral_seg.core.progress import run_to_end\n"
        f"open({str(marker)!r}, 'a').write('run\\n')\n"
        "engine = EngineProcess()\n"
        "image = np.random.default_rng(0).random((20, 20))\n"
        "result = run_to_end(engine.steps(image, None, SegmentationParams(n_clusters=2, threshold=None)))\n"
        "engine.close()\n"
        "print(result.labels.max())\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"
    assert marker.read_text() == "run\n"


def test_every_frame_of_a_stack_in_one_job(engine):
    from napari_spectral_seg.core import segment_frames

    stack = np.stack([four_circles(size=40, seed=s)[0] for s in range(2)])
    params = SegmentationParams()
    result = run_to_end(engine.steps(stack, None, params, spatial_ndim=2))
    np.testing.assert_array_equal(result.labels, segment_frames(stack, spatial_ndim=2, **params.as_kwargs()))
    # Each frame's own threshold, count and seed are recorded.
    per_frame = result.parameters["per_frame"]
    assert list(per_frame) == ["(0,)", "(1,)"]
    for index, record in per_frame.items():
        frame = segment(stack[int(index[1])], **params.as_kwargs())
        assert record["n_segments"] == frame.max() and record["random_state"] == 0
        assert record["threshold_used"] is not None


def test_an_empty_frame_is_recorded_with_no_segments(engine):
    stack = np.stack([four_circles(size=40, seed=0)[0], np.zeros((40, 40))])
    result = run_to_end(engine.steps(stack, None, SegmentationParams(threshold=0.5), spatial_ndim=2))
    assert result.parameters["per_frame"]["(1,)"]["n_segments"] == 0
    assert result.labels[1].max() == 0 and result.labels[0].max() > 0


def test_parameters_are_a_segmentation_params(engine):
    with pytest.raises(TypeError, match="SegmentationParams"):
        next(engine.steps(np.ones((5, 5)), None, dict(n_clusters=2)))


def test_the_worker_relays_heartbeats_and_times_the_run(engine):
    small, small_mask, _ = four_circles(size=40, seed=0)
    updates = []
    steps = segment_in_worker(engine, small, small_mask, SegmentationParams(n_clusters=4))
    result = run_to_end(steps, progress=updates.append)
    # The engine starts with this job: its heartbeats while it imports come through as HEARTBEAT.
    assert HEARTBEAT in updates and None not in updates
    assert [u.step for u in updates if u is not HEARTBEAT][-1] == "labels"
    assert result.labels.max() == 4
    assert result.seconds["wall"] >= result.seconds["engine_start"] >= 0
    stack = np.stack([small, small])
    record = {"n_clusters": 4, "spatial_ndim": 2, "threshold_used": None}
    result = run_to_end(segment_in_worker(engine, stack, small_mask, SegmentationParams(), 2, record))
    assert result.labels.shape == stack.shape
    assert {key: result.parameters[key] for key in record} == record and len(result.parameters["per_frame"]) == 2


def test_the_engine_module_imports_no_gui():
    # The child runs this module: it must start without napari, Qt or magicgui.
    import subprocess
    import sys

    code = (
        "import sys, napari_spectral_seg._widget.engine\n"
        "print(sorted(m for m in ('napari', 'qtpy', 'magicgui', 'PyQt5', 'PyQt6') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_long_run_reports_every_second_with_the_time_left(engine):
    from napari_spectral_seg._widget.engine import REPORT_EVERY
    from napari_spectral_seg.core.pipeline import Progress

    small, small_mask, _ = four_circles(size=40, seed=0)
    run_to_end(engine.steps(small, small_mask, SegmentationParams(n_clusters=4)))  # started and warm
    image, mask, _ = four_circles(size=400, seed=0)
    times, messages = [], []
    steps = segment_in_worker(engine, image, mask, SegmentationParams(n_clusters=4, eigen_solver="arpack"))
    started = time.perf_counter()
    result = run_to_end(
        steps,
        progress=lambda u: (
            (times.append(time.perf_counter()), messages.append(u.message)) if isinstance(u, Progress) else None
        ),
    )
    assert result.labels.max() == 4
    if time.perf_counter() - started > 2 * REPORT_EVERY:  # long enough to tell
        gaps = np.diff([started, *times])
        assert gaps[1:].max() < REPORT_EVERY + 0.5  # from the first engine update on
        assert any("left)" in message for message in messages)


def test_without_room_in_shared_memory_the_arrays_travel_pickled(engine, monkeypatch):
    from napari_spectral_seg._widget import shared

    monkeypatch.setattr(shared, "shared_memory_room", lambda: 1000)  # a container's tiny /dev/shm
    assert isinstance(shared.new_block((40, 40), float), shared.LocalBlock)
    small, small_mask, _ = four_circles(size=40, seed=0)
    params = SegmentationParams(n_clusters=4, random_state=0)
    result = run_to_end(segment_in_worker(engine, small, small_mask, params))
    np.testing.assert_array_equal(result.labels, segment(small, small_mask, **params.as_kwargs()))


def test_shared_blocks_copy_numpy_and_dask_a_slab_at_a_time():
    import dask.array as da

    from napari_spectral_seg._widget.shared import SharedBlock, slab_bounds

    image = np.arange(300 * 70, dtype=np.float32).reshape(300, 70)
    lazy = da.from_array(image, chunks=(64, 70))
    assert slab_bounds(lazy, slab_bytes=1) == [(0, 64), (64, 128), (128, 192), (192, 256), (256, 300)]
    for source in (image, lazy):
        block = SharedBlock(image.shape, image.dtype)
        steps = list(block.fill(source))
        assert steps[-1][0] == steps[-1][1]
        np.testing.assert_array_equal(block.shared.open(), image)  # as the engine maps it
        np.testing.assert_array_equal(block.copy_out(), image)
        block.close()
