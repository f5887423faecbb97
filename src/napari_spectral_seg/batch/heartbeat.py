"""What a long phase of a cluster run is doing, said at once and again every few seconds while it lasts.

A local cluster can take more than 30 s to start on a loaded machine, and a
blockwise run's whole-image decisions as long; the command line says what it
waits for rather than nothing (issue 17: no silent wait over 30 s).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["EVERY_SECONDS", "phase"]

# Seconds between two lines of a phase that goes on.
EVERY_SECONDS = 10.0


@contextlib.contextmanager
def phase(
    say: Callable[[str], None] | None,
    text: str,
    every: float | None = None,
    at_once: bool = True,
    detail: Callable[[], str] | None = None,
) -> Iterator[None]:
    """Say ``text...`` now and ``text: N s so far`` every ``every`` seconds until the block ends.

    Not ``at_once``: the first line comes after ``every`` seconds, so a phase
    that is usually short says nothing when it is.

    Parameters
    ----------
    say : callable or None
        Takes one line (no newline); None: nothing is said and no thread started.
    text : str
        What the phase does, e.g. "starting 2 local dask worker process(es)".
    every : float, optional
        Seconds between the lines (default :data:`EVERY_SECONDS`).
    at_once : bool
        Whether the first line is said when the phase starts.
    detail : callable, optional
        Returns what the later lines add after the seconds (e.g. "3 of 36 done").
    """
    if say is None:
        yield
        return
    every = EVERY_SECONDS if every is None else every
    if at_once:
        say(f"{text}...")
    ended = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not ended.wait(every):
            more = f", {detail()}" if detail is not None else ""
            say(f"{text}: {time.monotonic() - started:.0f} s so far{more}")

    ticker = threading.Thread(target=tick, name="napari-spectral-seg-heartbeat", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        ended.set()
        ticker.join(timeout=1.0)
