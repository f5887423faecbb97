"""Arrays handed between the widget and its engine process through shared memory.

Why: pickling an array through the engine's socket holds the GIL for the
whole copy (65 ms for 64 MB measured, so the GUI thread stalls even when a
worker thread does it), and a dask layer would first have to be computed in
full. Instead the widget's worker thread creates a block of shared memory,
fills it slab by slab (numpy copies release the GIL; a dask array is computed
one slab at a time), and sends the engine only its name. The engine writes
the labels into a second block the widget created, which the worker copies
out slab by slab. The widget's side owns both blocks and frees them when the
job ends, whatever happens in the engine.

Every block is named ``spectralseg_<pid>_<namespace>_<random>``
(:data:`BLOCK_PREFIX`), the pid being the napari process's and the namespace
its PID namespace's: a test (or a user) can see in /dev/shm which segments are
ours, and a widget starting removes those of a process of its own namespace
that no longer runs (:func:`remove_stale_blocks`: napari killed before it could
free them). Containers sharing /dev/shm see other namespaces' pids as dead;
their blocks are never touched.

This module imports no napari, Qt or dask (the engine child imports it).
"""

from __future__ import annotations

import mmap
import os
import secrets
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np

__all__ = [
    "BLOCK_PREFIX",
    "SLAB_BYTES",
    "LocalBlock",
    "SharedArray",
    "SharedBlock",
    "close_all_blocks",
    "new_block",
    "our_blocks",
    "pid_namespace",
    "remove_stale_blocks",
    "shared_memory_room",
    "slab_bounds",
]

# Bytes read or copied at a time: small enough that a slab's copy or compute
# is short, large enough that the per-slab overhead does not matter.
SLAB_BYTES = 16 * 2**20

# The start of every block's name (short: macOS allows 31 characters in all).
BLOCK_PREFIX = "spectralseg"
_SHM_DIR = "/dev/shm"  # where Linux shows POSIX shared memory


@dataclass(frozen=True)
class SharedArray:
    """Where an array lies in shared memory: all the engine needs to map it.

    Attributes
    ----------
    name : str
        The block's name (as :class:`multiprocessing.shared_memory.SharedMemory` gives it).
    shape : tuple of int
    dtype : str
    """

    name: str
    shape: tuple
    dtype: str

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def open(self) -> np.ndarray:
        """The array, mapped (not copied) in this process; the engine's side.

        The block is not registered with this process's resource tracker:
        the widget's side owns it (registering here would start a tracker
        process in the engine and unlink the block when the engine exits).
        """
        buffer = _map(self.name, max(self.nbytes, 1))
        return np.frombuffer(buffer, dtype=self.dtype, count=int(np.prod(self.shape, dtype=np.int64))).reshape(
            self.shape
        )


def _map(name: str, size: int):
    if os.name == "posix":
        import _posixshmem  # what SharedMemory itself uses, without its tracker registration

        fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
        try:
            return mmap.mmap(fd, size)
        finally:
            os.close(fd)
    # pragma: no cover - Windows has no resource tracker; keep the block open with its view
    block = shared_memory.SharedMemory(name=name)
    _OPEN_ON_WINDOWS.append(block)
    return block.buf


_OPEN_ON_WINDOWS: list = []


def slab_bounds(source: Any, slab_bytes: int = SLAB_BYTES) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges along the first axis that cover ``source`` a slab at a time.

    A dask array's slabs follow its chunks (whole chunks, merged up to about
    ``slab_bytes``), so no chunk is computed twice.
    """
    shape = tuple(source.shape)
    if not shape or shape[0] == 0:
        return [(0, 0)] if not shape else []
    itemsize = np.dtype(source.dtype).itemsize
    row_bytes = max(int(np.prod(shape[1:], dtype=np.int64)) * itemsize, 1)
    chunks = getattr(source, "chunks", None)
    if isinstance(chunks, tuple) and chunks and isinstance(chunks[0], tuple):  # dask
        edges = np.cumsum((0, *chunks[0]))
    else:
        rows = max(slab_bytes // row_bytes, 1)
        edges = np.append(np.arange(0, shape[0], rows), shape[0])
    bounds, start = [], int(edges[0])
    for stop in edges[1:]:
        if (int(stop) - start) * row_bytes >= slab_bytes or stop == edges[-1]:
            bounds.append((start, int(stop)))
            start = int(stop)
    return bounds


class SharedBlock:
    """A block of shared memory holding one array; the widget's side, which owns it.

    Parameters
    ----------
    shape : tuple of int
    dtype : numpy dtype
    owner : object, optional
        Whose block it is: :func:`close_all_blocks` of the owner frees it.

    Examples
    --------
    >>> block = SharedBlock((4, 5), np.float32)
    >>> for _ in block.fill(np.ones((4, 5))): pass
    >>> block.array.sum()
    20.0
    >>> block.close()
    """

    def __init__(self, shape: tuple, dtype, owner=None) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.owner = owner
        nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self._memory = _create(max(nbytes, 1))
        self.array = np.ndarray(self.shape, dtype=self.dtype, buffer=self._memory.buf)
        _OPEN_BLOCKS.add(self)

    @property
    def shared(self) -> SharedArray:
        """What the engine needs to map the block."""
        return SharedArray(self._memory.name, self.shape, self.dtype.str)

    def fill(self, source: Any, cancelled: Callable[[], bool] | None = None) -> Generator[tuple[int, int], None, None]:
        """Copy ``source`` (numpy, dask, zarr: anything sliceable) in, a slab at a time.

        Yields ``(done, total)`` slabs after each, so the caller can report
        progress and stop between slabs (``cancelled()`` returning True stops
        the copy too).
        """
        bounds = slab_bounds(source)
        for done, (start, stop) in enumerate(bounds, 1):
            if cancelled is not None and cancelled():
                return
            slab = source[start:stop]
            compute = getattr(slab, "compute", None)
            self.array[start:stop] = compute() if callable(compute) else np.asarray(slab)
            yield done, len(bounds)

    def copy_out(self) -> np.ndarray:
        """A private copy of the block's array (copied a slab at a time, so the GIL is free in between)."""
        out = np.empty(self.shape, dtype=self.dtype)
        for start, stop in slab_bounds(self.array):
            out[start:stop] = self.array[start:stop]
        return out

    def close(self) -> None:
        """Free the block (the engine's mapping, if any, lasts until the engine drops it)."""
        if self._memory is None:
            return
        self.array = None
        try:
            self._memory.close()
        except BufferError:  # a view still held somewhere: unlinking alone frees it once that goes
            pass
        try:
            self._memory.unlink()
        except FileNotFoundError:
            pass
        self._memory = None


def _create(size: int) -> shared_memory.SharedMemory:
    """A new block named ``spectralseg_<pid>_<namespace>_<random>``."""
    while True:
        name = f"{BLOCK_PREFIX}_{os.getpid()}_{pid_namespace()}_{secrets.token_hex(4)}"
        try:
            return shared_memory.SharedMemory(name=name, create=True, size=size)
        except FileExistsError:  # pragma: no cover - one chance in 4 billion
            continue


def our_blocks(pid: int | None = None) -> list[str]:
    """Names of the blocks in /dev/shm made by this plugin (by process ``pid`` if given); [] without /dev/shm."""
    try:
        names = os.listdir(_SHM_DIR)
    except OSError:
        return []
    start = f"{BLOCK_PREFIX}_" if pid is None else f"{BLOCK_PREFIX}_{pid}_"
    return sorted(name for name in names if name.startswith(start))


def pid_namespace() -> str:
    """This process's PID namespace as a short tag (hex inode of /proc/self/ns/pid; "0" where there is none)."""
    try:
        return format(os.stat("/proc/self/ns/pid").st_ino, "x")
    except OSError:
        return "0"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_blocks() -> list[str]:
    """Unlink the blocks left by a process of this plugin that no longer runs; returns their names.

    Why: a napari killed (SIGKILL, a crash together with its resource
    tracker) cannot free its blocks, and /dev/shm keeps them until reboot.
    """
    removed = []
    namespace = pid_namespace()
    for name in our_blocks():
        parts = name.split("_")
        if len(parts) == 3:  # named before blocks carried their namespace: taken as this one's
            parts.insert(2, namespace)
        if len(parts) != 4 or parts[2] != namespace:  # another container's (or an unknown) block
            continue
        pid = parts[1]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(_SHM_DIR, name))
        except OSError:
            continue
        removed.append(name)
    return removed


class LocalBlock(SharedBlock):
    """A :class:`SharedBlock`'s stand-in in this process's own memory; its array travels pickled.

    For when shared memory has no room for the array (a container's
    /dev/shm is often 64 MB): writing past it would kill the process
    (SIGBUS), so the array goes through the engine's socket instead.
    """

    def __init__(self, shape: tuple, dtype, owner=None) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.owner = owner
        self._memory = None
        self.array = np.empty(self.shape, dtype=self.dtype)

    @property
    def shared(self) -> np.ndarray:
        """The array itself (pickled to the engine)."""
        return self.array

    def close(self) -> None:
        self.array = None


def shared_memory_room() -> int | None:
    """Bytes free where POSIX shared memory lives (/dev/shm), or None where that is not known."""
    try:
        stats = os.statvfs("/dev/shm")
    except (OSError, AttributeError):  # no /dev/shm (macOS, Windows)
        return None
    return stats.f_bavail * stats.f_frsize


def new_block(shape: tuple, dtype, owner=None) -> SharedBlock:
    """A :class:`SharedBlock`, or a :class:`LocalBlock` if shared memory has no room for it.

    A block may use a third of the room left: a run needs two (the image
    and the labels), and tmpfs counts a block's pages only once written.
    """
    nbytes = int(np.prod(tuple(shape), dtype=np.int64)) * np.dtype(dtype).itemsize
    room = shared_memory_room()
    if room is not None and nbytes > room // 3:
        return LocalBlock(shape, dtype, owner)
    return SharedBlock(shape, dtype, owner)


# Blocks not closed yet: a run abandoned when the viewer closes leaves its worker's
# generator suspended, with its blocks, until it is garbage collected.
_OPEN_BLOCKS: weakref.WeakSet = weakref.WeakSet()


def close_all_blocks(owner) -> None:
    """Free every block of ``owner`` still open (its widget closing): no name is left in shared memory."""
    for block in list(_OPEN_BLOCKS):
        if block.owner is owner:
            block.close()
