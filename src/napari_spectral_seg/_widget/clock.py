"""The time so far and left, added to the engine's progress by the widget's worker thread.

This module imports no napari, Qt or magicgui (the engine child imports its package).
"""

from __future__ import annotations

import time

from ..core.pipeline import Progress

__all__ = ["HEARTBEAT", "REPORT_EVERY", "Heartbeat", "ProgressClock"]


class Heartbeat:
    """What :func:`segment_in_worker` yields while the engine has nothing to say."""

    def __repr__(self) -> str:
        return "HEARTBEAT"


# napari's generator worker checks for Cancel between items: the relay yields
# this (the engine's ``None``) so that a long step can still be cancelled.
HEARTBEAT = Heartbeat()


# A step that reports nothing for this long is reported again, with its time so far.
REPORT_EVERY = 1.0  # seconds


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class ProgressClock:
    """Time so far and an estimate of the time left, added to the engine's progress.

    At an update the estimate assumes the rest goes at the pace so far:
    ``elapsed * (1 - fraction) / fraction``. While a long step says nothing
    (one big piece in auto mode, one solver call), :meth:`heartbeat`
    repeats the last update at least every :data:`REPORT_EVERY` seconds with
    the time grown and that estimate counted down; once the step has run
    past it, the estimate is left out until the next update, instead of
    being stretched from a fraction that no longer says where the run is.

    ``clock``: the time function (seconds), ``time.perf_counter`` unless given.
    """

    def __init__(self, waiting: Progress | None = None, clock=time.perf_counter) -> None:
        self._clock = clock
        self.started = None  # the first update: the time so far counts from here
        self.waited = clock()
        self.last = waiting  # before the first update: what is being waited for
        self.reported = self.waited
        self._ends_at = None  # when the last update's estimate said the run would end

    def update(self, update: Progress) -> Progress:
        now = self._clock()
        self.taken(now)
        self.last, self.reported = update, now
        elapsed = now - self.started
        fraction = update.fraction
        self._ends_at = now + elapsed * (1 - fraction) / fraction if fraction >= 0.02 else None
        return self._timed(update, now)

    def taken(self, at: float) -> None:
        """The engine took the job at ``at`` (the clock's time): the wait is over, the run's time starts."""
        if self.started is None:
            self.started = at
            self.last = Progress("mask", 0.0, "preparing the image")

    def heartbeat(self):
        """The last update again, timed, if it is due; else :data:`HEARTBEAT`."""
        now = self._clock()
        if self.last is None or now - self.reported < REPORT_EVERY:
            return HEARTBEAT
        self.reported = now
        return self._timed(self.last, now)

    def _timed(self, update: Progress, now: float) -> Progress:
        if self.started is None:  # still waiting (for the engine to start)
            return Progress(update.step, update.fraction, f"{update.message} ({_duration(now - self.waited)})")
        elapsed = now - self.started
        if elapsed < REPORT_EVERY:  # too early to say anything useful
            return update
        text = f"{_duration(elapsed)} so far"
        if self._ends_at is not None and self._ends_at - now >= 0.5:
            text += f", about {_duration(self._ends_at - now)} left"
        return Progress(update.step, update.fraction, f"{update.message} ({text})")
