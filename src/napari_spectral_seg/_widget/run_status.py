"""A run's progress in the dock: the status line and the bar, at most one visible change every half second.

Why: under Xvfb (Mesa's llvmpipe) any visible change of the dock repaints the
whole window, canvas included, on the GUI thread (``bench/ui_latency.py``,
``napari_repaint``, measures it). The
engine reports every step, and the worker repeats the last report each
second with the time left, so showing each one kept the GUI thread busy for
much of a run. Here updates that come within :data:`INTERVAL` of the last
one shown wait, only the latest is kept, and it is shown when the interval
is over (the bar and the status line together, one repaint); the last one
is always shown, unless the run's end (its result, an error, Cancel) takes
the status line first.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from qtpy.QtCore import QTimer

from ..core.pipeline import Progress
from .progress_bar import DockProgress

__all__ = ["INTERVAL", "ThrottledProgress"]

# Seconds between two visible progress changes.
INTERVAL = 0.5


class ThrottledProgress:
    """Shows a run's :class:`Progress` on the dock's bar and status line, coalesced.

    Parameters
    ----------
    bar : DockProgress
        The dock's bar (a count out of 100 here).
    show_status : callable
        Sets the status line's text.

    Attributes
    ----------
    shown : int
        Updates shown since :meth:`start` (the others were coalesced).
    """

    def __init__(self, bar: DockProgress, show_status: Callable[[str], None]) -> None:
        self._bar = bar
        self._show_status = show_status
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.flush)
        self._pending = None
        self._shown_at = None
        self._active = False
        self._percent = 0
        self.shown = 0

    def start(self, description: str) -> None:
        """A run starts: the bar at 0 (a visible change: the first update waits its interval too)."""
        self.drop()
        self._bar.start(100, description)
        self._percent, self._shown_at, self.shown, self._active = 0, time.monotonic(), 0, True

    def push(self, update: Progress) -> None:
        """Show ``update`` now if the last change is :data:`INTERVAL` old, else when it is (the latest wins)."""
        if not self._active:
            return
        self._pending = update
        if self._timer.isActive():
            return
        wait = 0.0 if self._shown_at is None else self._shown_at + INTERVAL - time.monotonic()
        if wait <= 0:
            self.flush()
        else:
            self._timer.start(max(int(wait * 1000), 1))

    def flush(self) -> None:
        """Show the update that waits, if any."""
        self._timer.stop()
        update, self._pending = self._pending, None
        if update is None or not self._active:
            return
        self._shown_at = time.monotonic()
        self.shown += 1
        self._show_status(f"{update.step}: {update.message}")
        self._bar.set_description(f"Spectral segmentation: {update.step}")
        target = int(round(update.fraction * 100))
        if target > self._percent:
            self._bar.update(target - self._percent)
            self._percent = target

    def drop(self) -> None:
        """Forget the update that waits: the status line is about to say something else (Cancel, the result)."""
        self._timer.stop()
        self._pending = None

    def finish(self, hide_bar: bool = True) -> None:
        """The run ended: nothing more is shown; the bar is hidden (unless the dock is already gone)."""
        self.drop()
        if self._active and hide_bar:
            self._bar.close()
        self._active = False
