"""The plan of a batch: its inputs, their frames, and which of them to skip or redo."""

from __future__ import annotations

import glob
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.params import SegmentationParams
from ..io import (
    INPUT_SUFFIXES,
    InputError,
    VoxelSize,
    check_not_special,
    check_written_by_us,
    file_identity,
    input_kind,
    probe,
    read_voxel_size,
    same_content,
    spacing_and_voxel_size,
    stored_input_identity,
    stored_parameters,
    stored_table_record,
    written_by_us,
)
from ..io.common import why_missing
from ..io.labels import is_inside, same_file
from ..tables import check_table_written_by_us, matches_record
from .recipe import recorded_parameters

__all__ = [
    "BatchError",
    "InputItem",
    "check_outputs_differ",
    "expand_inputs",
    "frame_indices",
    "make_output_dir",
    "output_path",
    "plan_batch",
    "table_path",
]
# Outputs are named <stem>_labels.<suffix>: how one is recognised among the inputs.
_OUTPUT_STEM = "_labels"


class BatchError(ValueError):
    """A batch that cannot start: outputs that would clash, no output directory, no scheduler."""


@dataclass
class InputItem:
    """One input file and its state during a batch."""

    path: Path
    kind: str
    output: Path
    params: SegmentationParams | None = None  # the batch's, with this file's channel axis and voxel size
    voxel: VoxelSize | None = None  # what the output carries: the file's voxel size, or the batch's spacing
    shape: tuple = ()
    indices: list = field(default_factory=list)
    spatial_shape: tuple = ()
    status: str = "pending"  # pending, running, written, skipped, failed
    reason: str = ""
    infos: dict = field(default_factory=dict)  # frame index -> info
    tables: dict = field(default_factory=dict)  # frame index -> its measurement table
    labels: np.ndarray | None = None
    partial: Path | None = None  # zarr being built
    identity: dict | None = None  # the input's content when planned (io.file_identity)
    notice: str = ""  # said once before the run (e.g. why an output is redone)

    @property
    def n_frames(self) -> int:
        return len(self.indices)

    @property
    def n_segments(self) -> int:
        return sum(info["n_segments"] for info in self.infos.values())

    @property
    def seconds(self) -> float:
        return sum(info["seconds"] for info in self.infos.values())

    def fail(self, reason: str) -> None:
        self.status, self.reason = "failed", reason


def frame_indices(shape, spatial_ndim: int, channel_axis: int | None) -> list[tuple[int, ...]]:
    """The index of every frame of an array of ``shape``.

    A frame is the trailing ``spatial_ndim`` axes (plus one channel axis if
    ``channel_axis`` is not None); leading axes are time (or any series).

    Returns
    -------
    list of tuple
        ``[()]`` for a single image, else one tuple per frame in C order.

    Raises
    ------
    ValueError
        The array has fewer axes than a frame.
    """
    frame_ndim = spatial_ndim + (channel_axis is not None)
    if channel_axis is not None and not -frame_ndim <= int(channel_axis) < len(shape):
        raise ValueError(
            f"its channel axis ({int(channel_axis) % len(shape)} of shape {tuple(shape)}) lies before the frames' "
            f"other axes, so a {spatial_ndim}D frame would not hold its channels; pass --spatial-ndim "
            f"{len(shape) - 1 - int(channel_axis) % len(shape)}, or store the channel axis next to the image axes "
            "(e.g. TZCYX)."
        )
    if len(shape) < frame_ndim:
        extra = " plus a channel axis" if channel_axis is not None else ""
        raise ValueError(
            f"shape {tuple(shape)} has {len(shape)} axes, fewer than a frame's {spatial_ndim}{extra}; "
            "check --spatial-ndim and channel_axis."
        )
    return [tuple(int(i) for i in idx) for idx in np.ndindex(*shape[: len(shape) - frame_ndim])]


def expand_inputs(patterns, *, out_dir=None, left_out: list | None = None) -> list[Path]:
    """Files named or matched by glob patterns, in order, each once.

    A glob leaves out what a batch writes: labels written by this package
    (``*_labels.*`` whose stored parameters are ours), and every file inside
    ``out_dir`` when that is a folder below the pattern's own (``"data/**"``
    with ``--out data/results``), so a re-run never segments earlier outputs.
    They are added to ``left_out``. A file named without a glob is kept.

    Raises
    ------
    InputError
        A pattern matches nothing, or a file has an unsupported suffix.
    """
    out_dir = None if out_dir is None else Path(out_dir).resolve()
    paths, seen = [], set()
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            matches = [m for m in matches if Path(m).suffix.lower() in INPUT_SUFFIXES]
            if not matches:
                raise InputError(f"{pattern}: matches no {', '.join(INPUT_SUFFIXES)} file.")
            below = _folder_below(out_dir, _glob_base(pattern))
            ours = [m for m in matches if _is_output(Path(m), out_dir if below else None)]
            if left_out is not None:
                left_out.extend(Path(m).absolute() for m in ours if Path(m).absolute() not in left_out)
            matches = [m for m in matches if m not in ours]
            if not matches:
                raise InputError(f"{pattern}: matches only outputs of napari-spectral-seg ({len(ours)} left out).")
        else:
            matches = [pattern]
        for match in matches:
            path = Path(match).absolute()
            input_kind(path)  # refuses an unsupported suffix
            if path not in seen:
                seen.add(path)
                paths.append(path)
    return paths


def _glob_base(pattern: str) -> Path:
    """The folder a glob pattern starts from: its leading components without wildcards."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    return Path(*parts[:fixed]).resolve() if fixed else Path.cwd()


def _folder_below(out_dir: Path | None, base: Path) -> bool:
    return out_dir is not None and out_dir != base and out_dir.is_relative_to(base)


def _is_output(path: Path, out_dir: Path | None) -> bool:
    """Whether a glob match is something a batch writes: inside ``out_dir`` (if given), or labels written by us."""
    if out_dir is not None and path.resolve().is_relative_to(out_dir):
        return True
    return path.stem.endswith(_OUTPUT_STEM) and written_by_us(stored_parameters(path))


def output_path(out_dir: Path, path: Path) -> Path:
    """``DIR/<stem>_labels.tif``, or ``.zarr`` for a zarr input."""
    suffix = ".zarr" if input_kind(path) == "zarr" else ".tif"
    return Path(out_dir) / f"{path.stem}{_OUTPUT_STEM}{suffix}"


def table_path(output: Path) -> Path:
    """The measurement table written next to a labels output: ``DIR/<stem>_labels.csv``."""
    return Path(output).with_suffix(".csv")


def make_output_dir(out_dir) -> Path:
    """Create the output directory (and its parents) if missing.

    Raises
    ------
    BatchError
        It cannot be created.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"{out_dir}: cannot create the output directory ({exc}).") from exc
    return out_dir


def check_outputs_differ(paths, out_dir) -> None:
    """Refuse a batch with no inputs, or two inputs that would write the same output.

    Raises
    ------
    InputError
        No inputs, or ``out_dir`` inside an input's store (its writes would change the input).
    BatchError
        Two inputs would write the same output.
    """
    if not paths:
        raise InputError("no input files given.")
    for path in paths:
        if os.path.isdir(path) and (same_file(out_dir, path) or is_inside(out_dir, path)):
            raise InputError(f"--out {out_dir} is inside the input {path}: pass an --out outside it.")
    sources = {}
    for path in paths:
        output = output_path(out_dir, Path(path))
        sources.setdefault(output, []).append(Path(path))
        # a.zarr and a.tif: two labels outputs, but one measurement table.
        sources.setdefault(table_path(output), []).append(Path(path))
    for output, clashing in sources.items():
        if len(clashing) > 1:
            raise BatchError(
                f"{', '.join(map(str, clashing))} would all be written to {output}; "
                "rename them or run them into different --out directories."
            )


def plan_batch(paths, out_dir, params: SegmentationParams, spatial_ndim: int, overwrite: bool) -> list[InputItem]:
    """Every input (from :func:`expand_inputs`), probed and cut into frames, with what to do with it.

    An input that cannot run (missing, unreadable, too few axes, an output
    made with other parameters or not by this package) is "failed" with its
    reason; one whose output is complete with the same parameters and from
    the same content (size and hash) is "skipped". Each input's identity is
    computed here, before any worker reads it, and stored with its output.

    Raises
    ------
    InputError
        No inputs.
    BatchError
        Two inputs would write the same output.
    """
    check_outputs_differ(paths, out_dir)
    items = [InputItem(Path(path), input_kind(path), output_path(out_dir, Path(path))) for path in paths]
    for item in items:
        _plan_input(item, params, spatial_ndim)
    _identify([item for item in items if item.status == "pending"])
    for item in items:
        if item.status != "pending" or overwrite:
            continue
        try:  # its table is replaced with its labels: someone's file of that name is refused as theirs is
            check_table_written_by_us(table_path(item.output), "another --out")
        except InputError as exc:
            item.fail(str(exc))
            continue
        if os.path.lexists(item.output):
            _compare_with_output(item, recorded_parameters(item.params, spatial_ndim))
    return items


def _reason(exc: InputError, path) -> str:
    """An input error's reason, without the path the message starts with (a batch line names the input)."""
    text = str(exc)
    prefix = f"{path}: "
    return (text[len(prefix) :] if text.startswith(prefix) else text).rstrip(".")


def _plan_input(item: InputItem, params: SegmentationParams, spatial_ndim: int) -> None:
    """Probe an input and cut it into frames."""
    if not item.path.exists():
        return item.fail(why_missing(item.path))
    try:
        check_not_special(item.path)
    except InputError as exc:
        return item.fail(_reason(exc, item.path))
    try:
        item.shape, reader_channel_axis = probe(item.path, item.kind)
    except InputError as exc:  # names the input and what to pass
        return item.fail(_reason(exc, item.path))
    except Exception as exc:
        return item.fail(f"cannot read it as an image ({type(exc).__name__}: {exc})")
    # Colour is decided by the file (PNG/JPEG, RGB TIFF), like `segment` does.
    colour = item.kind == "png" or reader_channel_axis is not None
    item.params = params.replace(channel_axis=reader_channel_axis) if colour else params
    _use_voxel_size(item, spatial_ndim)
    channel_axis = item.params.channel_axis
    try:
        item.indices = frame_indices(item.shape, spatial_ndim, channel_axis)
    except ValueError as exc:
        return item.fail(str(exc))
    frame_shape = item.shape[len(item.shape) - spatial_ndim - (channel_axis is not None) :]
    if channel_axis is not None:
        axis = channel_axis % len(frame_shape)
        frame_shape = frame_shape[:axis] + frame_shape[axis + 1 :]
    item.spatial_shape = tuple(frame_shape)


def _use_voxel_size(item: InputItem, spatial_ndim: int) -> None:
    """The file's voxel size (ImageJ, OME, resolution tags) as its ``spacing``, unless the batch gives one."""
    voxel = read_voxel_size(item.path) if item.kind == "tif" else None
    spacing, item.voxel = spacing_and_voxel_size(voxel, item.params.spacing, spatial_ndim)
    item.params = item.params.replace(spacing=spacing)


def _identify(items: list[InputItem]) -> None:
    """Every input's :func:`~napari_spectral_seg.io.file_identity`, a few files at a time (hashing is I/O)."""

    def identify(item: InputItem) -> None:
        try:
            item.identity = file_identity(item.path)
        except OSError as exc:
            item.fail(f"cannot read it ({exc.strerror or exc})")

    with ThreadPoolExecutor(max_workers=min(8, len(items) or 1)) as pool:
        list(pool.map(identify, items))


def _compare_with_output(item: InputItem, request: dict) -> None:
    """Skip an input whose output is complete with ``request`` from the same content; refuse another's file."""
    try:
        stored = check_written_by_us(item.output, "another --out")
    except InputError as exc:
        return item.fail(str(exc))
    if not isinstance(stored, dict) or request != {key: stored.get(key) for key in request}:
        return item.fail(f"{item.output.name} exists with other parameters; pass --overwrite to redo it")
    made_from = stored_input_identity(item.output)
    if not same_content(item.identity, made_from):
        why = "records no input identity (an older version wrote it)" if made_from is None else "was made from"
        item.notice = f"{item.output.name} {why}{' other content of this input' if made_from else ''}; redoing it"
        return
    if not matches_record(item.output.parent, stored_table_record(item.output)):
        item.notice = f"{table_path(item.output).name}, its measurement table, is missing or was changed; redoing it"
        return
    item.status = "skipped"
    for info in stored.get("frame_info") or []:
        item.infos[tuple(info["index"])] = info
