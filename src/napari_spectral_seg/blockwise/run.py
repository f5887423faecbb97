"""``segment_blockwise``: the whole run, from the input store to the renamed OME-Zarr output.

1. Open the input (metadata only) and check the parameters.
2. In ``.<output>.partial`` beside the output: the resume state
   (``_blockwise/state.json``: input identity, parameters, whole-image
   decisions) and one record per finished block (``_blockwise/blocks``). A
   state for another input or other parameters is discarded.
3. Whole-image decisions (:mod:`.whole`), unless the state has them.
4. One task per foreground block without a record (:mod:`.block`).
5. Chunks painted from the records and written as ``labels/<name>``
   (:mod:`.assemble`); the scratch directory removed; the partial store
   renamed to the output (an output replaced with ``overwrite`` is first
   moved aside, then deleted), or, when the output is the input, its
   ``labels/<name>`` renamed into the input (:mod:`.into`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..batch.heartbeat import phase
from ..core.adapt import no_objects_error
from ..core.params import SegmentationParams, check_random_state, check_spacing
from ..core.result import EmptyMaskError
from ..io import check_written_by_us, is_inside
from .block import BlockPlan, block_summary, read_record, record_path, segment_block
from .cancel import CancellableClient, check_cancel, wait_or_cancel
from .grid import block_grid
from .into import labels_partial, move_into_input, open_partial_group, writes_into_input
from .source import open_source

__all__ = ["BlockwiseError", "segment_blockwise"]

_STATE = "state.json"
# Raised whenever the whole-image decisions gain or change one the blocks depend on: a
# state of another format is decided afresh, never resumed without it (2: the dim search;
# 3: the typical size from the whole image, no longer from the central sample).
_STATE_FORMAT = 3
# What the polarity and background decisions record with the labels, as in memory.
CORRECTION_KEYS = ("polarity_used", "background_used", "background_range")
# What auto mode's field rule records with the labels, as in memory.
FIELD_RULE_KEYS = ("foreground_contrast", "threshold_rule")
# A block's overlap may double, for a piece that needs it, up to this many
# times the default overlap or this fraction of the block size, the larger.
_MAX_OVERLAP_FACTOR = 4
_MAX_OVERLAP_PER_BLOCK = 0.5


class BlockwiseError(ValueError):
    """A blockwise run that cannot go ahead; the message names the parameter or path and the fix."""


def _check_params(params: SegmentationParams, source) -> SegmentationParams:
    """Refuse what blockwise cannot do as in memory; resolve the seed and the spacing."""
    if params.threshold is None:
        raise BlockwiseError(
            "threshold=None segments the whole image as one piece, which no block can hold; "
            "pass threshold='otsu' (--threshold otsu) or a number."
        )
    if params.seeds is not None:
        raise BlockwiseError("seeds (seed points) are not supported blockwise; segment in memory to use them.")
    if params.channel_axis is not None:
        raise BlockwiseError("channel_axis: blockwise segmentation takes single-channel images; pass one channel.")
    spacing = params.spacing if params.spacing is not None else source.scale
    if spacing is not None:
        check_spacing(spacing, source.ndim)
        spacing = tuple(float(v) for v in spacing)
    return params.replace(random_state=check_random_state(params.random_state), spacing=spacing)


def max_overlap(overlap: int, block_size: int) -> int:
    """The largest overlap a block may grow to (see :mod:`.block`)."""
    return int(max(_MAX_OVERLAP_FACTOR * overlap, _MAX_OVERLAP_PER_BLOCK * block_size))


def _state_key(source, params, block_size, overlap, sample_pixels) -> dict:
    return dict(
        state_format=_STATE_FORMAT,
        input=source.identity(),
        level=source.level,
        parameters=params.record(random_state=params.random_state),
        block_size=list(np.broadcast_to(block_size, (source.ndim,)).tolist()),
        overlap=overlap,
        sample_pixels=sample_pixels,
    )


def _write_json(path: Path, value) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(json.dumps(value, indent=1))
    os.replace(temporary, path)


def _prepare(partial: Path, key: dict):
    """The scratch directory and the state found there (None: start afresh)."""
    scratch = partial / "_blockwise"
    state_path = scratch / _STATE
    if state_path.exists():
        with contextlib.suppress(ValueError, OSError):
            state = json.loads(state_path.read_text())
            if state.get("key") == json.loads(json.dumps(key)):
                return scratch, state
    if partial.exists():
        shutil.rmtree(partial)
    (scratch / "blocks").mkdir(parents=True)
    return scratch, None


def _check_output(output: Path, overwrite: bool) -> None:
    if output.suffix != ".zarr":
        raise BlockwiseError(f"-o {output}: a blockwise output is an OME-Zarr store; name it *.zarr.")
    if not output.parent.is_dir():
        raise BlockwiseError(f"-o {output}: the folder {output.parent} does not exist.")
    if output.exists() and not overwrite:
        check_written_by_us(output, "another -o", BlockwiseError)  # another's store is named as such
        raise BlockwiseError(f"-o {output} exists; pass --overwrite (overwrite=True) to replace it, or another -o.")


def _check_not_nested(output: Path, input_path) -> None:
    """An output inside the input's store would be written among its arrays; the input inside it, removed with it."""
    if is_inside(output, input_path):
        raise BlockwiseError(f"-o {output} is inside the input {input_path}: pass an -o outside it.")
    if is_inside(input_path, output):
        raise BlockwiseError(
            f"-o {output} holds the input {input_path}: writing it would replace the input; pass an -o outside it "
            "(or the OME-Zarr image itself as -o to add labels/NAME to it)."
        )


def _run_blocks(client, plan: BlockPlan, todo: list, progress, cancel=None, watch=None, report=None) -> dict:
    """Every block of ``todo`` on the cluster; their summaries by key (reported as they finish).

    Without ``progress``, ``report`` hears of a block pass that goes on (every few seconds).
    """
    if progress is not None:
        progress(0, len(todo))
    futures = {client.submit(segment_block, plan, block, pure=False): block for block in todo}
    summaries = {}
    pending = set(futures)
    going_on = phase(
        report if progress is None else None,
        f"segmenting {len(todo)} block(s)",
        at_once=False,
        detail=lambda: f"{len(summaries)} done",
    )
    try:
        with going_on:
            while pending:
                finished, pending = wait_or_cancel(list(pending), cancel, return_when="FIRST_COMPLETED", watch=watch)
                for future in finished:
                    block = futures[future]
                    try:
                        summaries[block.key] = future.result()
                    except Exception as exc:
                        raise BlockwiseError(f"block {block.key}: {_one_line(exc)}") from exc
                    if progress is not None:
                        progress(len(summaries), len(todo))
    finally:
        for future in futures:
            future.cancel()
    return summaries


def _one_line(exc: BaseException) -> str:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return "its worker died every time it was tried (killed, e.g. out of memory); try a smaller --block-size"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _done_summaries(records: Path, blocks) -> dict:
    """Summaries of the blocks whose record exists (a resumed run)."""
    summaries = {}
    for block in blocks:
        path = record_path(records, block)
        if path.exists():
            summaries[block.key] = block_summary(read_record(path), block, reused=True)
    return summaries


def _client(resources, client, scheduler, workers, report=None):
    """The run's dask client, and the watch that stops it once the cluster has had no worker for too long.

    A caller's ``client`` is not watched (None): its cluster may start with
    no worker and wait in a queue for them (adaptive, jobqueue).
    """
    from ..batch.cluster import NO_WORKERS_TIMEOUT, WorkerWatch, check_scheduler, connect

    if client is not None:
        return client, None
    local = not scheduler  # our own cluster: its nannies restart killed workers, or give up
    if scheduler:
        check_scheduler(scheduler)
    client = connect(scheduler, workers or os.cpu_count() or 1, resources, say=report)
    return client, WorkerWatch(client, NO_WORKERS_TIMEOUT["local" if local else "scheduler"], local=local)


def segment_blockwise(
    input,
    output,
    *,
    block_size: int = 1024,
    params: SegmentationParams | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    level: int = 0,
    name: str = "spectral",
    overlap: int | None = None,
    sample_pixels: int | None = None,
    overwrite: bool = False,
    progress=None,
    cancel=None,
    report=None,
    **parameters,
) -> dict:
    """Segment an image larger than memory block by block on a dask cluster; write OME-Zarr labels.

    Parameters
    ----------
    input : str or Path
        A zarr array, an OME-Zarr image group (``level`` picks the
        resolution) or a TIFF (read lazily). Workers read it; the client
        reads only its metadata.
    output : str or Path
        The ``.zarr`` store to write; the labels are its ``labels/<name>``
        (an OME-Zarr multiscale labels image with the input's axes and
        voxel sizes, the parameters in its ``spectral_seg`` attribute).
        The input itself (an OME-Zarr image): the labels go into its
        ``labels/<name>``, its arrays and other labels untouched (see
        :mod:`.into`).
    block_size : int
        Pixels per axis of a block's core; a worker's memory grows with
        ``(block_size + 2 * overlap) ** ndim``.
    params : SegmentationParams, optional
        The parameters; default ``SegmentationParams()`` (the
        command line's), replaced by keyword ``parameters``.
    workers, scheduler, client
        A local cluster of ``workers`` processes (default: one per CPU), a
        running scheduler's address, or a ``distributed.Client`` to use.
        The run stops (finished blocks kept) once its own local cluster has
        had no worker for 20 s, or ``scheduler``'s for 120 s
        (``batch.cluster.NO_WORKERS_TIMEOUT``); a ``client``'s cluster is
        not watched, so one that waits for workers (adaptive, jobqueue) can.
    level : int
        OME-Zarr resolution level of the input.
    name : str
        Name of the labels image (``--labels-name``).
    overlap : int, optional
        Pixels each block reads beyond its core on every side (default:
        six typical object sides, square roots of the typical area, plus
        the smoothing's reach); doubled for a block, up to four times that
        or half ``block_size``, when a piece it keeps needs more.
    sample_pixels : int, optional
        Size of the central sample ``sigma="auto"``, ``min_size="auto"``,
        ``polarity`` and ``background`` "auto" are measured on (default:
        four blocks' worth; the whole image when it is that small). Auto
        mode's typical object size is measured on the whole image.
    overwrite : bool
        Replace an existing output (or the input's ``labels/<name>``).
    progress : callable, optional
        ``progress(done, total)`` when the blocks start (``done`` 0) and
        after each block.
    report : callable, optional
        ``report(line)`` hears what a long phase does: that a local cluster
        starts (at once), and every few seconds while the cluster's start-up,
        the whole-image decisions, the blocks (without ``progress``) or the
        labels' write go on (:mod:`..batch.heartbeat`).
    cancel : threading.Event, optional
        Once set, the run stops within a fraction of a second (between
        decision passes or blocks) with :class:`~.cancel.BlockwiseCancelled`;
        finished blocks are kept and the same call resumes.

    Returns
    -------
    dict
        What was done: output, labels path, counts, decisions, seconds.

    Raises
    ------
    BlockwiseError, SourceError
        Parameters or paths that cannot work, a failed block.
    EmptyMaskError
        Auto mode found no objects (Otsu's threshold split noise and
        nothing stands out of it), as ``segment()``; nothing is left behind.
    BlockwiseCancelled
        ``cancel`` was set.
    """
    started = time.perf_counter()
    output = Path(output)
    source = open_source(input, level)
    base = params if params is not None else SegmentationParams()
    params = _check_params(base.replace(**parameters) if parameters else base, source)
    into = writes_into_input(source, output, name, overwrite, BlockwiseError)
    if not into:
        _check_not_nested(output, source.path)
        _check_output(output, overwrite)
    if int(block_size) < 16:
        raise BlockwiseError(f"block_size={block_size}: use at least 16 pixels (1024 is a good start).")
    blocks = block_grid(source.shape, block_size)
    partial = labels_partial(source, name) if into else output.with_name(f".{output.name}.partial")
    key = _state_key(source, params, block_size, overlap, sample_pixels)
    labels_path = connected = None
    try:
        with contextlib.ExitStack() as resources:
            # The cluster first: a refused --scheduler leaves no partial store behind.
            client, watch = connected = _client(resources, client, scheduler, workers, report)
            scratch, state = _prepare(partial, key)
            options = dict(
                block_size=block_size,
                overlap=overlap,
                sample_pixels=sample_pixels,
                progress=progress,
                cancel=cancel,
                watch=watch,
                report=report,
            )
            try:
                summary = _run(client, source, params, blocks, scratch, state, key, options)
            except EmptyMaskError:
                shutil.rmtree(partial, ignore_errors=True)  # nothing to resume: the field is empty
                raise
            target = dict(partial=partial, output=output, name=name, overwrite=overwrite, into=into)
            target.update(cancel=cancel, watch=watch, report=report)
            labels_path = _finish(client, source, params, blocks, scratch, summary, target)
    except KeyboardInterrupt as exc:
        if labels_path is not None:  # Ctrl-C or SIGTERM while the cluster shut down: the labels are complete
            raise KeyboardInterrupt(
                f"interrupted while the dask cluster shut down; the labels were written completely ({labels_path})."
            ) from exc
        if connected is None:  # no partial store yet: nothing to resume
            raise KeyboardInterrupt("interrupted while the dask cluster started; nothing was written.") from exc
        raise
    summary.update(output=str(output), labels=str(labels_path), seconds=time.perf_counter() - started)
    return summary


def _run(client, source, params, blocks, scratch: Path, state, key, options) -> dict:
    """Decisions (or those of the state) and the block pass; the run's summary."""
    from .correction import corrected_source, decide_correction
    from .whole import Decisions, decide_whole_image

    started = time.perf_counter()
    if state is None:
        cancellable = CancellableClient(client, options["cancel"], options["watch"])
        sizes = dict(block_size=options["block_size"], sample_pixels=options["sample_pixels"])
        with phase(
            options["report"], "deciding the threshold, smoothing and object size on the whole image", at_once=False
        ):
            correction = decide_correction(cancellable, source, blocks, params, params.spacing, scratch, **sizes)
            corrected_at = time.perf_counter()
            read = corrected_source(source, correction)
            decisions = decide_whole_image(
                cancellable, read, blocks, params, params.spacing, overlap=options["overlap"], scratch=scratch, **sizes
            )
        decisions.correction = correction
        decisions.seconds["correction"] = round(corrected_at - started, 3)
        _write_json(scratch / _STATE, dict(key=key, decisions=decisions.as_json()))
    else:
        decisions = Decisions.from_json(state["decisions"])
        read = corrected_source(source, decisions.correction or {})
    fixed = params.replace(
        # The blocks read corrected pixels (read): bright objects on a flat background.
        polarity="bright",
        background="flat",
        threshold=decisions.threshold,
        min_size=decisions.min_size,
        sigma=None,
        edge_level=decisions.edge_level_used if params.n_clusters == "auto" else params.edge_level,
        # A whole-image count of segments is shared out between the pieces:
        # blockwise, each piece is one segment (checked below).
        n_clusters="auto" if params.n_clusters == "auto" else 1,
        # The dim-object search runs with the whole image's decisions (plan.dim), none of a block's own.
        low_threshold=None,
    )
    block_size = int(options["block_size"])
    plan = BlockPlan(
        read,
        fixed,
        decisions.sigma,
        decisions.object_size,
        decisions.edge_background,
        decisions.overlap,
        max_overlap(decisions.overlap, block_size),
        str(scratch / "blocks"),
        decisions.dim,
    )
    records = scratch / "blocks"
    decided = time.perf_counter()
    done = _done_summaries(records, blocks)
    foreground = set(decisions.foreground)
    rule = decisions.field_rule or {}
    if rule.get("threshold_rule") == "noise" and not foreground:
        raise no_objects_error(rule["contrast"])  # as in memory, before any block is segmented
    todo = [block for block in blocks if block.key in foreground and block.key not in done]
    passes = (options[name] for name in ("progress", "cancel", "watch", "report"))
    done.update(_run_blocks(client, plan, todo, *passes))
    check_cancel(options["cancel"])
    n_labels = sum(s["count"] for s in done.values())
    if rule.get("threshold_rule") == "noise" and n_labels == 0:
        # As in memory: the noise threshold left no piece of min_size pixels (the blocks kept every one).
        raise no_objects_error(rule["contrast"])
    if params.n_clusters != "auto" and n_labels < params.n_clusters:
        raise BlockwiseError(
            f"n_clusters={params.n_clusters}: the mask has only {n_labels} connected piece(s), so in memory some "
            "would be split; blockwise each piece is one segment. Use n_clusters='auto', or segment in memory."
        )
    return dict(
        blocks=len(blocks),
        foreground_blocks=len(foreground),
        skipped_blocks=len(blocks) - len(foreground),
        resumed_blocks=len(foreground) - len(todo),
        n_labels=n_labels,
        basin_cut_blocks=sorted(key for key, s in done.items() if s.get("basin_cut")),
        candidate_cut_blocks=sorted(key for key, s in done.items() if s.get("candidate_cut")),
        block_summaries=done,
        decisions=decisions.as_json(),
        parameters=_recorded(params, decisions, sum(s["dim_count"] for s in done.values())),
        phase_seconds=dict(decisions=decided - started, blocks=time.perf_counter() - decided),
    )


def _recorded(params, decisions, dim_objects: int) -> dict:
    """The parameters as recorded with the labels: as given, plus every value the run chose.

    ``dim_objects``: how many of the labels the dim-object search found (recorded where it ran).
    """
    recorded = params.record(random_state=params.random_state)
    recorded.update(decisions.scales)
    correction = decisions.correction or {}
    recorded.update({key: correction[key] for key in CORRECTION_KEYS if key in correction})
    rule = decisions.field_rule or {}
    recorded.update({key: rule[key] for key in FIELD_RULE_KEYS if key in rule})
    recorded.update(
        sigma_used=decisions.sigma_used,
        min_size_used=decisions.min_size,
        threshold_used=decisions.threshold,
        edge_background=decisions.edge_background,
        object_size=decisions.object_size,
        low_threshold_used=decisions.dim["low_threshold_used"] if decisions.dim is not None else None,
    )
    if decisions.dim is not None:
        recorded["dim_objects"] = dim_objects
    if params.n_clusters == "auto":
        recorded["edge_level"] = decisions.edge_level_used
    return recorded


def _finish(client, source, params, blocks, scratch: Path, summary, target: dict):
    """Paint and write the labels image into the partial store, drop the scratch, rename; the labels' path."""
    from .assemble import chunk_entries, labels_array, write_labels_image

    partial, output, name = target["partial"], target["output"], target["name"]
    block_size = [max(block.core[i][1] - block.core[i][0] for block in blocks) for i in range(source.ndim)]
    entries, total = chunk_entries(blocks, summary["block_summaries"], block_size, scratch / "blocks")
    level0 = labels_array(source.shape, block_size, entries)
    group = open_partial_group(partial, source if target["into"] else None, name)
    attributes = dict(
        summary["parameters"],
        input=str(source.path),
        level=source.level,
        block_size=block_size,
        n_segments=total,
        decisions=summary["decisions"],
    )
    started = time.perf_counter()
    compute = _watched_compute(client, target["cancel"], target["watch"])
    with phase(target["report"], "writing the labels image", at_once=False):
        summary["levels"] = write_labels_image(
            group, name, level0, source, params.spacing, block_size, attributes, compute
        )
    summary["phase_seconds"]["write"] = time.perf_counter() - started
    shutil.rmtree(scratch)
    if target["into"]:
        labels_path = move_into_input(partial, source, name)
        shutil.rmtree(partial)
        return labels_path
    _rename_into_place(partial, output, target["overwrite"])
    return output / "labels" / name


def _watched_compute(client, cancel, watch):
    """``compute(jobs)`` on this run's cluster (not the default client), waited on as the blocks are.

    Cancel and a cluster left without workers stop the wait as in the
    block pass (:func:`.cancel.wait_or_cancel`); a failed chunk write
    raises its error.
    """

    def compute(jobs) -> None:
        futures = client.compute(list(jobs))
        try:
            wait_or_cancel(futures, cancel, watch=watch)
            client.gather(futures)
        finally:
            for future in futures:
                future.cancel()

    return compute


def _rename_into_place(partial: Path, output: Path, overwrite: bool) -> None:
    if output.exists() and overwrite:
        old = output.with_name(f".{output.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(output, old)
        os.replace(partial, output)
        shutil.rmtree(old)
        return
    os.replace(partial, output)
