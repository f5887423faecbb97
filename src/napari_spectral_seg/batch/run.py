"""Running a batch: the dask client, one task per frame, results collected as they come, the summary."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid

import numpy as np

from ..core.params import SegmentationParams
from ..flag_words import for_command_line
from ..io import InputError, file_identity, listing_digest, same_content
from . import cluster
from .heartbeat import EVERY_SECONDS
from .lock import output_lock
from .plan import InputItem, check_outputs_differ, expand_inputs, make_output_dir, plan_batch
from .recipe import check_recipe
from .store import finish, flush_progress, open_partial_zarr, record_table
from .task import run_frame

__all__ = ["BatchInterrupted", "run_batch"]


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch; the message says what is complete and how to resume."""


def run_batch(
    inputs,
    out_dir,
    params: SegmentationParams,
    spatial_ndim: int,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    stream=None,
) -> tuple[int, list]:
    """Segment every frame of every input on a dask cluster and write the outputs.

    Parameters
    ----------
    inputs : list of str
        Files or glob patterns.
    out_dir : path-like
        Output directory (created if missing).
    params : SegmentationParams
        E.g. from :func:`resolve_parameters`; handed to every task as it is.
    spatial_ndim : {2, 3}
        Axes of a frame; leading axes beyond it are a series.
    scheduler : str, optional
        Address of a running dask scheduler; None starts a local cluster of
        ``workers`` processes with one thread each.
    workers : int, optional
        Local cluster size (default: the number of CPUs).
    overwrite : bool
        Redo inputs whose output is already complete, and replace outputs
        that were not written by napari-spectral-seg (refused without it).
    progress : bool
        Show a progress bar on stderr.
    stream : file, optional
        Where the summary table goes (stdout).

    Returns
    -------
    exit_code : int
        0 if every input is written or skipped, 1 if any failed.
    items : list of InputItem
        Per input: path, output, status, reason, frames, segments, seconds.

    Raises
    ------
    InputError, BatchError
        Usage errors: nothing to do, clashing output names, another run
        writing into ``out_dir`` (its lock), no scheduler answering, a local
        cluster that cannot start.
    BatchInterrupted
        Ctrl-C: complete outputs are kept, a zarr series keeps its finished frames.
    """
    check_recipe(params, spatial_ndim)
    t0 = time.perf_counter()
    left_out = []
    paths = expand_inputs(inputs, out_dir=out_dir, left_out=left_out)
    check_outputs_differ(paths, out_dir)
    if scheduler:  # before the inputs are read and hashed: a wrong address is said within seconds
        cluster.check_scheduler(scheduler)
    if left_out:
        _say(
            f"note: left out {len(left_out)} file(s) the inputs match that a batch wrote (inside --out {out_dir}, "
            f"or labels of napari-spectral-seg), e.g. {left_out[0]}"
        )
    out_dir = make_output_dir(out_dir)
    with output_lock(out_dir):
        items = plan_batch(paths, out_dir, params, spatial_ndim, overwrite)
        run = _Run(items, spatial_ndim, progress, "scheduler" if scheduler else "local")
        for item in items:
            if item.status == "failed":
                run.report_failure(item, item.reason)
            elif item.notice:
                _say(f"{item.path}: {item.notice}")
        todo = [item for item in items if item.status == "pending"]
        if todo:
            _run_on_cluster(run, todo, scheduler, workers)
        print(summary(items, time.perf_counter() - t0), file=stream or sys.stdout)
    return (1 if any(item.status == "failed" for item in items) else 0), items


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _run_on_cluster(run: _Run, todo: list[InputItem], scheduler: str | None, workers: int | None) -> None:
    """Submit every frame of ``todo`` and collect the results; Ctrl-C (or SIGTERM) keeps what is complete."""
    try:
        with contextlib.ExitStack() as resources:  # closed in reverse: bar, client, cluster
            client = cluster.connect(scheduler, workers or os.cpu_count() or 1, resources, say=_say)
            run.submit(client, todo)
            resources.enter_context(run.open_bar())
            run.collect(client, todo)
    except KeyboardInterrupt:
        written, kept = run.keep_finished_frames()
        partial = (
            f"the finished frames of {kept} zarr series kept in their hidden partial store"
            if kept
            else "no partial file left"
        )
        raise BatchInterrupted(
            f"interrupted; {written} output(s) complete and {partial}; run the same command again to resume."
        ) from None


def _task_key(path) -> str:
    """A dask key for one frame of ``path``: unique (other clients may share the scheduler) and valid UTF-8.

    A file name that is not UTF-8 (bytes kept as surrogates) cannot be sent
    to the scheduler as it is: its odd bytes are written as escapes.
    """
    stem = path.stem.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"segment-{stem}-{uuid.uuid4().hex}"


class _Run:
    """The frames in flight of one batch, the progress bar, and what happens as each frame ends."""

    def __init__(self, items: list[InputItem], spatial_ndim: int, progress: bool, where: str = "local"):
        self.items = items
        self.spatial_ndim = spatial_ndim
        self.progress = progress
        self.where = where  # "local" or "scheduler": how long a cluster without workers is waited for
        self.futures = {}  # future -> (item, frame index)
        self.flushed = {}  # id(item) -> time of the last flush of its done frames
        self.warned = {}  # id(item) -> the warnings said for it
        self.bar = None

    def report_failure(self, item: InputItem, reason: str, say: bool = True) -> None:
        reason = for_command_line(reason)  # "pass --threshold none", not "pass threshold=None"
        item.fail(reason)
        item.labels = None
        if item.partial is not None and item.partial.exists():
            flush_progress(item)  # keep its finished frames for the next run
        if say:
            self.say(f"failed: {item.path}: {reason}")

    def report_warnings(self, item: InputItem, messages) -> None:
        """A frame's warnings (an image constant inside its mask...): one line each, once per input."""
        said = self.warned.setdefault(id(item), set())
        for message in messages:
            if message not in said:
                said.add(message)
                self.say(f"warning: {item.path}: {for_command_line(message)}")

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def submit(self, client, todo: list[InputItem]) -> None:
        """One task per frame not done yet; a zarr input gets its partial store first."""
        for item in todo:
            item.status = "running"
            done, out_zarr = set(), None
            if item.kind == "zarr":
                done = open_partial_zarr(item, self.spatial_ndim)
                out_zarr = str(item.partial)
            for index in item.indices:
                if index in done:
                    continue
                future = client.submit(
                    run_frame,
                    str(item.path),
                    item.kind,
                    index,
                    item.params,
                    out_zarr,
                    pure=False,
                    key=_task_key(item.path),
                )
                self.futures[future] = (item, index)

    def open_bar(self):
        from tqdm import tqdm

        self.bar = tqdm(
            total=len(self.futures), unit="frame", file=sys.stderr, disable=not self.progress, dynamic_ncols=True
        )
        self.postfix()
        return self.bar

    def postfix(self) -> None:
        states = [item.status for item in self.items]
        self.bar.set_postfix_str(
            f"inputs done {states.count('written') + states.count('skipped')}, "
            f"failed {states.count('failed')}, remaining {states.count('running')}"
        )

    def collect(self, client, todo: list[InputItem]) -> None:
        """Take every frame's result as it comes; write each input once all its frames are in.

        While no frame finishes, the workers are counted: a cluster left
        without any for ``cluster.NO_WORKERS_TIMEOUT`` seconds fails the
        inputs still running, each with one line.
        """
        from distributed import as_completed

        for item in todo:  # inputs whose remaining frames were all done in an earlier run
            if item.status == "running" and len(item.infos) == item.n_frames:
                self.complete(item)
        pending = as_completed(list(self.futures))
        watch = cluster.WorkerWatch(client, cluster.NO_WORKERS_TIMEOUT[self.where], local=self.where == "local")
        total, last_news = len(self.futures), time.monotonic()
        while not pending.is_empty():
            done = pending.next_batch(block=False)
            if not done:
                reason = watch.stalled()
                if reason is not None:
                    return self.give_up(client, reason)
                if time.monotonic() - last_news >= EVERY_SECONDS:  # a long frame: say the run goes on
                    last_news = time.monotonic()
                    self.say(f"still segmenting: {total - len(self.futures)} of {total} frame(s) done")
                time.sleep(0.05)
                continue
            last_news = time.monotonic()
            for future in done:
                item, index = self.futures.pop(future)
                if item.status == "running":
                    self.take(client, future, item, index)
                else:  # a frame of an input that already failed
                    future.cancel()
                self.bar.update(1)
            self.postfix()

    def give_up(self, client, reason: str) -> None:
        """Fail every input still running with ``reason`` and cancel its frames; one line says which and why."""
        client.cancel(list(self.futures))
        stopped = [item for item in self.items if item.status == "running"]
        for item in stopped:
            self.report_failure(item, reason, say=False)
        names = ", ".join(item.path.name for item in stopped[:5])
        names += f" and {len(stopped) - 5} more" if len(stopped) > 5 else ""
        complete = sum(item.status in ("written", "skipped") for item in self.items)
        self.say(f"stopped: {len(stopped)} input(s) not done ({names}), {complete} complete and kept: {reason}")
        self.futures.clear()
        self.postfix()

    def take(self, client, future, item: InputItem, index: tuple) -> None:
        """One frame's result: kept (or its failure reported, and the input's other frames cancelled)."""
        try:
            labels, info = future.result()
            error = info.get("error")
        except Exception as exc:  # the cluster's failure (a killed worker...), not the frame's
            error = cluster.failure_reason(exc)
        if error is not None:
            where = f"frame {index}: " if index else ""
            self.report_failure(item, f"{where}{error}")
            client.cancel([other for other, (owner, _) in self.futures.items() if owner is item])
            return
        self.report_warnings(item, info.pop("warnings", ()))
        record_table(item, index, info.pop("measurements", None))
        item.infos[index] = info
        if labels is not None:
            if item.labels is None:  # allocated on the first frame, not for queued inputs
                item.labels = np.zeros(item.shape[: len(index)] + labels.shape, labels.dtype)
            item.labels[index if index else ...] = labels
        else:
            flush_progress(item, self.flushed)
        if len(item.infos) == item.n_frames:
            self.complete(item)

    def complete(self, item: InputItem) -> None:
        changed = changed_since_planned(item)
        if changed:
            return self.report_failure(item, changed)
        try:
            finish(item, self.spatial_ndim)
            item.status = "written"
        except InputError as exc:  # names the output and why, already
            self.report_failure(item, str(exc).rstrip("."))
        except Exception as exc:
            self.report_failure(item, f"cannot write {item.output} ({exc})")

    def keep_finished_frames(self) -> tuple[int, int]:
        """After Ctrl-C: record the finished frames of the zarr series still running.

        Returns the number of outputs written and of partial zarr stores kept.
        """
        kept = 0
        for item in self.items:
            if item.status == "running" and item.partial is not None and item.partial.exists():
                flush_progress(item)
                kept += 1
        return sum(item.status == "written" for item in self.items), kept


def changed_since_planned(item: InputItem) -> str | None:
    """Why an input's frames may mix two contents (its bytes changed since it was hashed), or None.

    A file's size and time are compared first, a zarr store's listing (each
    file's path, size and time: the folder keeps its time when a chunk is
    rewritten); only when they differ is it hashed again.
    """
    identity = item.identity or {}
    if not identity:
        return None
    try:
        stat = os.stat(item.path)
    except OSError:  # removed: the frames read are those of the content planned, or failed when read
        return None
    try:
        if item.path.is_dir():
            if "listing" not in identity or listing_digest(item.path) == identity["listing"]:
                return None
        elif (stat.st_size, stat.st_mtime_ns) == (identity.get("size"), identity.get("mtime_ns")):
            return None
        # touched, or rewritten: only other bytes matter
        if same_content(identity, file_identity(item.path)):
            return None
    except OSError:
        pass
    return (
        "it changed while the batch ran (other bytes than when it was read), so its frames may come from two "
        "versions; nothing was written: run the same command again"
    )


def summary(items: list[InputItem], wall: float) -> str:
    """The table printed at the end: per input its frames, objects, seconds and status, then the counts."""
    rows = [("input", "frames", "objects", "seconds", "status")]
    for item in items:
        status = item.status if item.status != "failed" else f"failed: {item.reason}"
        objects = str(item.n_segments) if item.infos else "-"
        seconds = f"{item.seconds:.2f}" if item.infos else "-"
        rows.append((item.path.name, str(item.n_frames or "-"), objects, seconds, status))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join([row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in (1, 2, 3)] + [row[4]]) for row in rows
    ]
    counts = {s: sum(item.status == s for item in items) for s in ("written", "skipped", "failed")}
    lines.append(
        f"{len(items)} input(s): {counts['written']} written, {counts['skipped']} skipped "
        f"(already complete), {counts['failed']} failed; {wall:.1f} s"
    )
    return "\n".join(lines)
