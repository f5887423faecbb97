"""Run the segmentation pipeline in a long-lived child process.

Why: scipy.sparse and pyamg hold the GIL for long stretches, so a thread
running the pipeline froze napari's event loop for up to 310 ms on a 512 x 512
image (bench/ui_latency.py). A child process leaves the GUI's interpreter
free, and cancelling is immediate (terminate) instead of waiting for the
next step.

The child is started once and serves one job after another, so the engine's
imports (about 1.5 s) are paid once, in the background, not on every Run.
It comes from a "forkserver" started without preloading: that never forks a
process running Qt threads and, unlike "spawn", never re-runs the user's
``__main__`` script. (Windows has only "spawn": there, scripts that open the
widget need the usual ``if __name__ == "__main__":`` guard.)
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Generator

from .frames import iter_segment_frames
from .pipeline import Progress, SegmentationResult, iter_segment, run_to_end

# What a job may run: one image, or every frame of a stack.
_JOBS = {"segment": iter_segment, "frames": iter_segment_frames}

__all__ = ["EngineProcess"]


def _context():
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method)


def _serve(conn):
    # The child's loop: one job at a time until "quit" or the pipe closes.
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "quit":
            return
        kind, image, mask, params = message
        try:
            result = run_to_end(
                _JOBS[kind](image, mask, **params), progress=lambda update: conn.send(("progress", update))
            )
            conn.send(("result", result))
        except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
            try:
                conn.send(("error", exc))
            except (EOFError, OSError):
                return  # the parent has gone
            except Exception:  # an exception that does not pickle
                conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


class EngineProcess:
    """A child process that runs :func:`iter_segment` jobs, driven like the generator.

    Examples
    --------
    >>> engine = EngineProcess()
    >>> engine.start()              # optional: warm up in the background   # doctest: +SKIP
    >>> result = run_to_end(engine.steps(image, mask, dict(n_clusters=4)))  # doctest: +SKIP
    >>> engine.close()                                                       # doctest: +SKIP
    """

    def __init__(self):
        self._process = None
        self._conn = None

    def start(self) -> None:
        """Start the child if it is not running (returns at once; imports happen in the child)."""
        if self._process is not None and self._process.is_alive():
            return
        ctx = _context()
        parent, child = ctx.Pipe(duplex=True)
        self._process = ctx.Process(target=_serve, args=(child,), daemon=True, name="spectral-seg-engine")
        self._process.start()
        child.close()  # the child holds the only other end: EOF means it died
        self._conn = parent

    @property
    def pid(self) -> int | None:
        """Process id of the child, or None if it is not running."""
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.is_alive()

    def steps(
        self, image, mask, params: dict, heartbeat: float = 0.1, frames: bool = False
    ) -> Generator[Progress | None, None, SegmentationResult]:
        """Run one segmentation in the child and relay its progress.

        Parameters
        ----------
        image, mask
            As for :func:`iter_segment` (copied to the child).
        params : dict
            Keyword arguments of :func:`iter_segment` (or, with ``frames``,
            of :func:`iter_segment_frames`, ``spatial_ndim`` included).
        frames : bool
            Segment every frame of a stack; the result is then the label
            array of the whole stack instead of a SegmentationResult.
        heartbeat : float
            Seconds between ``None`` items when the child has nothing to say.

        Yields
        ------
        Progress or None
            ``None`` is a heartbeat, so a consumer that checks for
            cancellation between items (napari's generator worker) can stop
            promptly. Closing the generator before the result terminates the
            child (it is busy with the abandoned job).

        Returns
        -------
        SegmentationResult
        """
        self.start()
        conn, process = self._conn, self._process
        finished = False
        try:
            conn.send(("frames" if frames else "segment", image, mask, params))
            while True:
                if not conn.poll(heartbeat):
                    yield None
                    continue
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):
                    process.join(1)
                    finished = True
                    raise RuntimeError(
                        f"the segmentation process stopped unexpectedly (exit code "
                        f"{process.exitcode}); the image may be too large for memory."
                    ) from None
                if kind == "progress":
                    yield payload
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
        """Stop the child now; the next job starts a fresh one."""
        process, self._process = self._process, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if process is not None and process.is_alive():
            process.terminate()
            process.join(5)
            if process.is_alive():  # pragma: no cover - ignored SIGTERM
                process.kill()
                process.join(5)

    def close(self) -> None:
        """Ask the child to exit (used when the widget goes away)."""
        if self.running:
            try:
                self._conn.send(("quit",))
            except (OSError, ValueError):
                pass
            self._process.join(2)
        self.terminate()
