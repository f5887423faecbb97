"""Progress generators: the one way long steps report progress and are cancelled.

A long step is a generator that yields progress updates and returns its result
(as the ``StopIteration`` value); closing it cancels the step. These helpers
pass such updates on, drive a generator to its end, or drive it while calling
a callback, so no caller writes the ``next``/``StopIteration`` loop itself.
"""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "STEPS",
    "Progress",
    "SegmentationCancelled",
    "drain",
    "iter_waiting",
    "relay",
    "run_to_end",
    "wait_for_left_steps",
]

STEPS = ("mask", "graph", "eigenvectors", "labels")

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """Where a running segmentation is.

    Attributes
    ----------
    step : str
        One of ``STEPS``: "mask", "graph", "eigenvectors", "labels".
    fraction : float
        Overall completion in [0, 1].
    message : str
        Human-readable detail, e.g. "component 3 of 12".
    """

    step: str
    fraction: float
    message: str = ""


class SegmentationCancelled(Exception):
    """Raised by a progress callback to stop :func:`napari_spectral_seg.segment` at the next step."""


def relay(
    steps: Generator[Any, None, T],
    transform: Callable[[Any], Any] | None = None,
    *,
    within: Callable[[], AbstractContextManager] | None = None,
) -> Generator[Any, None, T]:
    """Yield every update of ``steps`` (mapped by ``transform``) and return its result.

    Use as ``result = yield from relay(steps, transform)``. ``transform``
    returning None drops that update. Closing the relay closes ``steps``.
    ``within()``, if given, is a context manager entered around each step of
    ``steps`` alone (e.g. ``np.errstate`` or a thread limit): it is off while
    the relay is suspended and while ``transform`` runs.
    """
    step_context = nullcontext if within is None else within
    try:
        while True:
            with step_context():
                try:
                    update = next(steps)
                except StopIteration as stop:
                    return stop.value
            if transform is not None:
                update = transform(update)
            if update is not None:
                yield update
    finally:
        steps.close()


def drain(steps: Generator[Any, None, T]) -> T:
    """Run a progress generator to its end, ignoring its updates; returns its result."""
    return run_to_end(steps)


def run_to_end(steps: Generator[Any, None, T], progress: Callable[[Any], object] | None = None) -> T:
    """Drive a progress generator to its result, calling ``progress`` with each update.

    ``progress`` may raise :class:`SegmentationCancelled` to stop: the
    generator is closed and the exception propagates.
    """
    while True:
        try:
            update = next(steps)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            try:
                progress(update)
            except SegmentationCancelled:
                steps.close()
                raise


# A step expected to take less than this runs in the caller's thread.
_WAIT_IN_THREAD_SECONDS = 1.0
# Updates while waiting for a step in its helper thread, seconds apart.
_WAIT_INTERVAL = 0.25


def _part_done(elapsed: float, expected: float) -> float:
    """Elapsed time as the part done: linear to 0.8 at 80 % of ``expected``, then towards 1 (never 1)."""
    knee = 0.8 * expected
    if elapsed <= knee:
        return elapsed / expected
    return 0.8 + 0.2 * (1.0 - math.exp(-(elapsed - knee) / expected))


# The helper threads of :func:`iter_waiting` still running, also those whose generator was closed.
_STEP_THREADS: set[threading.Thread] = set()
_STEP_THREADS_LOCK = threading.Lock()


def steps_running() -> bool:
    """Whether a step of :func:`iter_waiting` still runs in its helper thread (also one whose generator was closed)."""
    with _STEP_THREADS_LOCK:
        return any(thread.is_alive() for thread in _STEP_THREADS)


def wait_for_left_steps() -> None:
    """Wait until every step that :func:`iter_waiting` left running (its generator closed) has ended.

    A cancelled run's native call goes on in its thread, using CPU and memory
    the next run's guards do not count; a process that serves runs one after
    another waits here before it takes the next.
    """
    with _STEP_THREADS_LOCK:
        threads = list(_STEP_THREADS)
    for thread in threads:
        thread.join()


def iter_waiting(work: Callable[[], T], expected_seconds: float) -> Generator[float, None, T]:
    """Run ``work()`` to its result, yielding the estimated part done (0-1) while it runs.

    One long native call (a factorisation, k-means) gives a generator no
    point to yield at; run in a helper thread, it is waited for in short
    slices instead, so progress keeps moving and a consumer that stops
    iterating is not kept waiting. A step expected to be short runs in the
    caller's thread and yields nothing.

    ``work`` runs in a copy of the caller's context (so ``np.errstate`` and
    other context variables apply in the thread). If the generator is closed
    before ``work`` returns, the thread is left to finish on its own (its
    result is dropped): a native call cannot be interrupted.
    """
    if expected_seconds < _WAIT_IN_THREAD_SECONDS:
        return work()
    context = contextvars.copy_context()
    finished = threading.Event()
    outcome: dict[str, Any] = {}

    def target():
        try:
            outcome["value"] = context.run(work)
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error
        finally:
            with _STEP_THREADS_LOCK:
                _STEP_THREADS.discard(threading.current_thread())
            finished.set()

    start = time.perf_counter()
    thread = threading.Thread(target=target, name="napari-spectral-seg step", daemon=True)
    with _STEP_THREADS_LOCK:
        _STEP_THREADS.add(thread)
    thread.start()
    while not finished.wait(_WAIT_INTERVAL):
        yield _part_done(time.perf_counter() - start, expected_seconds)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
