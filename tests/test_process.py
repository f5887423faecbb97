"""The pipeline in a child process: same labels, errors come back, terminate stops it."""

import time

import numpy as np
import pytest

from napari_spectral_seg import segment
from napari_spectral_seg.core import run_to_end
from napari_spectral_seg.core.process import EngineProcess
from napari_spectral_seg.data import four_circles


@pytest.fixture
def engine():
    engine = EngineProcess()
    yield engine
    engine.close()


def test_child_process_gives_the_same_labels_and_serves_again(circles, engine):
    image, mask, _ = circles
    params = dict(n_clusters=4, random_state=2)
    updates = []
    result = run_to_end(engine.steps(image, mask, params), progress=updates.append)
    np.testing.assert_array_equal(result.labels, segment(image, mask, **params))
    steps = [u.step for u in updates if u is not None]
    assert steps[0] == "mask" and steps[-1] == "labels"
    pid = engine.pid
    assert pid is not None
    again = run_to_end(engine.steps(image, mask, dict(params, n_clusters=2)))
    assert again.labels.max() == 2 and engine.pid == pid  # the same warm process


def test_child_errors_are_raised_in_the_parent(circles, engine):
    image, _, _ = circles
    with pytest.raises(ValueError, match="mask is empty"):
        run_to_end(engine.steps(image, np.zeros(image.shape, bool), dict(n_clusters=4)))
    assert engine.running  # an input error does not cost the warm process


def test_closing_the_steps_mid_run_stops_the_child(engine):
    image, mask, _ = four_circles(size=400, seed=0)
    steps = engine.steps(image, mask, dict(n_clusters=4, eigen_solver="arpack"))
    next(steps)  # running
    started = time.perf_counter()
    steps.close()
    assert not engine.running and time.perf_counter() - started < 5
    # The next job starts a fresh child.
    small, small_mask, _ = four_circles(size=40, seed=0)
    assert run_to_end(engine.steps(small, small_mask, dict(n_clusters=4))).labels.max() == 4
