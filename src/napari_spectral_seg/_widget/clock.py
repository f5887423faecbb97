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

    The estimate assumes the rest goes at the pace so far: ``elapsed *
    (1 - fraction) / fraction``. While a long step says nothing (one big
    piece in auto mode, one solver call), :meth:`heartbeat` repeats its last
    update at least every :data:`REPORT_EVERY` seconds with the time grown,
    so the estimate grows too instead of the bar looking stuck.
    """

    def __init__(self, waiting: Progress | None = None) -> None:
        self.started = None  # the first update: the time so far counts from here
        self.waited = time.perf_counter()
        self.last = waiting  # before the first update: what is being waited for
        self.reported = self.waited

    def update(self, update: Progress) -> Progress:
        now = time.perf_counter()
        self.taken(now)
        self.last, self.reported = update, now
        return self._timed(update, now)

    def taken(self, at: float) -> None:
        """The engine took the job at ``at`` (perf_counter): the wait is over, the run's time starts."""
        if self.started is None:
            self.started = at
            self.last = Progress("mask", 0.0, "preparing the image")

    def heartbeat(self):
        """The last update again, timed, if it is due; else :data:`HEARTBEAT`."""
        now = time.perf_counter()
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
        if update.fraction >= 0.02:
            text += f", about {_duration(elapsed * (1 - update.fraction) / update.fraction)} left"
        return Progress(update.step, update.fraction, f"{update.message} ({text})")
