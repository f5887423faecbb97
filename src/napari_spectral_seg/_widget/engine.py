"""The engine host: the segmentation pipeline in a long-lived child process.

Why: scipy.sparse and pyamg hold the GIL for long stretches, so a thread
running the pipeline froze napari's event loop for up to 310 ms on a 512 x 512
image (bench/ui_latency.py). A child process leaves the GUI's interpreter
free, and cancelling is immediate (terminate) instead of waiting for the
next step.

The child is started once and serves one job after another, so the engine's
imports (about 1.5 s) are paid once, in the background, not on every Run.
On Linux and macOS it is a fresh interpreter (``python -m
napari_spectral_seg._widget.engine FD``) talking over a socket pair: unlike
multiprocessing's "spawn" and "forkserver", that never re-runs the user's
``__main__`` script (a napari script without an ``if __name__ ==
"__main__":`` guard would otherwise open a second viewer in the child), and
never forks a process that runs Qt threads. Windows has no fd passing: there
multiprocessing "spawn" is used, and scripts need the usual guard.

:func:`segment_in_worker` is what the widget's thread worker runs: it relays
the engine's progress to the main thread and times the run. This module
imports no napari, Qt or magicgui (the child imports it).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Generator
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..core.drawn import DrawnShapes
from ..core.params import SegmentationParams
from ..core.pipeline import Progress, SegmentationResult
from ..core.progress import SegmentationCancelled, relay
from .clock import HEARTBEAT, REPORT_EVERY, Heartbeat, ProgressClock
from .serve import EngineError, iter_frames_recorded, serve
from .shared import LocalBlock, SharedArray, SharedBlock, new_block, remove_stale_blocks

__all__ = [
    "HEARTBEAT",
    "REPORT_EVERY",
    "EngineError",
    "EngineProcess",
    "iter_frames_recorded",
    "run_seconds",
    "segment_in_worker",
]

_USE_SUBPROCESS = os.name == "posix"


class EngineProcess:
    """A child process that runs :func:`iter_segment` jobs, driven like the generator.

    Examples
    --------
    >>> engine = EngineProcess()
    >>> engine.start()              # optional: warm up in the background   # doctest: +SKIP
    >>> params = SegmentationParams(n_clusters=4)
    >>> result = run_to_end(engine.steps(image, mask, params))  # doctest: +SKIP
    >>> engine.close()                                                       # doctest: +SKIP
    """

    def __init__(self):
        self._process = None
        self._conn = None
        self._busy = False  # a job was sent and its last reply not read
        self._ready = False  # the child said it is ready (imports and warm-up done)
        self._drain = None  # the thread that reads a cancelled job's last reply
        # Held while the child is swapped: the GUI thread (close) and a drain thread (restart) may both do it.
        self._lock = threading.RLock()
        self.started_job_at = None  # perf_counter() when the child took the last job
        remove_stale_blocks()  # those of a napari that was killed before it could free them

    @property
    def state(self) -> str:
        """What the engine is doing: "stopped", "starting", "idle", "running" or "cancelling"."""
        if not self.running:
            return "stopped"
        if self._drain is not None and self._drain.is_alive():
            return "cancelling"
        if self._busy:
            return "running"
        return "idle" if self._ready else "starting"

    def start(self) -> None:
        """Start the child if it is not running (returns at once; imports happen in the child)."""
        with self._lock:
            if self.running:
                return
            self._ready = False
            self._spawn()

    def _spawn(self) -> None:
        if _USE_SUBPROCESS:
            parent, child = socket.socketpair()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "napari_spectral_seg._widget.engine", str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )
            child.close()  # the child holds the only other end: EOF means it died
            self._conn = Connection(parent.detach())
        else:  # pragma: no cover - Windows
            ctx = mp.get_context("spawn")
            parent, child = ctx.Pipe(duplex=True)
            self._process = ctx.Process(target=serve, args=(child,), daemon=True, name="spectral-seg-engine")
            self._process.start()
            child.close()
            self._conn = parent

    @property
    def pid(self) -> int | None:
        """Process id of the child, or None if it is not running."""
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        process = self._process
        if process is None:
            return False
        return process.poll() is None if _USE_SUBPROCESS else process.is_alive()

    def _exit_code(self, process):
        if _USE_SUBPROCESS:
            try:
                return process.wait(1)
            except subprocess.TimeoutExpired:
                return None
        process.join(1)  # pragma: no cover - Windows
        return process.exitcode  # pragma: no cover

    def steps(
        self,
        image: Any,
        mask: Any,
        params: SegmentationParams,
        heartbeat: float = 0.05,
        spatial_ndim: int | None = None,
        *,
        cancel: threading.Event | None = None,
        out: SharedArray | None = None,
    ) -> Generator[Progress | str | None, None, SegmentationResult]:
        """Run one segmentation in the child and relay its progress.

        Parameters
        ----------
        image, mask
            As for :func:`iter_segment` (copied to the child), or
            :class:`SharedArray` blocks the child maps.
        params : SegmentationParams
            The parameters of the run (sent to the child as they are).
        heartbeat : float
            Seconds between ``None`` items when the child has nothing to say.
        spatial_ndim : int, optional
            Segment every frame of a stack, frames of this many axes (see
            :func:`iter_frames_recorded`): the result's labels are the
            whole stack's, its parameters each frame's.
        cancel : threading.Event, optional
            Set it to cancel the job: the child stops at once and stays
            ready for the next job (see :meth:`run`).
        out : SharedArray, optional
            A block of the labels' shape and dtype (int32) for the child
            to write the labels into: the result's ``labels`` is then this
            :class:`SharedArray`, the array itself never pickled.

        Yields
        ------
        Progress, str or None
            A ``str`` is a warning from the pipeline (e.g. a constant image)
            for the user. ``None`` is a heartbeat, so a consumer that checks for
            cancellation between items (napari's generator worker) can stop
            promptly. Closing the generator before the result terminates the
            child (it is busy with the abandoned job).

        Returns
        -------
        SegmentationResult

        Raises
        ------
        SegmentationCancelled
            ``cancel`` was set before the result came.
        """
        if not isinstance(params, SegmentationParams):
            raise TypeError(f"params must be a SegmentationParams, not {type(params).__name__}.")
        kind, options = ("segment", {}) if spatial_ndim is None else ("frames", {"spatial_ndim": spatial_ndim})
        if out is not None:
            options["out"] = out
        return (yield from self.run(kind, image, mask, params, options, heartbeat=heartbeat, cancel=cancel))

    def run(
        self,
        kind: str,
        image: Any,
        mask: Any,
        params: SegmentationParams | dict,
        options: dict | None = None,
        *,
        heartbeat: float = 0.05,
        cancel: threading.Event | None = None,
    ) -> Generator[Progress | str | None, None, Any]:
        """Run one job of ``kind`` ("segment", "frames", "split", "merge") in the child; see :meth:`steps`.

        The job is sent once the child is ready (started, and done with a
        cancelled job's last reply). A set ``cancel`` raises
        :class:`SegmentationCancelled` within a heartbeat, whatever the child
        is doing: a child still starting goes on starting, a job taken is
        interrupted (SIGINT: it stops at the next Python instruction and the
        child, imports and all, serves the next job) and its last reply is
        read by a background thread (:meth:`_drain_after_cancel`), which
        replaces a child that does not answer within :data:`CANCEL_GRACE`
        seconds (stuck in one long native call, or frozen).
        """
        if self._busy:  # an abandoned job not closed yet: its replies must not reach this one
            self.restart()
        yield from self._until_ready(cancel, heartbeat)
        conn, process = self._conn, self._process
        finished = False
        self.started_job_at = None
        self._busy = True
        try:
            conn.send((kind, image, mask, params, options or {}))
            while True:
                if cancel is not None and cancel.is_set():
                    finished = True  # the drain thread owns the job's replies now
                    self._drain_after_cancel(process, conn, interrupted=self.started_job_at is not None)
                    raise SegmentationCancelled("cancelled")
                if not conn.poll(heartbeat):
                    yield None
                    continue
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    finished = True
                    raise EngineError(
                        f"the segmentation process stopped unexpectedly (exit code "
                        f"{self._exit_code(process)}); the image may be too large for memory."
                    ) from None
                if kind == "started":  # the child took the job: the wait for its start-up is over
                    self.started_job_at = time.perf_counter()
                    continue
                if kind in ("progress", "warning"):
                    yield payload  # a warning is a str: the consumer shows it (the widget on its main thread)
                    continue
                finished = True
                if kind == "result":
                    return payload
                if kind == "cancelled":
                    raise SegmentationCancelled("cancelled")
                raise payload
        finally:
            if self._process is process:
                self._busy = False
            # An abandoned job (the generator closed) leaves the child busy: stop it,
            # unless a later job already replaced it.
            if not finished and self._process is process:
                self.terminate()

    def _until_ready(self, cancel: threading.Event | None, heartbeat: float) -> Generator[None, None, None]:
        """Wait (yielding heartbeats) until a cancelled job's reply is read and the child said it is ready.

        A set ``cancel`` stops the wait at once and leaves the engine as it
        is: still starting, it will be ready for the next job.
        """

        def cancelled():
            if cancel is not None and cancel.is_set():
                raise SegmentationCancelled("cancelled before the engine was ready")

        while (drain := self._drain) is not None and drain.is_alive():
            cancelled()
            drain.join(heartbeat)
            yield None
        self.start()
        conn, process = self._conn, self._process
        while not self._ready:
            cancelled()
            if conn is None or self._conn is not conn:  # closed (the widget went away) or replaced meanwhile
                raise SegmentationCancelled("the engine was stopped")
            try:
                if not conn.poll(heartbeat):
                    yield None
                    continue
                kind, _ = conn.recv()
            except (EOFError, OSError):
                raise EngineError(
                    f"the segmentation process stopped unexpectedly while starting (exit code {self._exit_code(process)})."
                ) from None
            if kind == "ready":
                self._ready = True

    def _drain_after_cancel(self, process, conn, *, interrupted: bool) -> None:
        """Read a cancelled job's replies in the background, until its last one; the caller returns at once.

        A job sent but not yet taken is interrupted when the child takes it
        (a signal before would be lost). A child that gives no last reply
        within :data:`CANCEL_GRACE` seconds of the interrupt is stopped and
        a fresh one started, here, so the next Run finds it starting or ready.
        """
        self._busy = False
        if interrupted:
            self._interrupt(process)

        def drain():
            nonlocal interrupted
            deadline = time.monotonic() + CANCEL_GRACE
            while time.monotonic() < deadline:
                try:
                    if not conn.poll(0.05):
                        continue
                    kind, _ = conn.recv()
                except (EOFError, OSError, ValueError):  # the child died, or the engine was closed
                    break
                if kind == "started" and not interrupted:
                    self._interrupt(process)
                    interrupted, deadline = True, time.monotonic() + CANCEL_GRACE
                elif kind in ("result", "cancelled", "error"):
                    return  # the warm child is free again
            with self._lock:
                if self._process is process:  # not closed or replaced meanwhile
                    self.restart()

        self._drain = threading.Thread(target=drain, name="spectral-seg-engine-drain", daemon=True)
        self._drain.start()

    def _interrupt(self, process) -> None:
        """Ask the child to drop its job (it stays up); on Windows, stop it."""
        if _USE_SUBPROCESS and process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
        else:  # pragma: no cover - Windows: no SIGINT to a child; the next job starts a fresh one
            self.terminate()

    def terminate(self) -> None:
        """Stop the child; the next job starts a fresh one. Never waits.

        The child gets SIGTERM at once; a background thread waits for it
        and kills it if it has not exited after :data:`KILL_AFTER` seconds
        (a frozen child: stopped, or stuck in native code), so a caller on
        the GUI thread never blocks.
        """
        with self._lock:
            process, self._process = self._process, None
            self._busy = self._ready = False
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        if process is not None:
            _stop_in_background(process, polite=False)

    def restart(self) -> None:
        """Stop the child and start a fresh one at once (it warms up while the user looks)."""
        with self._lock:
            self.terminate()
            self.start()

    def close(self) -> None:
        """Ask the child to exit (used when the widget goes away); never waits.

        The child is asked to quit, and stopped or killed by a background
        thread if it has not exited within :data:`KILL_AFTER` seconds.
        """
        with self._lock:
            process, conn = self._process, self._conn
            self._process, self._conn, self._busy, self._ready = None, None, False, False
        if process is None:
            return
        try:
            conn.send(("quit",))
        except (OSError, ValueError):
            pass
        conn.close()
        _stop_in_background(process, polite=True)


# Seconds a stopped child gets to exit before it is killed.
KILL_AFTER = 1.0
# Seconds a cancelled job gets to stop before its engine is replaced by a fresh one.
# One numpy call on a 8192^2 image (the mask step's checks) can take seconds under load.
CANCEL_GRACE = 5.0


def _stop_in_background(process, *, polite: bool) -> threading.Thread:
    """End ``process`` off the caller's thread: SIGTERM (unless ``polite``: it was asked to quit), then SIGKILL."""

    def stop():
        if _USE_SUBPROCESS:
            if not polite and process.poll() is None:
                process.terminate()
            try:
                process.wait(KILL_AFTER)
            except subprocess.TimeoutExpired:
                process.kill()  # frozen: SIGKILL also ends a stopped process
                process.wait()
        else:  # pragma: no cover - Windows
            if not polite and process.is_alive():
                process.terminate()
            process.join(KILL_AFTER)
            if process.is_alive():
                process.kill()
                process.join()

    thread = threading.Thread(target=stop, name="spectral-seg-engine-stop", daemon=True)
    thread.start()
    return thread


def run_seconds(seconds: dict) -> float:
    """The run's own time: wall time from the click minus the wait for the engine to start."""
    return seconds.get("wall", seconds.get("total", 0.0)) - seconds.get("engine_start", 0.0)


def labels_shape(image_shape: tuple, params: SegmentationParams) -> tuple:
    """Shape of the labels of an image (or stack) of ``image_shape``: its shape without the channel axis."""
    shape = list(image_shape)
    if params.channel_axis is not None:
        del shape[params.channel_axis]
    return tuple(shape)


def shared_copy(
    source: Any, what: str, cancel: threading.Event | None = None, blocks: list | None = None, owner=None
) -> Generator[Progress, None, SharedBlock]:
    """Copy a layer's array (numpy, dask, zarr...) into a new block, a slab at a time.

    The block is shared memory, or this process's memory when shared memory
    has no room for it (:func:`~.shared.new_block`).

    What the worker thread does instead of the GUI thread materialising
    the array: each slab is read (a dask slab computed) on its own, with
    a "reading" progress item after it. The block is appended to
    ``blocks`` at once, so the caller frees it whatever happens; ``owner``
    (the engine) lets the widget free it on closing (:func:`~.shared.close_all_blocks`).

    Raises
    ------
    SegmentationCancelled
        ``cancel`` was set while reading.
    """
    block = new_block(source.shape, source.dtype, owner)
    if blocks is not None:
        blocks.append(block)
    for done, total in block.fill(source, cancelled=None if cancel is None else cancel.is_set):
        yield Progress("reading", 0.0, f"{what}: part {done} of {total}")
    if cancel is not None and cancel.is_set():
        raise SegmentationCancelled("cancelled while reading the layer")
    return block


def segment_in_worker(
    engine: EngineProcess,
    image: Any,
    mask: Any,
    params: SegmentationParams,
    spatial_ndim: int | None = None,
    stack_parameters: dict | None = None,
    cancel: threading.Event | None = None,
) -> Generator[Progress | str | Heartbeat, None, SegmentationResult]:
    """Run one job on ``engine``, relaying its progress; what the widget's thread worker runs.

    The worker thread reads the layers' arrays into shared memory and
    relays: the computation happens in the engine's child process, so the
    GUI's interpreter (GIL) stays free, and no array is pickled.

    Parameters
    ----------
    engine : EngineProcess
        The engine to run on.
    image, mask
        The layers' arrays (numpy, dask, zarr, a lazy frame of a stack),
        read here a slab at a time; a mask may be :class:`DrawnShapes`,
        sent as they are and rasterised by the engine.
    params, spatial_ndim
        As for :meth:`EngineProcess.steps`.
    stack_parameters : dict, optional
        With ``spatial_ndim``: the parameters to record with the stack's
        labels (the engine returns the label array alone).
    cancel : threading.Event, optional
        Set to stop the job: between slabs while reading, at once in the engine.

    Yields
    ------
    Progress, str or Heartbeat
        The engine's updates, with the time so far and left once the run
        is past a second (:class:`ProgressClock`), the last one repeated at
        least every second; :data:`HEARTBEAT` where there is nothing new.

    Returns
    -------
    SegmentationResult
        With ``seconds["wall"]`` (from the call), ``seconds["reading"]``
        and ``seconds["engine_start"]`` (the wait for the engine's first message).
    """
    started = time.perf_counter()
    first_message = []
    clock = ProgressClock(Progress("mask", 0.0, "waiting for the engine to start"))

    def note(update):  # the relay's transform: time the first message, name the heartbeat, add the time left
        if update is None:
            if engine.started_job_at is not None:
                clock.taken(engine.started_job_at)
            return clock.heartbeat()
        if not first_message:
            first_message.append(time.perf_counter())
        return clock.update(update) if isinstance(update, Progress) else update

    engine.start()  # it imports while the layers are read
    blocks = []
    try:
        image_block = yield from shared_copy(image, "image", cancel, blocks, engine)
        mask_block = None
        if mask is not None and not isinstance(mask, DrawnShapes):  # drawn shapes: the engine rasterises them
            mask_block = yield from shared_copy(mask, "mask", cancel, blocks, engine)
        out = new_block(labels_shape(image_block.shape, params), np.int32, engine)
        blocks.append(out)
        sent = time.perf_counter()
        steps = engine.steps(
            image_block.shared,
            mask if mask_block is None else mask_block.shared,
            params,
            spatial_ndim=spatial_ndim,
            cancel=cancel,
            out=None if isinstance(out, LocalBlock) else out.shared,
        )
        result = yield from relay(steps, note)
        if isinstance(result.labels, SharedArray):
            result.labels = out.copy_out()
    finally:
        for block in blocks:
            block.close()
    if spatial_ndim is not None:  # a label stack: the stack's parameters, and each frame's
        result.parameters = {**(stack_parameters or {}), **result.parameters}
    ended = time.perf_counter()
    result.seconds.update(wall=ended - started, reading=sent - started)
    # Until the engine's first message, the run waited for the engine to
    # start (only right after the widget opened): shown apart, so a tiny
    # image does not look like it took two seconds to segment.
    taken = engine.started_job_at or (first_message[0] if first_message else ended)
    result.seconds["engine_start"] = max(taken - sent, 0.0)
    return result


if __name__ == "__main__":  # the engine child: python -m napari_spectral_seg._widget.engine FD
    # Through the package module, so what the child pickles (EngineError)
    # names a module the parent can import, not "__main__".
    from napari_spectral_seg._widget.serve import serve as serve_jobs

    serve_jobs(Connection(int(sys.argv[1])))
