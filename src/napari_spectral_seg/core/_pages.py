"""A run's arrays on ordinary pages: numpy's huge-page advice off while a segmentation step runs.

numpy asks the kernel for transparent huge pages on every large array
(``madvise(MADV_HUGEPAGE)``). Where the kernel's setting is ``madvise`` with
``defrag=madvise`` (this machine's), a fresh 2 MiB page may wait for the
kernel to compact memory, and a run allocates dozens of fresh arrays of
hundreds of MB (each freed block above 32 MiB goes back to the kernel, so
the next one is faulted in again). Measured on 4096 x 4096 four circles,
in fresh processes, two calls each: 7.9-9.4 s CPU with the advice, 7.0 s with it off for the whole process;
with it off during the steps only (this module), 6.75-7.03 s against 6.47-7.95 s (mean 6.9 against 7.4 s,
a load average of 10 on 2 cores); 6.82 and 6.93 s against 7.41 and 7.22 s in a second pair
(``bench/steps.py --size 4096``). Per step the sign varied between runs (the graph and the
eigen-solve gained in both pairs, the steps before and after the mask lost in one), and
turning it off for the graph and the eigen-solve only gave 7.28 s against 6.96 s: kept for every step.

:func:`ordinary_pages` turns the advice off for the duration of a step and
puts back what it found when the last open section ends (sections in
several threads share one setting, as for the thread pools in
``_threads``). The command line and the engine process turn it off for
good (``core.warm.prepare``); then this changes nothing.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

__all__ = ["ordinary_pages"]

_lock = threading.Lock()
_depth = 0
_saved: list[bool] = []


def _setter():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return getattr(multiarray, "_set_madvise_hugepage", None)


_SET_HUGE_PAGES = _setter()


@contextmanager
def ordinary_pages():
    """Context manager: no huge-page advice for the arrays numpy allocates inside it."""
    global _depth
    if _SET_HUGE_PAGES is None:  # pragma: no cover - a numpy without the switch
        yield
        return
    with _lock:
        if _depth == 0:
            _saved[:] = [_SET_HUGE_PAGES(False)]
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _SET_HUGE_PAGES(_saved.pop())
