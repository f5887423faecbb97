"""Waiting for cluster tasks in a way a caller can interrupt: the widget's Cancel.

A blockwise run waits on futures in short steps and checks a ``cancel``
flag (anything with ``is_set()``, e.g. :class:`threading.Event`) between
them; once set, the pending tasks are cancelled and
:class:`BlockwiseCancelled` is raised. Finished blocks keep their records,
so the same call resumes the run. With a worker watch
(:class:`~napari_spectral_seg.batch.cluster.WorkerWatch`), a cluster left
without any worker for its limit (killed workers its nannies no longer
restart) stops the wait with a ``BatchError`` instead of waiting for ever.
"""

from __future__ import annotations

import asyncio

from ..batch.plan import BatchError
from ..core.progress import SegmentationCancelled

__all__ = ["BlockwiseCancelled", "CancellableClient", "check_cancel", "wait_or_cancel"]

# Seconds between two looks at the cancel flag while waiting on the cluster.
POLL_SECONDS = 0.25


class BlockwiseCancelled(SegmentationCancelled):
    """The run was cancelled; its finished blocks are kept and the same call resumes it."""


def check_cancel(cancel) -> None:
    """Raise :class:`BlockwiseCancelled` if ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise BlockwiseCancelled("blockwise run cancelled; finished blocks are kept: run it again to resume.")


def wait_or_cancel(futures, cancel, return_when: str = "ALL_COMPLETED", watch=None):
    """``distributed.wait`` in steps of :data:`POLL_SECONDS`, cancelling ``futures`` when ``cancel`` is set.

    Returns the ``(done, not_done)`` sets of ``distributed.wait``.

    Raises
    ------
    BlockwiseCancelled
        ``cancel`` was set.
    BatchError
        ``watch`` (a ``WorkerWatch``) saw no worker for its limit; the message says so.
    """
    from distributed import wait

    while True:
        try:
            check_cancel(cancel)
        except BlockwiseCancelled:
            for future in futures:
                future.cancel()
            raise
        polled = cancel is not None or watch is not None
        try:
            return wait(futures, timeout=POLL_SECONDS if polled else None, return_when=return_when)
        except (TimeoutError, asyncio.TimeoutError):
            stalled = watch.stalled() if watch is not None else None
            if stalled is not None:
                for future in futures:
                    future.cancel()
                raise BatchError(f"{stalled}; the finished blocks are kept.") from None


class CancellableClient:
    """A ``distributed.Client`` whose ``gather`` gives way to ``cancel`` (the rest passes through)."""

    def __init__(self, client, cancel, watch=None):
        self._client = client
        self._cancel = cancel
        self._watch = watch

    def submit(self, *args, **kwargs):
        return self._client.submit(*args, **kwargs)

    def scatter(self, data):
        return self._client.scatter(data)

    def gather(self, futures):
        single = not isinstance(futures, (list, tuple))
        wait_or_cancel([futures] if single else list(futures), self._cancel, watch=self._watch)
        return self._client.gather(futures)
