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
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Generator
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..core.measure import measure_frames
from ..core.params import SegmentationParams, check_random_state
from ..core.pipeline import EmptyMaskError, Progress, SegmentationResult, iter_segment
from ..core.progress import relay, run_to_end


def iter_frames_recorded(image, mask=None, *, spatial_ndim: int, **kwargs):
    """Every frame of a stack segmented on its own, with each frame's parameters recorded.

    The labels equal :func:`napari_spectral_seg.core.frames.iter_segment_frames`'s
    for a channel-last stack (the widget's): one seed for every frame, a
    frame with nothing to segment all 0. The result's ``parameters`` hold
    ``per_frame``: frame index (as text) -> ``threshold_used``,
    ``n_segments`` and ``random_state``.
    """
    params = SegmentationParams(**kwargs)
    params = params.replace(random_state=check_random_state(params.random_state))
    shape = tuple(np.shape(image))
    non_channel = shape[:-1] if params.channel_axis is not None else shape
    leading, spatial = non_channel[: len(non_channel) - spatial_ndim], non_channel[len(non_channel) - spatial_ndim :]
    mask = None if mask is None else np.asarray(mask)
    labels = np.zeros(leading + spatial, dtype=np.int32)
    frames = list(np.ndindex(*leading))
    per_frame = {}
    for i, index in enumerate(frames):
        frame_mask = None if mask is None else (mask if mask.shape == spatial else mask[index])

        def in_stack(update, i=i, index=index):
            n = len(frames)
            return Progress(update.step, (i + update.fraction) / n, f"frame {index} ({i + 1} of {n}): {update.message}")

        record = {"random_state": params.random_state, "threshold_used": None, "n_segments": 0}
        try:
            result = yield from relay(iter_segment(image[index], frame_mask, params), in_stack)
        except EmptyMaskError:
            pass  # nothing in this frame: labels stay 0
        else:
            labels[index] = result.labels
            record.update(threshold_used=result.parameters["threshold_used"], n_segments=int(result.labels.max()))
        per_frame[str(tuple(int(v) for v in index))] = record
    return SegmentationResult(labels=labels, parameters={"per_frame": per_frame})


def measure_result(result: SegmentationResult, image, params: SegmentationParams, spatial_ndim: int | None) -> dict:
    """The per-object table of a job's labels, measured here in the engine (never on the GUI thread).

    Sizes and centroids in units of ``params.spacing`` (the layer's scale),
    centroids from the frame's pixel 0: the widget adds the layer's
    translate. A stack's table has a ``frame`` column.
    """
    return measure_frames(
        result.labels, image, spatial_ndim=spatial_ndim, spacing=params.spacing, channel_axis=params.channel_axis
    )


# What a job may run: one image, or every frame of a stack.
_JOBS = {"segment": iter_segment, "frames": iter_frames_recorded}

__all__ = ["HEARTBEAT", "EngineError", "EngineProcess", "iter_frames_recorded", "run_seconds", "segment_in_worker"]

_USE_SUBPROCESS = os.name == "posix"


class EngineError(Exception):
    """The engine process failed (died, or raised an error that cannot be sent back).

    Deliberately not a RuntimeError: napari's generator worker swallows
    RuntimeErrors as "worker deleted" and would never report the failure.
    """


def _serve(conn):
    # The child's loop: one job at a time until "quit" or the pipe closes.
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "quit":
            return
        kind, image, mask, params, options = message
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                steps = _JOBS[kind](image, mask, **params.as_kwargs(), **options)
                result = run_to_end(steps, progress=lambda update: conn.send(("progress", update)))
                conn.send(("progress", Progress("labels", 1.0, "measuring the objects")))
                result.measurements = measure_result(result, image, params, options.get("spatial_ndim"))
            # Warnings (constant image, solver fallback) go to the user, not the child's stderr.
            for item in caught:
                conn.send(("warning", str(item.message)))
            conn.send(("result", result))
        except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
            try:
                conn.send(("error", exc))
            except (EOFError, OSError):
                return  # the parent has gone
            except Exception:  # an exception that does not pickle
                conn.send(("error", EngineError(f"{type(exc).__name__}: {exc}")))


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
            self._process = ctx.Process(target=_serve, args=(child,), daemon=True, name="spectral-seg-engine")
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
        heartbeat: float = 0.1,
        spatial_ndim: int | None = None,
    ) -> Generator[Progress | str | None, None, SegmentationResult]:
        """Run one segmentation in the child and relay its progress.

        Parameters
        ----------
        image, mask
            As for :func:`iter_segment` (copied to the child).
        params : SegmentationParams
            The parameters of the run (sent to the child as they are).
        heartbeat : float
            Seconds between ``None`` items when the child has nothing to say.
        spatial_ndim : int, optional
            Segment every frame of a stack, frames of this many axes (see
            :func:`iter_frames_recorded`): the result's labels are the
            whole stack's, its parameters each frame's.

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
        """
        if not isinstance(params, SegmentationParams):
            raise TypeError(f"params must be a SegmentationParams, not {type(params).__name__}.")
        kind, options = ("segment", {}) if spatial_ndim is None else ("frames", {"spatial_ndim": spatial_ndim})
        self.start()
        conn, process = self._conn, self._process
        finished = False
        try:
            conn.send((kind, image, mask, params, options))
            while True:
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
                if kind == "progress":
                    yield payload
                    continue
                if kind == "warning":
                    yield payload  # a str: the consumer shows it (the widget on its main thread)
                    continue
                finished = True
                if kind == "result":
                    return payload
                raise payload
        finally:
            # An abandoned job (cancel) leaves the child busy: stop it, unless
            # a later job already replaced it.
            if not finished and self._process is process:
                self.terminate()

    def terminate(self) -> None:
        """Stop the child; the next job starts a fresh one. Never waits.

        The child gets SIGTERM at once; a background thread waits for it
        and kills it if it has not exited after :data:`KILL_AFTER` seconds
        (a frozen child: stopped, or stuck in native code), so a caller on
        the GUI thread never blocks.
        """
        process, self._process = self._process, None
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
        self._process, self._conn = None, None
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


def run_seconds(seconds: dict) -> float:
    """The run's own time: wall time from the click minus the wait for the engine to start."""
    return seconds.get("wall", seconds.get("total", 0.0)) - seconds.get("engine_start", 0.0)


def segment_in_worker(
    engine: EngineProcess,
    image: Any,
    mask: Any,
    params: SegmentationParams,
    spatial_ndim: int | None = None,
    stack_parameters: dict | None = None,
) -> Generator[Progress | str | Heartbeat, None, SegmentationResult]:
    """Run one job on ``engine``, relaying its progress; what the widget's thread worker runs.

    The worker thread only relays: the computation happens in the engine's
    child process, so the GUI's interpreter (GIL) stays free.

    Parameters
    ----------
    engine : EngineProcess
        The engine to run on.
    image, mask, params, spatial_ndim
        As for :meth:`EngineProcess.steps`.
    stack_parameters : dict, optional
        With ``spatial_ndim``: the parameters to record with the stack's
        labels (the engine returns the label array alone).

    Yields
    ------
    Progress, str or Heartbeat
        The engine's updates; :data:`HEARTBEAT` where it sent ``None``.

    Returns
    -------
    SegmentationResult
        With ``seconds["wall"]`` (from the call) and
        ``seconds["engine_start"]`` (the wait for the engine's first message).
    """
    started = time.perf_counter()
    first_message = []

    def note(update):  # the relay's transform: time the first message, name the heartbeat
        if update is None:
            return HEARTBEAT
        if not first_message:
            first_message.append(time.perf_counter())
        return update

    steps = engine.steps(image, mask, params, spatial_ndim=spatial_ndim)
    result = yield from relay(steps, note)
    if spatial_ndim is not None:  # a label stack: the stack's parameters, and each frame's
        result.parameters = {**(stack_parameters or {}), **result.parameters}
    ended = time.perf_counter()
    result.seconds["wall"] = ended - started
    # Until the engine's first message, the run waited for the engine to
    # start (only right after the widget opened): shown apart, so a tiny
    # image does not look like it took two seconds to segment.
    result.seconds["engine_start"] = (first_message[0] if first_message else ended) - started
    return result


if __name__ == "__main__":  # the engine child: python -m napari_spectral_seg._widget.engine FD
    # Through the package module, so what the child pickles (EngineError)
    # names a module the parent can import, not "__main__".
    from napari_spectral_seg._widget.engine import _serve as serve

    serve(Connection(int(sys.argv[1])))
