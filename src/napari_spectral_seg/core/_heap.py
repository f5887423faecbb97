"""Freed memory kept in the process's heap: for good, or for the length of one run.

By default glibc's malloc gives each block above 128 KiB (the threshold
grows to at most 32 MiB) its own ``mmap`` and returns it to the kernel when
it is freed, so every large temporary of a run is faulted in afresh, page by
page. A run allocates dozens of temporaries of hundreds of MB; on a virtual
machine whose host takes freed guest memory back, a fresh page costs far more
than the arithmetic done on it (README, *Performance*).

With the heap kept, a run reuses its own freed temporaries.
:func:`keep_freed_memory` does that for good (the command line and the
engine process, through ``core.warm.prepare``); :func:`heap_kept` for the
length of one run in any other process (a script, napari's own process):
when the last open section ends, the settings go back to what glibc's own
grow to (fixed from then on: 32 MiB for a block of its own, 64 MiB of free
heap kept) and the free heap is handed back to the kernel (``malloc_trim``). Only
large runs open a section (``KEEP_MIN_PIXELS``). Sections in
several threads share one setting (as for the thread pools in ``_threads``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from contextlib import contextmanager

from ._sections import SharedSection

__all__ = ["heap_kept", "keep_freed_memory"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
# Blocks below this come from the heap and stay there when freed: above the
# largest temporary of a 4096 x 4096 run, below what the heap should hold idle.
_HEAP_BLOCK_LIMIT = 1 << 30
# Free memory at the top of the heap kept, not returned to the kernel.
_TRIM_THRESHOLD = 1 << 30
# Grow the heap in steps of this (fewer brk calls).
_TOP_PAD = 64 << 20
_KEPT = ((_M_MMAP_THRESHOLD, _HEAP_BLOCK_LIMIT), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_TOP_PAD, _TOP_PAD))
# What a section leaves behind: where glibc's own dynamic thresholds end up in
# a process that has freed large arrays (mmap threshold at its 32 MiB ceiling,
# trim threshold twice that; mallopt(3)), so later small runs reuse the heap as
# they would have without the section (setting them ends that dynamic growth).
_AFTER = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 64 << 20), (_M_TOP_PAD, 128 << 10))
# Runs on fewer pixels than this leave glibc alone: their temporaries fit under
# its own thresholds, and trimming after each of them made repeated calls fault
# in their memory again.
KEEP_MIN_PIXELS = 8 << 20

_for_good = False  # keep_freed_memory() succeeded: sections change nothing


@functools.cache
def _libc():
    """glibc's ``(mallopt, malloc_trim)``, or None where the C library is another one."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, Windows, musl without mallopt)
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    trim.argtypes, trim.restype = (ctypes.c_size_t,), ctypes.c_int
    return mallopt, trim


def _set(settings) -> bool:
    mallopt = _libc()[0]
    return all([mallopt(option, value) == 1 for option, value in settings])


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc's malloc serve large blocks from a heap it keeps, not from fresh ``mmap`` calls.

    Process-wide and once per process; the command line and the engine
    process call it (through ``core.warm.prepare``).

    Returns
    -------
    bool
        False where the C library is not glibc (nothing changed).
    """
    global _for_good
    if _libc() is None:
        return False
    with _section.lock:
        _for_good = _set(_KEPT)
    return _for_good


def _keep() -> None:
    if not _for_good:
        _set(_KEPT)


def _hand_back() -> None:
    if not _for_good:
        _set(_AFTER)
        _libc()[1](0)


_section = SharedSection(_keep, _hand_back)


@contextmanager
def heap_kept(n_pixels: int):
    """Context manager: freed large blocks stay in the heap inside it, and go back to the kernel after.

    Only for a run on at least ``KEEP_MIN_PIXELS`` pixels (``n_pixels``); smaller ones change nothing.
    """
    if _libc() is None or n_pixels < KEEP_MIN_PIXELS:
        yield
        return
    with _section.open():
        yield
