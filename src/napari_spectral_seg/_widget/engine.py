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
from .serve import EngineError, iter_frames_recorded, serve
from .shared import LocalBlock, SharedArray, SharedBlock, new_block, remove_stale_blocks

__all__ = ["HEARTBEAT", "EngineError", "EngineProcess", "iter_frames_recorded", "run_seconds", "segment_in_worker"]

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
        self.started_job_at = None  # perf_counter() when the child took the last job
        remove_stale_blocks()  # those of a napari that was killed before it could free them

    def start(self) -> None:
        """Start the child if it is not running (returns at once; imports happen in the child)."""
        if self.running:
            return
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

        A set ``cancel`` interrupts the child (SIGINT: the job stops at the
        next Python instruction and the child, imports and all, serves the
        next job), as soon as the child has taken the job (a child still
        starting finishes its start-up first). If the child does not answer
        within :data:`CANCEL_GRACE` seconds (stuck in one long native call),
        it is stopped and a fresh one started at once.
        """
        if self._busy:  # an abandoned job not closed yet: its replies must not reach this one
            self.restart()
        self.start()
        conn, process = self._conn, self._process
        finished, interrupted_at = False, None
        self.started_job_at = None
        self._busy = True
        try:
            conn.send((kind, image, mask, params, options or {}))
            while True:
                # Once the child has taken the job: a signal before would meet its start-up.
                if cancel is not None and cancel.is_set() and interrupted_at is None and self.started_job_at:
                    interrupted_at = time.monotonic()
                    self._interrupt(process)
                if interrupted_at is not None and time.monotonic() - interrupted_at > CANCEL_GRACE:
                    finished = True
                    if self._process is process:  # not already stopped (the widget closing)
                        self.restart()
                    raise SegmentationCancelled("cancelled (the engine was restarted)")
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
        process, self._process = self._process, None
        self._busy = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if process is not None:
            _stop_in_background(process, polite=False)

    def restart(self) -> None:
        """Stop the child and start a fresh one at once (it warms up while the user looks)."""
        self.terminate()
        self.start()

    def close(self) -> None:
        """Ask the child to exit (used when the widget goes away); never waits.

        The child is asked to quit, and stopped or killed by a background
        thread if it has not exited within :data:`KILL_AFTER` seconds.
        """
        process, conn = self._process, self._conn
        self._process, self._conn, self._busy = None, None, False
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
