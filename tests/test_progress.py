"""relay passes a progress generator's updates on and can run each of its steps inside a context."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

from napari_spectral_seg.core.progress import drain, relay


def test_relay_enters_within_around_each_step_only():
    state = {"inside": False}
    seen_by_steps, seen_by_transform, seen_by_consumer = [], [], []

    @contextmanager
    def within():
        state["inside"] = True
        try:
            yield
        finally:
            state["inside"] = False

    def steps():
        for i in range(3):
            seen_by_steps.append(state["inside"])
            yield i
        seen_by_steps.append(state["inside"])
        return "done"

    def transform(update):
        seen_by_transform.append(state["inside"])
        return update * 10

    relayed = relay(steps(), transform, within=within)
    updates = []
    while True:
        try:
            updates.append(next(relayed))
        except StopIteration as stop:
            result = stop.value
            break
        seen_by_consumer.append(state["inside"])
    assert updates == [0, 10, 20] and result == "done"
    assert seen_by_steps == [True] * 4
    assert seen_by_transform == [False] * 3 and seen_by_consumer == [False] * 3


def test_relay_within_passes_errors_and_closes_steps():
    closed = []

    def steps():
        try:
            yield 1
            raise ValueError("boom")
        finally:
            closed.append(True)

    relayed = relay(steps(), within=lambda: np.errstate(all="ignore"))
    assert next(relayed) == 1
    with pytest.raises(ValueError, match="boom"):
        drain(relayed)
    assert closed == [True]


def test_a_long_native_step_is_waited_for_in_slices_and_its_errors_reach_the_caller():
    # Issue 17: n_clusters=470 on 100 x 100 spent 18 s in one ARPACK call and
    # 54 s in one k-means fit with no progress update at all.
    import time

    from napari_spectral_seg.core.progress import iter_waiting

    steps = iter_waiting(lambda: time.sleep(1.5) or "done", expected_seconds=1.0)
    parts = []
    while True:
        try:
            parts.append(next(steps))
        except StopIteration as stop:
            assert stop.value == "done"
            break
    assert len(parts) >= 3  # every 0.25 s, even on a loaded machine
    assert parts == sorted(parts) and all(0 < part < 1 for part in parts)

    def fails():
        raise ArithmeticError("from the thread")

    with pytest.raises(ArithmeticError, match="from the thread"):
        drain(iter_waiting(fails, expected_seconds=5.0))
    assert drain(iter_waiting(lambda: 7, expected_seconds=0.0)) == 7  # short: in the caller's thread


def test_a_consumer_that_stops_is_not_kept_waiting_for_the_step():
    import time

    from napari_spectral_seg.core.progress import iter_waiting

    steps = iter_waiting(lambda: time.sleep(8), expected_seconds=8.0)
    started = time.perf_counter()
    next(steps)
    steps.close()
    assert time.perf_counter() - started < 5.0


def test_a_step_left_running_is_waited_for_before_the_next_job():
    import time

    from napari_spectral_seg.core.progress import iter_waiting, wait_for_left_steps

    ended = []
    steps = iter_waiting(lambda: time.sleep(1.5) or ended.append(time.perf_counter()), expected_seconds=2.0)
    next(steps)
    steps.close()  # the consumer (a cancelled job) went away; the native call goes on
    assert not ended
    wait_for_left_steps()
    assert ended and ended[0] <= time.perf_counter()
    wait_for_left_steps()  # nothing left: returns at once


def test_numpy_error_state_applies_in_the_helper_thread():
    from napari_spectral_seg.core.progress import iter_waiting

    def divide():
        import time

        time.sleep(1.1)
        return np.float64(1.0) / np.float64(0.0)

    with np.errstate(divide="raise"):
        steps = iter_waiting(divide, expected_seconds=1.0)
        with pytest.raises(FloatingPointError):
            drain(steps)
