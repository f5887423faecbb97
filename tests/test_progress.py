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
