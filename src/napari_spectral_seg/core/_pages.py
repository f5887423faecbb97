"""A run's arrays on ordinary pages: numpy's huge-page advice off while a segmentation step runs.

numpy asks the kernel for transparent huge pages on every large array
(``madvise(MADV_HUGEPAGE)``). Where the kernel's setting is ``madvise`` with
``defrag=madvise`` (this machine's), a fresh 2 MiB page may wait for the
kernel to compact memory, and a run allocates dozens of fresh arrays of
hundreds of MB (each freed block above 32 MiB goes back to the kernel, so
the next one is faulted in again). The measured effect is small and varies
between runs (README, *Performance*).

:func:`ordinary_pages` turns the advice off for the duration of a step and
puts back what it found when the last open section ends (sections in
several threads share one setting, as for the thread pools in
``_threads``). The command line and the engine process turn it off for
good (``core.warm.prepare``); then this changes nothing.
"""

from __future__ import annotations

from contextlib import contextmanager

from ._sections import SharedSection

__all__ = ["ordinary_pages"]

_saved: list[bool] = []


def _setter():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return getattr(multiarray, "_set_madvise_hugepage", None)


_SET_HUGE_PAGES = _setter()


def _advice_off() -> None:
    _saved[:] = [_SET_HUGE_PAGES(False)]


def _advice_back() -> None:
    _SET_HUGE_PAGES(_saved.pop())


_section = SharedSection(_advice_off, _advice_back)


@contextmanager
def ordinary_pages():
    """Context manager: no huge-page advice for the arrays numpy allocates inside it."""
    if _SET_HUGE_PAGES is None:  # pragma: no cover - a numpy without the switch
        yield
        return
    with _section.open():
        yield
