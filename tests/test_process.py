"""The pipeline in a child process: same labels, errors come back, terminate stops it."""

import time

import numpy as np
import pytest

from napari_spectral_seg import segment
from napari_spectral_seg.core import run_to_end
from napari_spectral_seg.core.process import SegmentationProcess
from napari_spectral_seg.data import four_circles


def test_child_process_gives_the_same_labels(circles):
    image, mask, _ = circles
    params = dict(n_clusters=4, random_state=2)
    job = SegmentationProcess(image, mask, params)
    updates = []
    result = run_to_end(job.steps(), progress=updates.append)
    np.testing.assert_array_equal(result.labels, segment(image, mask, **params))
    steps = [u.step for u in updates if u is not None]
    assert steps[0] == "mask" and steps[-1] == "labels"
    assert not job.running


def test_child_errors_are_raised_in_the_parent(circles):
    image, _, _ = circles
    job = SegmentationProcess(image, np.zeros(image.shape, bool), dict(n_clusters=4))
    with pytest.raises(ValueError, match="mask is empty"):
        run_to_end(job.steps())


def test_terminate_stops_a_long_run():
    image, mask, _ = four_circles(size=400, seed=0)
    job = SegmentationProcess(image, mask, dict(n_clusters=4, eigen_solver="arpack"))
    steps = job.steps()
    next(steps)  # started
    started = time.perf_counter()
    job.terminate()
    assert not job.running and time.perf_counter() - started < 5
    steps.close()
