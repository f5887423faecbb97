"""The outputs of a batch: labels TIFFs (written through :mod:`napari_spectral_seg.io`), zarr
stores built by the workers, the measurement table next to each (``<stem>_labels.csv``), and
the record of finished frames (and their tables) that lets a run resume."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..core.measure import concatenate_tables, with_frame
from ..io import INPUT_IDENTITY_KEY, METADATA_KEY, TABLE_RECORD_KEY, same_content, write_labels
from ..tables import table_record, write_table
from .plan import InputItem, table_path
from .recipe import recorded_parameters

__all__ = [
    "ZARR_DONE_ATTR",
    "finish",
    "flush_progress",
    "open_partial_zarr",
    "output_parameters",
    "measurement_table",
    "record_table",
]

# The zarr attribute a partial output uses to remember finished frames across interrupted runs.
ZARR_DONE_ATTR = "spectral_seg_frames_done"
# Update a partial zarr's list of done frames at most this often: the list is
# only a resume hint, losing the last second of it costs a few recomputed frames.
_ZARR_FLUSH_INTERVAL = 2.0  # seconds


def output_parameters(item: InputItem, spatial_ndim: int) -> dict:
    """What a finished output stores: the recorded parameters, the input and every frame's info."""
    from .. import __version__

    infos = [item.infos[idx] for idx in item.indices]
    parameters = dict(
        recorded_parameters(item.params, spatial_ndim),
        input=str(item.path),
        frames=item.n_frames,
        n_segments=item.n_segments,
        seconds=round(item.seconds, 3),
        version=__version__,
    )
    if item.indices == [()]:
        parameters["threshold_used"] = infos[0]["threshold_used"]
    if item.voxel is not None:
        parameters["voxel_size"] = item.voxel.record()
    parameters["frame_info"] = infos
    return parameters


def open_partial_zarr(item: InputItem, spatial_ndim: int) -> set:
    """Create (or reopen, to resume) the zarr an input's workers write into.

    It is ``DIR/.<name>.partial.zarr``, chunked one frame per chunk.

    Returns
    -------
    set of tuple
        Frames already done in an earlier, interrupted run (their infos are
        added to ``item.infos``).
    """
    import zarr

    item.partial = item.output.with_name(f".{item.output.name}.partial.zarr")
    request = recorded_parameters(item.params, spatial_ndim)
    shape = tuple(item.shape[: len(item.indices[0])]) + item.spatial_shape
    if item.partial.exists():
        done = _resumable_frames(item, shape, request)
        if done is not None:
            tables = _read_partial_tables(item)
            done = {index: info for index, info in done.items() if index in tables}  # no table: redo the frame
            item.infos.update(done)
            item.tables.update({index: tables[index] for index in done})
            return set(done)
        shutil.rmtree(item.partial)
    _partial_tables(item).unlink(missing_ok=True)
    chunks = (1,) * (len(shape) - len(item.spatial_shape)) + item.spatial_shape
    array = zarr.open_array(str(item.partial), mode="w", shape=shape, chunks=chunks, dtype="int32", fill_value=0)
    array.attrs[METADATA_KEY] = request
    array.attrs[INPUT_IDENTITY_KEY] = item.identity
    array.attrs[ZARR_DONE_ATTR] = []
    return set()


def _resumable_frames(item: InputItem, shape: tuple, request: dict) -> dict | None:
    """The frames a partial zarr of an earlier run holds (index -> info), or None if it cannot be resumed."""
    import zarr

    try:
        array = zarr.open_array(str(item.partial), mode="r+")
        stored = dict(array.attrs)
        if array.shape != shape or stored.get(METADATA_KEY) != request:
            return None
        if not same_content(stored.get(INPUT_IDENTITY_KEY), item.identity):  # the input changed: start again
            return None
        return {tuple(info["index"]): info for info in stored.get(ZARR_DONE_ATTR, [])}
    except Exception:
        return None  # unreadable leftovers: start again


def flush_progress(item: InputItem, last: dict | None = None) -> None:
    """Record an input's finished frames in its partial zarr.

    With ``last`` (a dict of input id -> time of its last flush), at most
    once every ``_ZARR_FLUSH_INTERVAL`` seconds per input.
    """
    if last is not None:
        if time.monotonic() - last.get(id(item), 0) <= _ZARR_FLUSH_INTERVAL:
            return
        last[id(item)] = time.monotonic()
    import zarr

    array = zarr.open_array(str(item.partial), mode="r+")
    array.attrs[ZARR_DONE_ATTR] = list(item.infos.values())


def _partial_tables(item: InputItem) -> Path:
    """Where a zarr series keeps its finished frames' tables until it is complete (one JSON line per frame)."""
    return item.output.with_name(f".{item.output.name}.partial.measurements.jsonl")


def record_table(item: InputItem, index: tuple, table: dict | None) -> None:
    """Keep one frame's measurement table; a zarr series also appends it to its resume record."""
    if table is None:
        return
    item.tables[index] = table
    if item.kind == "zarr":
        line = {"index": list(index), "columns": {k: [str(v.dtype), v.tolist()] for k, v in table.items()}}
        with open(_partial_tables(item), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


def _read_partial_tables(item: InputItem) -> dict:
    """The tables :func:`record_table` appended in an earlier run (a line cut short by a crash is skipped)."""
    tables = {}
    try:
        lines = _partial_tables(item).read_text(encoding="utf-8").splitlines()
    except OSError:
        return tables
    for text in lines:
        try:
            line = json.loads(text)
            columns = {k: np.asarray(values, dtype=dtype) for k, (dtype, values) in line["columns"].items()}
        except (ValueError, TypeError, KeyError):
            continue
        tables[tuple(line["index"])] = columns
    return tables


def measurement_table(item: InputItem) -> dict:
    """The input's table: every frame's rows in frame order, with ``frame`` column(s) for a series."""
    tables = [with_frame(item.tables[index], index) if index else item.tables[index] for index in item.indices]
    return concatenate_tables(tables)


def finish(item: InputItem, spatial_ndim: int) -> None:
    """Write a finished input's output (TIFF), or seal its zarr by renaming it; then its measurement table.

    Both keep the input's identity as it was planned (``item.identity``)
    and record the table's hash (apart from the parameters, like the
    identity), so a re-run redoes an input whose table is missing (an
    interruption between the two writes) or changed.
    """
    table = measurement_table(item)
    item.tables = {}
    record = table_record(table_path(item.output), table)
    parameters = output_parameters(item, spatial_ndim)
    if item.kind != "zarr":
        write_labels(
            item.output,
            item.labels,
            parameters,
            input_identity=item.identity,
            table_record=record,
            voxel_size=item.voxel,
        )
        item.labels = None
        write_table(table_path(item.output), table)
        return
    import zarr

    array = zarr.open_array(str(item.partial), mode="r+")
    array.attrs[METADATA_KEY] = parameters
    array.attrs[TABLE_RECORD_KEY] = record
    del array.attrs[ZARR_DONE_ATTR]
    if item.output.exists():  # --overwrite: move the old one aside, then swap
        old = item.output.with_name(f".{item.output.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(item.output, old)
        os.replace(item.partial, item.output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(item.partial, item.output)
    write_table(table_path(item.output), table)
    _partial_tables(item).unlink(missing_ok=True)
