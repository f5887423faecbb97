"""The engine child's side: the loop that serves the widget's jobs, one at a time.

The child (``python -m napari_spectral_seg._widget.engine FD``, see
:mod:`.engine`) reads a job, runs it and sends its progress, warnings and
result back. Images come as :class:`~.shared.SharedArray` blocks the widget
filled (mapped here, never pickled), and the labels go into a block the
widget made for them. A SIGINT from the widget (Cancel) stops the job at
once and the child serves the next one: the imports and warm-up are not paid
again.

This module imports no napari, Qt or magicgui.
"""

from __future__ import annotations

import os
import signal
import warnings

import numpy as np

from ..core.drawn import DrawnShapes
from ..core.edit import merge_labels, split_label
from ..core.measure import measure_frames
from ..core.params import SegmentationParams, check_random_state
from ..core.pipeline import EmptyMaskError, Progress, SegmentationResult, iter_segment
from ..core.progress import relay, run_to_end, wait_for_left_steps
from .shared import SharedArray, slab_bounds

__all__ = ["EngineError", "iter_frames_recorded", "serve", "warm_up"]


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


# What a job may run: one image, or every frame of a stack.
_JOBS = {"segment": iter_segment, "frames": iter_frames_recorded}


def _split_job(image, labels, **kwargs):
    """A click-split: :func:`split_label` (no progress: one segment)."""
    yield from ()
    return split_label(image, labels, **kwargs)


def _merge_job(image, labels, **kwargs):
    """A click-merge: :func:`merge_labels`."""
    yield from ()
    return merge_labels(labels, **kwargs)


# What a job may run: one image, every frame of a stack, or a click edit.
_JOBS = {"segment": iter_segment, "frames": iter_frames_recorded, "split": _split_job, "merge": _merge_job}
# Jobs whose labels get a measurement table.
_MEASURED = ("segment", "frames")


# The measurements' share of a job's time (a few percent at 1600 x 1600).
_MEASURE_SHARE = 0.03


def _scaled(update, scale: float):
    """A progress update with its fraction scaled by ``scale`` (warnings and other items as they are)."""
    if not isinstance(update, Progress) or scale == 1.0:
        return update
    return Progress(update.step, update.fraction * scale, update.message)


def measure_result(result: SegmentationResult, image, params: SegmentationParams, spatial_ndim: int | None) -> dict:
    """The per-object table of a job's labels, measured here in the engine (never on the GUI thread).

    Sizes and centroids in units of ``params.spacing`` (the layer's scale),
    centroids from the frame's pixel 0: the widget adds the layer's
    translate. A stack's table has a ``frame`` column.
    """
    return measure_frames(
        result.labels, image, spatial_ndim=spatial_ndim, spacing=params.spacing, channel_axis=params.channel_axis
    )


def warm_up() -> None:
    """Pay what the first segmentation of a process pays, before the first job comes.

    The child does this right after it starts, while the user looks at
    the widget (:func:`napari_spectral_seg.core.warm.warm_up`); a failure
    here only means the first job pays it.
    """
    from ..core.warm import warm_up as warm_core

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warm_core()
    except Exception:  # noqa: BLE001 - the first job will show any real problem
        pass


class EngineError(Exception):
    """The engine process failed (died, or raised an error that cannot be sent back).

    Deliberately not a RuntimeError: napari's generator worker swallows
    RuntimeErrors as "worker deleted" and would never report the failure.
    """


class _Interrupted(BaseException):
    """Raised in the engine when the widget cancels a job (SIGINT).

    A BaseException, so that no ``except Exception`` of the pipeline (a
    solver fallback) swallows the cancel.
    """


class _Interrupts:
    """The engine's SIGINT handler: stops the running job, never a message half sent.

    Armed only while a job runs; a signal that comes while a message is
    being sent is held until the send is done.
    """

    def __init__(self) -> None:
        self.armed = False
        self.pending = False

    def __call__(self, signum, frame) -> None:
        if self.armed:
            self.armed = False
            raise _Interrupted
        self.pending = True

    def start_job(self) -> None:
        self.pending = False
        self.armed = True

    def send(self, conn, message) -> None:
        """Send ``message`` whole; a cancel that came meanwhile stops the job after it."""
        armed, self.armed = self.armed, False
        conn.send(message)
        if armed and self.pending:
            self.pending = False
            raise _Interrupted
        self.armed = armed


def _opened(item):
    """A job's array: a shared block mapped, drawn shapes rasterised (here, not on the GUI thread)."""
    if isinstance(item, DrawnShapes):
        return item.rasterise()
    return item.open() if isinstance(item, SharedArray) else item


def _deliver(result, out: SharedArray | None):
    """Write the labels into the widget's block ``out`` (if they fit it) and send only its description."""
    labels = getattr(result, "labels", None)
    if out is None or not isinstance(labels, np.ndarray):
        return result
    if labels.shape != tuple(out.shape) or labels.dtype != np.dtype(out.dtype):
        return result  # unexpected shape: the labels travel through the socket
    target = out.open()
    for start, stop in slab_bounds(labels):
        target[start:stop] = labels[start:stop]
    result.labels = out
    return result


def _serve_job(conn, message, interrupts: _Interrupts) -> None:
    kind, image, mask, params, options = message
    options = dict(options)
    out = options.pop("out", None)
    interrupts.start_job()
    try:
        # At once, so the widget tells the wait for the engine's start-up from the job's own time.
        interrupts.send(conn, ("started", None))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kwargs = params.as_kwargs() if isinstance(params, SegmentationParams) else dict(params)
            image = _opened(image)
            steps = _JOBS[kind](image, _opened(mask), **kwargs, **options)
            # The measurements come after the segmentation's own 100 %: its fractions are scaled below them.
            scale = 1.0 - _MEASURE_SHARE if kind in _MEASURED else 1.0
            result = run_to_end(
                steps, progress=lambda update: interrupts.send(conn, ("progress", _scaled(update, scale)))
            )
            if kind in _MEASURED:
                interrupts.send(conn, ("progress", Progress("labels", scale, "measuring the objects")))
                result.measurements = measure_result(result, image, params, options.get("spatial_ndim"))
                interrupts.send(conn, ("progress", Progress("labels", 1.0, "done")))
            result = _deliver(result, out)
        interrupts.armed = False
        # Warnings (constant image, solver fallback) go to the user, not the child's stderr.
        for item in caught:
            conn.send(("warning", str(item.message)))
        conn.send(("result", result))
    except _Interrupted:
        interrupts.armed = False
        wait_for_left_steps()  # not free before the dropped job's native call ends (or the widget replaces us)
        conn.send(("cancelled", None))
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        interrupts.armed = False
        try:
            conn.send(("error", exc))
        except (EOFError, OSError):
            raise
        except Exception:  # an exception that does not pickle
            conn.send(("error", EngineError(f"{type(exc).__name__}: {exc}")))


def serve(conn) -> None:
    """The child's loop: serve jobs from ``conn`` until \"quit\" or the pipe closes."""
    interrupts = _Interrupts()
    if os.name == "posix":
        signal.signal(signal.SIGINT, interrupts)
    warm_up()
    conn.send(("ready", None))  # the widget sends no job before this: a Cancel meanwhile has nothing to stop
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "quit":
            return
        try:
            _serve_job(conn, message, interrupts)
        except _Interrupted:  # a cancel between the job's end and its last message
            wait_for_left_steps()
            conn.send(("cancelled", None))
        except (EOFError, OSError):
            return  # the parent has gone
