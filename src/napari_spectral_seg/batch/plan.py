"""The plan of a batch: its inputs, their frames, and which of them to skip or redo."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.params import SegmentationParams
from ..io import INPUT_SUFFIXES, InputError, input_kind, probe, stored_parameters
from .recipe import recorded_parameters

__all__ = ["BatchError", "InputItem", "expand_inputs", "frame_indices", "output_path", "plan_batch"]


class BatchError(ValueError):
    """A batch that cannot start: outputs that would clash, no output directory, no scheduler."""


@dataclass
class InputItem:
    """One input file and its state during a batch."""

    path: Path
    kind: str
    output: Path
    params: SegmentationParams | None = None  # the batch's, with this file's channel axis
    shape: tuple = ()
    indices: list = field(default_factory=list)
    spatial_shape: tuple = ()
    status: str = "pending"  # pending, running, written, skipped, failed
    reason: str = ""
    infos: dict = field(default_factory=dict)  # frame index -> info
    labels: np.ndarray | None = None
    partial: Path | None = None  # zarr being built

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
    if len(shape) < frame_ndim:
        extra = " plus a channel axis" if channel_axis is not None else ""
        raise ValueError(
            f"shape {tuple(shape)} has {len(shape)} axes, fewer than a frame's {spatial_ndim}{extra}; "
            "check --spatial-ndim and channel_axis."
        )
    return [tuple(int(i) for i in idx) for idx in np.ndindex(*shape[: len(shape) - frame_ndim])]


def expand_inputs(patterns) -> list[Path]:
    """Files named or matched by glob patterns, in order, each once.

    Raises
    ------
    InputError
        A pattern matches nothing, or a file has an unsupported suffix.
    """
    paths, seen = [], set()
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            matches = [m for m in matches if Path(m).suffix.lower() in INPUT_SUFFIXES]
            if not matches:
                raise InputError(f"{pattern}: matches no {', '.join(INPUT_SUFFIXES)} file.")
        else:
            matches = [pattern]
        for match in matches:
            path = Path(match).absolute()
            input_kind(path)  # refuses an unsupported suffix
            if path not in seen:
                seen.add(path)
                paths.append(path)
    return paths


def output_path(out_dir: Path, path: Path) -> Path:
    """``DIR/<stem>_labels.tif``, or ``.zarr`` for a zarr input."""
    suffix = ".zarr" if input_kind(path) == "zarr" else ".tif"
    return Path(out_dir) / f"{path.stem}_labels{suffix}"


def plan_batch(inputs, out_dir, params: SegmentationParams, spatial_ndim: int, overwrite: bool) -> list[InputItem]:
    """Every input, probed and cut into frames, with what to do with it.

    Creates ``out_dir``. An input that cannot run (missing, unreadable, too
    few axes, an output with other parameters) is "failed" with its reason;
    one whose output is complete with the same parameters is "skipped".

    Raises
    ------
    InputError
        No inputs, a pattern matching nothing, an unsupported file type.
    BatchError
        The output directory cannot be created; two inputs would write the same output.
    """
    paths = expand_inputs(inputs)
    if not paths:
        raise InputError("no input files given.")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"{out_dir}: cannot create the output directory ({exc}).") from exc
    items = [InputItem(path, input_kind(path), output_path(out_dir, path)) for path in paths]
    sources = {}
    for item in items:
        sources.setdefault(item.output, []).append(item.path)
    for output, clashing in sources.items():
        if len(clashing) > 1:
            raise BatchError(
                f"{', '.join(map(str, clashing))} would all be written to {output}; "
                "rename them or run them into different --out directories."
            )
    for item in items:
        _plan_input(item, params, spatial_ndim, overwrite)
    return items


def _plan_input(item: InputItem, params: SegmentationParams, spatial_ndim: int, overwrite: bool) -> None:
    """Probe an input, cut it into frames and decide whether it must run."""
    if not item.path.exists():
        return item.fail("no such file")
    try:
        item.shape, reader_channel_axis = probe(item.path, item.kind)
    except Exception as exc:
        return item.fail(f"cannot read it as an image ({type(exc).__name__}: {exc})")
    # A PNG/JPEG is 2D; colour is decided by the file, like `segment` does.
    item.params = params.replace(channel_axis=reader_channel_axis) if item.kind == "png" else params
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
    if item.output.exists() and not overwrite:
        _compare_with_output(item, recorded_parameters(item.params, spatial_ndim))


def _compare_with_output(item: InputItem, request: dict) -> None:
    """Skip an input whose output is complete with ``request``; fail one made with other parameters."""
    stored = stored_parameters(item.output)
    if stored is None:
        return  # an unreadable output is not complete: redo it
    if request == {key: stored.get(key) for key in request}:
        item.status = "skipped"
        for info in stored.get("frame_info") or []:
            item.infos[tuple(info["index"])] = info
        return
    item.fail(f"{item.output.name} exists with other parameters; pass --overwrite to redo it")
