"""One block on a worker: read its region, segment it with the whole-image decisions, keep what it owns.

The region is the block's core plus the overlap. It is segmented by the
core pipeline with every whole-image decision fixed (threshold, smoothing,
smallest piece, typical object size, edge background, the dim-object
search's background surface and levels). Of the connected
pieces of the result, the block keeps those it owns (the piece's first
pixel in raster order lies in its core, see :mod:`.grid`). A kept piece must
lie clear of the region's cut sides by the reach of the smoothing and the
edge moves; if one does not, the overlap is doubled and the block done
again, so every kept piece was segmented as in the whole image. So must
the basin of every dim object reaching into the core (the pixels its
edge level and its extent come of, :mod:`..core.dim`): a basin cut by a
side may give another object, owned by this block or by none. A basin
still cut at the largest overlap leaves the block as it is (its objects
lie clear; a piece that does not is an error).

The kept labels (numbered 1..m within the block) and their bounding box are
written to ``RECORDS/<key>.npz`` under a temporary name and renamed: the
file is the block's completion marker, and a task retried after its worker
died finds either nothing or a whole record.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

from ..core.pipeline import EmptyMaskError, iter_segment
from ..core.progress import run_to_end
from .decide import sigma_per_axis, smoothed
from .dim import block_decided
from .grid import EDGE_REACH, Block, smoothing_reach
from .npy_files import load_arrays

__all__ = ["BlockPlan", "PieceTooLarge", "block_summary", "read_record", "record_path", "segment_block"]


class PieceTooLarge(ValueError):
    """A connected piece of the mask is larger than the largest overlap allowed."""


@dataclass(frozen=True)
class BlockPlan:
    """What every block needs: the source, the fixed parameters and the whole-image numbers.

    Attributes
    ----------
    source : Source
    params : SegmentationParams
        With ``threshold``, ``sigma`` and ``min_size`` fixed numbers.
    sigma : checked sigma (see ``core.params.check_sigma``) or None
    object_size, edge_background : float or None
        Auto mode's typical object size and the edges' background level.
    overlap : int
        Pixels added on each side of a core.
    max_overlap : int
        The overlap is doubled up to this when a piece needs it.
    records : str
        Directory of the block records.
    dim : dict or None
        The dim-object search's whole-image decisions (``.dim.decide_dim``); None: no search.
    """

    source: object
    params: object
    sigma: object
    object_size: float | None
    edge_background: float | None
    overlap: int
    max_overlap: int
    records: str
    dim: dict | None = None


def record_path(records, block: Block) -> Path:
    return Path(records) / f"{block.key}.npz"


def read_record(path) -> dict:
    """A block record: ``origin`` (box start), ``labels`` (int32 crop) and ``count``."""
    return load_arrays(path)


def segment_block(plan: BlockPlan, block: Block) -> dict:
    """Segment one block and write its record; returns its summary (the record's small fields).

    Idempotent: a block whose record exists is not done again.
    """
    path = record_path(plan.records, block)
    if path.exists():
        return block_summary(read_record(path), block, reused=True)
    started = time.perf_counter()
    overlap = plan.overlap
    while True:
        labels, box, clear, cut, dim_count = _segment_region(plan, block, overlap)
        if clear == "all" or (clear == "pieces" and overlap >= plan.max_overlap):
            # A basin still cut at the largest overlap: the record says whose (a kept object's,
            # which may differ from the in-memory one, or a dropped candidate's, which may be missing).
            break
        if overlap >= plan.max_overlap:
            raise PieceTooLarge(
                f"block {block.key} (pixels {block.core}): a connected piece of the mask reaches beyond an overlap "
                f"of {overlap} px; raise the overlap or the block size, or a threshold that separates the objects."
            )
        overlap = min(2 * overlap, plan.max_overlap)
    origin, crop = _crop(labels, box)
    record = dict(origin=origin, labels=crop, count=np.int64(crop.max() if crop.size else 0))
    record["overlap"] = np.int64(overlap)
    record["dim_count"] = np.int64(dim_count)
    record["basin_cut"] = np.bool_("objects" in cut)
    record["candidate_cut"] = np.bool_("dropped" in cut)
    record["seconds"] = np.float64(time.perf_counter() - started)
    _write_atomically(path, record)
    return block_summary(record, block, reused=False)


def block_summary(record: dict, block: Block, reused: bool) -> dict:
    """What a run reports of one block: where, how large, how many objects, how long."""
    return dict(
        key=block.key,
        origin=[int(v) for v in record["origin"]],
        shape=list(record["labels"].shape),
        count=int(record["count"]),
        overlap=int(record["overlap"]),
        # Of them, the dim objects found below the threshold.
        dim_count=int(record.get("dim_count", 0)),
        # A kept dim object's basin was still cut at the largest overlap: it may differ from in memory.
        basin_cut=bool(record.get("basin_cut", False)),
        # A dropped candidate's basin was: a dim object may be missing.
        candidate_cut=bool(record.get("candidate_cut", False)),
        seconds=float(record["seconds"]),
        reused=reused,
    )


def _segment_region(plan: BlockPlan, block: Block, overlap: int):
    """The owned labels of the region (0 elsewhere), its box, what was clear of its cut sides, whose basins were cut, and the owned dim objects.

    Clear is "all" (every owned piece, and every dim-object basin reaching
    into the core), "pieces" (such a basin was not) or "none" (a piece was
    not). The basins cut are named by "objects" (a kept object's) and
    "dropped" (a candidate's dropped as not standing out).
    """
    source = plan.source
    box = block.region(overlap, source.shape)
    # Smoothed here with the image around the region, so the core pipeline
    # (sigma None) sees the same values as on the whole image.
    intensity = smoothed(source, box, plan.sigma, plan.params.spacing)
    try:
        result = run_to_end(
            iter_segment(
                intensity,
                None,
                plan.params.replace(sigma=None),
                object_size=plan.object_size,
                edge_background=plan.edge_background,
                dim_decided=block_decided(plan.dim, box),
            )
        )
    except EmptyMaskError:
        return np.zeros(intensity.shape, np.int32), box, "all", (), 0
    reach = smoothing_reach(sigma_per_axis(plan.sigma, plan.params.spacing, source.ndim)) + EDGE_REACH
    owned, box, complete = _owned(result.labels, box, block.core, reach, source.shape)
    dim_labels = np.asarray(result.parameters.get("dim_labels", []), dtype=np.int64)
    dim_count = int(np.isin(dim_labels, owned).sum()) if dim_labels.size else 0
    if not complete:
        return owned, box, "none", (), dim_count
    # A dim object comes from its whole basin (its edge level, its first pixel): a basin cut by a
    # side may give an object other than the whole image's, owned by this block or by none.
    cut = tuple(
        whose
        for whose, key in (("objects", "dim_basins"), ("dropped", "dropped_basins"))
        if any(
            _reaches_core(basin, box, block.core)
            and _near_a_cut_side([slice(a, b) for a, b in basin], box, reach, source.shape)
            for basin in result.parameters.get(key, [])
        )
    )
    return owned, box, "pieces" if cut else "all", cut, dim_count


def _reaches_core(where, box, core) -> bool:
    """Whether a box in region pixels (``(start, stop)`` per axis) overlaps the block's core (image pixels)."""
    return all(a + b0 < c1 and b + b0 > c0 for (a, b), (b0, _), (c0, c1) in zip(where, box, core))


def _near_a_cut_side(where, box, reach, shape) -> bool:
    """Whether slices ``where`` (region pixels) come within ``reach`` of a side the region was cut at (not the image border)."""
    return any(
        (b0 > 0 and s.start < r) or (b1 < n_axis and s.stop + b0 > b1 - r)
        for s, (b0, b1), r, n_axis in zip(where, box, reach, shape)
    )


def _owned(labels: np.ndarray, box, core, reach, shape):
    """Keep the pieces whose first pixel (raster order) lies in ``core``; check they are clear of the cut sides.

    The first pixel is a pixel of the piece, so the block that owns a piece
    holds some of it in its core (a bounding-box corner may lie in a block
    with no foreground at all, which is skipped).
    """
    pieces, n = ndi.label(labels > 0, structure=np.ones((3,) * labels.ndim))
    keep = np.zeros(n + 1, bool)
    complete = True
    values, first = np.unique(pieces.ravel(), return_index=True)
    first_pixels = dict(zip(values.tolist(), np.stack(np.unravel_index(first, pieces.shape), axis=1).tolist()))
    for piece, where in enumerate(ndi.find_objects(pieces), start=1):
        corner = [c + b0 for c, (b0, _) in zip(first_pixels[piece], box)]
        if not all(a <= c < b for c, (a, b) in zip(corner, core)):
            continue
        keep[piece] = True
        # Within the smoothing's and the edges' reach of a side the region was cut at, the piece may differ.
        if _near_a_cut_side(where, box, reach, shape):
            complete = False
    owned = np.where(keep[pieces], labels, 0)
    return owned, box, complete


def _crop(labels: np.ndarray, box):
    """The bounding box of the nonzero labels (start in image pixels) and the labels in it, renumbered 1..m."""
    if not labels.any():
        return np.array([a for a, _ in box], dtype=np.int64), np.zeros((0,) * labels.ndim, np.int32)
    where = ndi.find_objects((labels > 0).astype(np.int8))[0]
    crop = labels[where]
    values, inverse = np.unique(crop, return_inverse=True)
    renumbered = inverse.reshape(crop.shape).astype(np.int32)
    if values[0] != 0:
        renumbered += 1
    origin = np.array([s.start + a for s, (a, _) in zip(where, box)], dtype=np.int64)
    return origin, renumbered


def _write_atomically(path: Path, record: dict) -> None:
    # One name per writer: a task of an interrupted run may still be writing the same block in
    # another thread of this process when the resumed run's task does.
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.partial.npz")
    with open(temporary, "wb") as handle:
        np.savez_compressed(handle, **record)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
