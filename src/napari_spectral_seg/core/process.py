"""Run the segmentation pipeline in a child process.

Why: scipy.sparse and pyamg hold the GIL for long stretches, so a thread
running the pipeline froze napari's event loop for up to 310 ms on a 512 x 512
image (bench/ui_latency.py). A child process leaves the GUI's interpreter
free, and cancelling it is immediate (terminate) instead of waiting for the
next step.

Processes come from a "forkserver" (Linux, macOS) that has the engine
imported once, so each run starts in tens of milliseconds and never forks
a process that runs Qt threads; elsewhere "spawn".
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Generator

import numpy as np

from .pipeline import Progress, SegmentationResult, iter_segment, run_to_end

__all__ = ["SegmentationProcess", "process_context"]

_CONTEXT = None


def process_context():
    """The multiprocessing context used for segmentation processes (created once)."""
    global _CONTEXT
    if _CONTEXT is None:
        if "forkserver" in mp.get_all_start_methods():
            _CONTEXT = mp.get_context("forkserver")
            _CONTEXT.set_forkserver_preload(["napari_spectral_seg.core"])
        else:  # pragma: no cover - Windows
            _CONTEXT = mp.get_context("spawn")
    return _CONTEXT


def _child_main(conn, image, mask, params):
    # Runs in the child: report progress and the result (or the error) over the pipe.
    try:
        result = run_to_end(
            iter_segment(image, mask, **params), progress=lambda update: conn.send(("progress", update))
        )
        conn.send(("result", result))
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        try:
            conn.send(("error", exc))
        except Exception:  # an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        conn.close()


class SegmentationProcess:
    """:func:`iter_segment` in a child process, driven like the generator itself.

    Parameters
    ----------
    image : ndarray
        Copied to the child.
    mask : ndarray of bool or None
    params : dict
        Keyword arguments of :func:`iter_segment`.

    Examples
    --------
    >>> job = SegmentationProcess(image, mask, dict(n_clusters=4))   # doctest: +SKIP
    >>> result = run_to_end(job.steps())                               # doctest: +SKIP
    """

    def __init__(self, image: np.ndarray, mask, params: dict):
        self._args = (image, mask, params)
        self._process = None

    def steps(self, heartbeat: float = 0.1) -> Generator[Progress | None, None, SegmentationResult]:
        """Start the child and relay its progress.

        Yields
        ------
        Progress or None
            ``None`` every ``heartbeat`` seconds without news, so a consumer
            that checks for cancellation between items (napari's generator
            worker) can stop promptly.

        Returns
        -------
        SegmentationResult
        """
        ctx = process_context()
        receiver, sender = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_child_main, args=(sender, *self._args), daemon=True)
        self._process.start()
        sender.close()  # the child holds the only writer: EOF means it died
        try:
            while True:
                if not receiver.poll(heartbeat):
                    if not self._process.is_alive() and not receiver.poll():
                        raise RuntimeError(
                            f"the segmentation process stopped unexpectedly (exit code "
                            f"{self._process.exitcode}); the image may be too large for memory."
                        )
                    yield None
                    continue
                try:
                    kind, payload = receiver.recv()
                except EOFError:
                    self._process.join(1)
                    raise RuntimeError(
                        f"the segmentation process stopped unexpectedly (exit code "
                        f"{self._process.exitcode}); the image may be too large for memory."
                    ) from None
                if kind == "progress":
                    yield payload
                elif kind == "result":
                    return payload
                else:
                    raise payload
        finally:
            receiver.close()
            self.terminate()

    def terminate(self) -> None:
        """Stop the child now (no-op if it has finished)."""
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(5)
            if process.is_alive():  # pragma: no cover - ignored SIGTERM
                process.kill()
                process.join(5)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()
