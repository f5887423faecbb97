"""The dask cluster of a batch: a local one, or a running scheduler checked before use, and its workers watched.

Nothing here waits without a bound: a scheduler address must answer within
:data:`SCHEDULER_TIMEOUT`, a local cluster that cannot start its workers is
one line, and a batch left without any worker (killed, e.g. out of memory,
and not restarted) fails its remaining inputs after :data:`NO_WORKERS_TIMEOUT`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from .heartbeat import phase
from .plan import BatchError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["NO_WORKERS_TIMEOUT", "SCHEDULER_TIMEOUT", "WorkerWatch", "check_scheduler", "connect", "failure_reason"]

# Seconds a --scheduler address has to answer as a dask scheduler.
SCHEDULER_TIMEOUT = 10.0
# Seconds a batch waits while the cluster has no worker at all: a local
# cluster's nannies restart a killed worker within seconds, a remote cluster
# may be scaling up.
NO_WORKERS_TIMEOUT = {"local": 20.0, "scheduler": 120.0}
# How often the workers are counted while no frame finishes.
_WATCH_INTERVAL = 1.0
# Seconds given to closing a local cluster interrupted while it started.
_CLOSE_TIMEOUT = 5.0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _tcp_refused(address: str, timeout: float) -> str | None:
    """Why nothing could be reached at a ``tcp://`` address (None: something accepts connections there)."""
    import socket

    from distributed.comm import parse_address, parse_host_port

    protocol, location = parse_address(address)
    if protocol != "tcp":
        return None
    host, port = parse_host_port(location)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or _one_line(exc)
    return None


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Refuse a ``--scheduler`` address that does not answer as a dask scheduler within ``timeout`` seconds.

    Raises
    ------
    BatchError
        One line naming ``--scheduler``: nothing listens there, or it does
        not answer (a port that accepts connections but never speaks dask).
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutureTimeout

    from distributed.core import rpc
    from distributed.security import Security

    async def identity():
        remote = rpc(address, timeout=timeout, connection_args=Security().get_connection_args("client"))
        try:
            return await asyncio.wait_for(remote.identity(), timeout)
        finally:
            await remote.close_rpc()

    fix = "check the address and that `dask scheduler` runs there."
    try:
        refused = _tcp_refused(address, timeout)
        if refused is not None:
            raise BatchError(f"--scheduler {address}: cannot connect ({refused}); {fix}")
        # In a thread of its own: a caller's running event loop (Jupyter) is not disturbed.
        with ThreadPoolExecutor(max_workers=1) as pool:
            answer = pool.submit(asyncio.run, identity()).result(timeout=timeout + 5)
    except BatchError:
        raise
    except (asyncio.TimeoutError, TimeoutError, FutureTimeout):
        raise BatchError(
            f"--scheduler {address}: no answer within {timeout:.0f} s (it accepts connections but is not "
            f"a dask scheduler, or is stuck); {fix}"
        ) from None
    except Exception as exc:
        raise BatchError(f"--scheduler {address}: cannot connect ({_one_line(exc)}); {fix}") from exc
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        kind = answer.get("type") if isinstance(answer, dict) else type(answer).__name__
        raise BatchError(f"--scheduler {address}: answers as a {kind}, not a dask scheduler; {fix}")


def connect(scheduler: str | None, workers: int, resources: contextlib.ExitStack, say=None) -> Client:
    """A dask client: to ``scheduler`` if given, else to a new local cluster; closed with ``resources``.

    ``say`` (a callable taking one line, optional) hears that a local
    cluster is starting, at once and every few seconds while it lasts
    (:mod:`.heartbeat`); a scheduler answers within its timeout.

    A scheduler address is checked with :func:`check_scheduler` first (by
    :func:`~napari_spectral_seg.batch.run_batch`, before it reads the inputs).

    Raises
    ------
    BatchError
        The scheduler cannot be connected to, or the local cluster cannot
        start (its workers die at start-up).
    """
    from distributed import Client

    if scheduler:
        try:
            return resources.enter_context(Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT:.0f}s"))
        except Exception as exc:
            raise BatchError(f"--scheduler {scheduler}: cannot connect ({_one_line(exc)}).") from exc
    # Processes with one thread each: the pipeline holds the GIL in places,
    # and one BLAS thread per worker avoids oversubscribing the cores. The
    # scheduler's HTTP server (no dashboard) takes a free local port, so a
    # busy :8787 (another cluster) gives no warning; worker and nanny logs
    # are silenced: failures are reported per input, in one line.
    try:
        with phase(say, f"starting {workers} local dask worker process(es)"):
            cluster = resources.enter_context(
                _start_local_cluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.CRITICAL,
                )
            )
    except Exception as exc:
        raise BatchError(
            f"cannot start a local dask cluster of {workers} worker process(es) ({_one_line(exc)}): a worker died "
            "at start-up; check the free memory and the dask configuration (e.g. a preload), or use --scheduler."
        ) from exc
    return resources.enter_context(Client(cluster))


def _start_local_cluster(**options):
    """``LocalCluster(**options)``; one interrupted while it starts (Ctrl-C, SIGTERM) is closed here, then forgotten.

    Its constructor had not returned, so nothing else holds it, and
    distributed's exit hook would try to close it again: a half-started
    cluster fails that with a traceback after the command's last line.
    """
    from distributed import LocalCluster
    from distributed.deploy.spec import SpecCluster

    before = set(SpecCluster._instances)
    try:
        return LocalCluster(**options)
    except KeyboardInterrupt:
        for half_started in set(SpecCluster._instances) - before:
            with contextlib.suppress(Exception):  # its workers may still be starting: close what there is
                half_started.close(timeout=_CLOSE_TIMEOUT)
            SpecCluster._instances.discard(half_started)
        raise


def failure_reason(exc: BaseException) -> str:
    """A frame's failure on the cluster, in one line (a killed worker is said as such)."""
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return (
            "the worker process segmenting it died every time it was tried (killed, e.g. out of memory); "
            "see the workers' logs, or try fewer --workers"
        )
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class WorkerWatch:
    """Counts the cluster's workers while no frame finishes; says when it has had none for too long."""

    def __init__(self, client, limit: float, local: bool = False):
        self.client = client
        self.limit = limit
        self.local = local  # our own cluster: its nannies gave up, not the user's
        self.checked = 0.0
        self.none_since = None

    def stalled(self) -> str | None:
        """None while the batch can go on; else why it cannot (no worker for ``limit`` seconds)."""
        now = time.monotonic()
        if now - self.checked < _WATCH_INTERVAL:
            return None
        self.checked = now
        try:
            n_workers = len(self.client.nthreads())
        except Exception:
            n_workers = 0  # the scheduler cannot be asked: no worker to rely on either
        if n_workers:
            self.none_since = None
            return None
        self.none_since = self.none_since or now
        if now - self.none_since < self.limit:
            return None
        fix = (
            "check the free memory or try fewer --workers, then re-run the same command to resume"
            if self.local
            else "start workers again and re-run to resume"
        )
        return f"the dask cluster has had no worker for {self.limit:.0f} s (killed, e.g. out of memory, and not restarted); {fix}"
