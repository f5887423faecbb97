"""A batch task's warnings on a worker that runs several tasks at once, in threads."""

import threading
import warnings

import numpy as np

from napari_spectral_seg.batch import task
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.core.progress import iter_waiting, run_to_end

FLAT_WARNING = "image is constant inside the mask"


def flat_image(path):
    # Constant inside its bright square: the pipeline warns that the split is geometric.
    image = np.zeros((30, 30), np.float32)
    image[5:20, 5:20] = 200
    np.save(path, image)
    return str(path)


def run_in_thread(name, work, results):
    def target():
        results[name] = work()

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


def test_two_tasks_in_threads_at_once_each_get_their_own_warnings(tmp_path, monkeypatch):
    # Both tasks are inside their capture when each warns; the first leaves while the second still runs.
    path = flat_image(tmp_path / "flat.npy")
    params = SegmentationParams(n_clusters=2)
    both_inside = threading.Barrier(2, timeout=30)
    first_left = threading.Event()
    real_steps = task.segmentation_steps

    def steps(frame, mask, params):
        name = threading.current_thread().name
        both_inside.wait()
        warnings.warn(f"said in {name}", stacklevel=1)
        both_inside.wait()
        if name == "second":
            assert first_left.wait(30)
        return real_steps(frame, mask, params)

    monkeypatch.setattr(task, "segmentation_steps", steps)
    filters_before = list(warnings.filters)
    showwarning_before = warnings.showwarning
    results = {}
    second = run_in_thread("second", lambda: task.segment_frame(path, "npy", (), params), results)
    first = run_in_thread("first", lambda: task.segment_frame(path, "npy", (), params), results)
    first.join(60)
    first_left.set()
    second.join(60)
    for name, other in (("first", "second"), ("second", "first")):
        said = results[name][1]["warnings"]
        assert f"said in {name}" in said and f"said in {other}" not in said
        assert any(message.startswith(FLAT_WARNING) for message in said)
    # The process's warning state is as it was: a warning outside a task reaches the usual place.
    assert warnings.filters == filters_before and warnings.showwarning is showwarning_before
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        warnings.warn("said outside any task", stacklevel=1)
    assert [str(w.message) for w in outside] == ["said outside any task"]


def test_a_warning_of_another_thread_is_not_taken_by_a_task(tmp_path, monkeypatch):
    path = flat_image(tmp_path / "flat.npy")
    task_inside, other_warned = threading.Event(), threading.Event()
    real_steps = task.segmentation_steps

    def steps(frame, mask, params):
        task_inside.set()
        assert other_warned.wait(30)
        return real_steps(frame, mask, params)

    monkeypatch.setattr(task, "segmentation_steps", steps)
    results = {}
    worker = run_in_thread(
        "task", lambda: task.segment_frame(path, "npy", (), SegmentationParams(n_clusters=2)), results
    )
    assert task_inside.wait(30)
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        warnings.warn("said by another thread", stacklevel=1)
    other_warned.set()
    worker.join(60)
    assert [str(w.message) for w in outside] == ["said by another thread"]
    assert "said by another thread" not in results["task"][1]["warnings"]


def test_each_task_of_a_worker_hears_a_warning_again_and_from_its_helper_threads(tmp_path):
    # The "default" filter says a warning once per code location: a later task must hear it too.
    path = flat_image(tmp_path / "flat.npy")
    for _ in range(2):
        _, info = task.segment_frame(path, "npy", (), SegmentationParams(n_clusters=2))
        assert len(info["warnings"]) == 1 and info["warnings"][0].startswith(FLAT_WARNING)

    def warn_in_helper():
        warnings.warn("said in a helper thread", stacklevel=1)
        return threading.current_thread().name

    def steps():
        return (yield from iter_waiting(warn_in_helper, expected_seconds=5.0))

    from napari_spectral_seg.batch.warning_capture import capture_warnings

    with capture_warnings() as said:
        name = run_to_end(steps())
    assert name != threading.current_thread().name and said == ["said in a helper thread"]


def test_code_inside_a_task_that_records_warnings_itself_gets_them():
    # A reviewer's finding: the hook took warnings ahead of a catch_warnings(record=True) inside a task.
    from napari_spectral_seg.batch.warning_capture import capture_warnings

    with capture_warnings() as collected:
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always")
            warnings.warn("recorded by the task's own code", UserWarning, stacklevel=1)
        warnings.warn("heard by the task", UserWarning, stacklevel=1)
    assert [str(w.message) for w in recorded] == ["recorded by the task's own code"]
    assert collected == ["heard by the task"]
