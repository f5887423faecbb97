"""Batch segmentation of many images and time-series frames on a dask cluster.

``napari-spectral-seg batch INPUT... --out DIR`` expands the inputs (files
or glob patterns), cuts every input into frames, and submits one
:mod:`dask.distributed` task per frame. Each task reads its own frame from
the file (by path and index), runs the same pipeline as
:func:`napari_spectral_seg.segment` and returns the labels, so a batch result
is identical to calling ``segment`` on every frame with the same parameters.

Frames
    An input with more axes than a frame is a time series over its leading
    axes. A frame has ``spatial_ndim`` axes, plus one if a channel axis is
    used. ``spatial_ndim`` is ``--spatial-ndim`` if given, else the length
    of ``spacing`` if given, else 2; so a ``(T, Y, X)`` TIFF is T frames of
    2D by default and one volume with ``--spatial-ndim 3``. ``channel_axis``
    counts within the frame; PNG/JPEG files are 2D and use their colour
    channels, whatever the parameters say.

Outputs
    ``DIR/<input stem>_labels.tif`` (int32, the parameters as JSON in the
    TIFF description) for ``.tif``, ``.png``, ``.jpg`` and ``.npy`` inputs; a
    time series gives one TIFF of shape ``leading axes + spatial shape``,
    written once all its frames are done. ``.zarr`` inputs give
    ``DIR/<input stem>_labels.zarr``, chunked one frame per chunk and written
    by the workers directly, so neither the input nor the labels of a long
    series pass through the client; the parameters are in its attributes
    under ``"spectral_seg"``. Labels are numbered 1..M within each frame
    (frames are segmented independently, there is no tracking).

Safety
    TIFFs are written under a temporary name and renamed
    (:func:`napari_spectral_seg.cli.write_labels`); a zarr output is built in
    ``DIR/.<name>.partial.zarr``, which records the frames already done so
    an interrupted run resumes frame by frame, and is renamed when complete.
    A re-run skips inputs whose output exists with the same parameters;
    ``--overwrite`` redoes them.
"""

from __future__ import annotations

import difflib
import glob
import json
import math
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cli import PROG, SEGMENT_DEFAULTS, CliError, add_segmentation_arguments, write_labels
from .core.params import DEFAULT_EDGE_LEVEL, SegmentationParams
from .core.params import is_integer as _is_integer

__all__ = [
    "PARAMETER_KEYS",
    "DEFAULT_PARAMETERS",
    "ParameterFileError",
    "load_parameters",
    "resolve_parameters",
    "frame_indices",
    "segment_frame",
    "run_batch",
]

# segment() keyword arguments a parameter file may set (everything except the
# per-image ones: mask, seeds, progress).
PARAMETER_KEYS = (
    "threshold",
    "n_clusters",
    "beta",
    "eigen_solver",
    "random_state",
    "spacing",
    "channel_axis",
    "min_size",
    "assign_labels",
    "sigma",
    "sensitivity",
    "edge_level",
)
# Batch-only setting that may also come from the file.
BATCH_KEYS = ("spatial_ndim",)
# Same defaults as the `segment` command; the seed is 0 (not drawn) so a
# batch is reproducible unless the user asks otherwise.
DEFAULT_PARAMETERS = dict(
    threshold=None,
    n_clusters=4,
    beta=1.0,
    eigen_solver="auto",
    random_state=0,
    spacing=None,
    channel_axis=None,
    min_size=0,
    assign_labels="kmeans",
    sigma=None,
    sensitivity=None,
    edge_level=DEFAULT_EDGE_LEVEL,
)
NESTED_KEY = "spectral_seg"
INPUT_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy", ".zarr")
_KIND = {".tif": "tif", ".tiff": "tif", ".png": "png", ".jpg": "png", ".jpeg": "png", ".npy": "npy", ".zarr": "zarr"}
# The zarr attribute holding the parameters, and the ones a partial zarr
# output uses to remember finished frames across interrupted runs.
ZARR_ATTR = "spectral_seg"
ZARR_DONE_ATTR = "spectral_seg_frames_done"
# Update a partial zarr's list of done frames at most this often: the list is
# only a resume hint, losing the last second of it costs a few recomputed frames.
_ZARR_FLUSH_INTERVAL = 2.0  # seconds


class ParameterFileError(ValueError):
    """A parameter file that cannot be read or holds invalid values."""


# ---------------------------------------------------------------- parameters
def load_parameters(path) -> dict:
    """Read segmentation parameters from a JSON or YAML file.

    This is the format the widget's "Save parameters" button writes, and what
    ``batch --params FILE`` reads::

        {"spectral_seg": {"threshold": "otsu", "n_clusters": 4, "beta": 1.0,
                          "eigen_solver": "auto", "random_state": 0,
                          "min_size": 20, "spacing": null, "channel_axis": null,
                          "image": "cells", "seconds": 1.2, "version": "0.1.0"}}

    - A JSON (or, for ``.yaml``/``.yml``, YAML) object whose keys are
      keyword arguments of :func:`napari_spectral_seg.segment`: ``threshold``
      (number, ``"otsu"`` or null), ``n_clusters``, ``beta``,
      ``eigen_solver``, ``random_state`` (integer or null), ``spacing`` (list
      of numbers or null), ``channel_axis`` (integer or null), ``min_size``,
      ``assign_labels``; plus ``spatial_ndim`` (2 or 3) for batch.
    - The object may be nested under the key ``"spectral_seg"`` (the key of
      the result layer's metadata), which is then used alone.
    - Any other key is informational and ignored (``image``, ``mask``,
      ``seeds``, ``seconds``, ``version``, ``threshold_used``,
      ``n_segments``, ``input``, ``frames``...). A key that looks like a
      misspelt parameter name raises, so a typo is not silently dropped.

    The parameters stored in a labels TIFF written by ``segment`` or
    ``batch`` (its description) are the same object, so such a ``.tif`` may
    also be given to reproduce a run.

    Parameters
    ----------
    path : path-like
        ``.json``, ``.yaml``/``.yml`` or a labels ``.tif``.

    Returns
    -------
    dict
        Only the parameter keys present in the file, with JSON lists turned
        into tuples for ``spacing``.

    Raises
    ------
    ParameterFileError
        The file is missing, is not JSON/YAML, is not an object, or a value
        has the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterFileError(f"{path}: no such parameter file.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                data = json.loads(tif.pages[0].description)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text())
        else:
            data = json.loads(path.read_text())
    except Exception as exc:  # any parse failure is a bad file for the user
        raise ParameterFileError(f"{path}: cannot read parameters ({type(exc).__name__}: {exc}).") from exc
    if isinstance(data, dict) and isinstance(data.get(NESTED_KEY), dict):
        data = data[NESTED_KEY]
    if not isinstance(data, dict):
        raise ParameterFileError(f'{path}: expected an object of parameters, e.g. {{"n_clusters": 4}}.')
    known = PARAMETER_KEYS + BATCH_KEYS
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.8)
            if close and key not in _INFORMATIONAL_KEYS:
                raise ParameterFileError(f"{path}: unknown parameter '{key}'; did you mean '{close[0]}'?")
    params = {key: data[key] for key in known if key in data}
    try:
        _check_types(params)
    except (TypeError, ValueError) as exc:
        raise ParameterFileError(f"{path}: {exc}") from exc
    if params.get("spacing") is not None:
        params["spacing"] = tuple(float(v) for v in params["spacing"])
    return params


# Keys written next to the parameters by the widget, `segment` and `batch`.
_INFORMATIONAL_KEYS = frozenset(
    {
        "image",
        "mask",
        "seeds",
        "seconds",
        "engine_start_seconds",
        "version",
        "threshold_used",
        "n_segments",
        "input",
        "frames",
        "frame_info",
        "sample",
        "ari",
    }
)


def _check_types(params: dict) -> None:
    """Type checks that core's validation does not cover (or covers only per image)."""
    if params.get("random_state") is not None and not _is_integer(params["random_state"]):
        raise TypeError(f"random_state={params['random_state']!r} must be an integer seed or null.")
    if params.get("channel_axis") is not None and not _is_integer(params["channel_axis"]):
        raise TypeError(f"channel_axis={params['channel_axis']!r} must be an integer or null.")
    spacing = params.get("spacing")
    if spacing is not None:
        if (
            not isinstance(spacing, (list, tuple))
            or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in spacing
            )
            or len(spacing) not in (2, 3)
        ):
            raise ValueError(f"spacing={spacing!r} must be 2 or 3 positive numbers, one per spatial axis.")
    if "spatial_ndim" in params and params["spatial_ndim"] not in (2, 3):
        raise ValueError(f"spatial_ndim={params['spatial_ndim']!r} must be 2 or 3.")


def resolve_parameters(file_params: dict | None = None, flags: dict | None = None) -> tuple[dict, int]:
    """Defaults, overridden by the parameter file, overridden by command-line flags.

    Parameters
    ----------
    file_params : dict, optional
        From :func:`load_parameters`.
    flags : dict, optional
        Flag values; ``None`` means "not given".

    Returns
    -------
    params : dict
        Keyword arguments for :func:`napari_spectral_seg.segment` (all of
        ``PARAMETER_KEYS``), validated.
    spatial_ndim : int
        Axes of a frame (without channels): given, else ``len(spacing)``, else 2.

    Raises
    ------
    ValueError, TypeError
        An invalid value, naming the parameter.
    """

    merged = dict(DEFAULT_PARAMETERS)
    merged.update(file_params or {})
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    _check_types(merged)
    spatial_ndim = merged.pop("spatial_ndim", None)
    params = {key: merged[key] for key in PARAMETER_KEYS}
    if params["spacing"] is not None:
        params["spacing"] = tuple(float(v) for v in params["spacing"])
    # Checked here (not per frame) so a bad value fails before any work, and
    # recorded as None where segment() does not use it (as it records it), so
    # the outputs' stored parameters say what was done.
    checked = SegmentationParams(**{k: v for k, v in params.items() if k not in ("spacing", "sigma")})
    params["edge_level"] = checked.used_edge_level()
    if spatial_ndim is None:
        spatial_ndim = len(params["spacing"]) if params["spacing"] is not None else 2
    if params["spacing"] is not None and len(params["spacing"]) != spatial_ndim:
        raise ValueError(
            f"spacing has {len(params['spacing'])} values but frames have spatial_ndim={spatial_ndim} axes."
        )
    return params, int(spatial_ndim)


def _request(params: dict, spatial_ndim: int) -> dict:
    """What decides an output's content, as stored in it (JSON-normalised for comparison)."""
    return json.loads(json.dumps(dict(params, spatial_ndim=spatial_ndim), default=str))


# ---------------------------------------------------------------- inputs and frames
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


def _probe(path: Path, kind: str) -> tuple[tuple[int, ...], int | None]:
    """Shape of an input and its reader's channel axis, reading only its header."""
    if kind == "npy":
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape), None
    if kind == "tif":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return tuple(tif.series[0].shape), None
    if kind == "zarr":
        import zarr

        return tuple(zarr.open_array(str(path), mode="r").shape), None
    import imageio.v3 as iio

    shape = tuple(iio.improps(path).shape)
    if len(shape) == 3:  # colour: alpha is dropped, as `segment` does
        return shape[:2] + (min(shape[2], 3),), -1
    return shape, None


def read_frame(path: str, kind: str, index: tuple[int, ...]) -> np.ndarray:
    """Read one frame of an input, touching as little of the file as the format allows.

    Runs on a worker: ``.npy`` and uncompressed ``.tif`` are memory-mapped,
    ``.zarr`` reads only the chunks of the frame; compressed TIFFs are read
    whole (tifffile cannot address one frame of them cheaply).
    """
    if kind == "zarr":
        import zarr

        array = zarr.open_array(path, mode="r")
        return np.asarray(array[index] if index else array[...])
    if kind == "npy":
        return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[index])
    if kind == "tif":
        import tifffile

        try:
            array = tifffile.memmap(path, mode="r")
        except Exception:  # compressed or tiled: no memory map, read it all
            array = tifffile.imread(path)
        return np.array(array[index])
    from .cli import read_image

    image, _ = read_image(path)
    return image


def segment_frame(path: str, kind: str, index: tuple[int, ...], params: dict, out_zarr: str | None = None):
    """Segment one frame of one input: the task each dask worker runs.

    Parameters
    ----------
    path, kind : str
        The input file and its kind ("npy", "tif", "png" or "zarr").
    index : tuple of int
        The frame's index along the leading axes (``()`` for a single image).
    params : dict
        Keyword arguments of :func:`napari_spectral_seg.segment`.
    out_zarr : str, optional
        A zarr array to write the labels into at ``index`` (then not returned).

    Returns
    -------
    labels : ndarray of int32 or None
        None when written to ``out_zarr``.
    info : dict
        ``index``, ``n_segments``, ``threshold_used``, ``random_state`` (used)
        and ``seconds``.
    """
    from .core import iter_segment, run_to_end

    try:
        frame = read_frame(path, kind, index)
    except Exception as exc:
        raise OSError(f"cannot read it as an image ({type(exc).__name__}: {exc})") from exc
    result = run_to_end(iter_segment(frame, **params))
    info = dict(
        index=list(index),
        n_segments=int(result.labels.max()),
        threshold_used=result.parameters["threshold_used"],
        random_state=result.parameters["random_state"],
        seconds=round(result.seconds["total"], 4),
    )
    if out_zarr is not None:
        import zarr

        target = zarr.open_array(out_zarr, mode="r+")
        # One frame is one chunk, so concurrent workers never write the same chunk.
        target[index if index else ...] = result.labels
        return None, info
    return result.labels, info


@dataclass
class _Input:
    """One input file and its state during a batch."""

    path: Path
    kind: str
    output: Path
    shape: tuple = ()
    indices: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
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


def expand_inputs(patterns) -> list[Path]:
    """Files named or matched by glob patterns, in order, each once.

    Raises
    ------
    CliError
        A pattern matches nothing, or a file has an unsupported suffix.
    """
    paths, seen = [], set()
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            matches = [m for m in matches if Path(m).suffix.lower() in INPUT_SUFFIXES]
            if not matches:
                raise CliError(f"{pattern}: matches no {', '.join(INPUT_SUFFIXES)} file.")
        else:
            matches = [pattern]
        for match in matches:
            path = Path(match).absolute()
            if path.suffix.lower() not in INPUT_SUFFIXES:
                raise CliError(
                    f"{path}: unsupported file type '{path.suffix}'; use one of {', '.join(INPUT_SUFFIXES)}."
                )
            if path not in seen:
                seen.add(path)
                paths.append(path)
    return paths


def output_path(out_dir: Path, path: Path) -> Path:
    """``DIR/<stem>_labels.tif``, or ``.zarr`` for a zarr input."""
    suffix = ".zarr" if _KIND[path.suffix.lower()] == "zarr" else ".tif"
    return out_dir / f"{path.stem}_labels{suffix}"


def _stored_parameters(output: Path) -> dict | None:
    """The parameters stored in a finished output, or None if unreadable."""
    try:
        if output.suffix == ".zarr":
            import zarr

            return dict(zarr.open_array(str(output), mode="r").attrs[ZARR_ATTR])
        import tifffile

        with tifffile.TiffFile(output) as tif:
            return json.loads(tif.pages[0].description)
    except Exception:
        return None


def _plan(item: _Input, params: dict, spatial_ndim: int, overwrite: bool) -> None:
    """Probe an input, cut it into frames and decide whether it must run."""
    if not item.path.exists():
        item.status, item.reason = "failed", "no such file"
        return
    try:
        item.shape, reader_channel_axis = _probe(item.path, item.kind)
    except Exception as exc:
        item.status, item.reason = "failed", f"cannot read it as an image ({type(exc).__name__}: {exc})"
        return
    item.params = dict(params)
    if item.kind == "png":
        # A PNG/JPEG is 2D; colour is decided by the file, like `segment` does.
        item.params["channel_axis"] = reader_channel_axis
    try:
        item.indices = frame_indices(item.shape, spatial_ndim, item.params["channel_axis"])
    except ValueError as exc:
        item.status, item.reason = "failed", str(exc)
        return
    frame_shape = item.shape[len(item.shape) - spatial_ndim - (item.params["channel_axis"] is not None) :]
    if item.params["channel_axis"] is not None:
        axis = item.params["channel_axis"] % len(frame_shape)
        frame_shape = frame_shape[:axis] + frame_shape[axis + 1 :]
    item.spatial_shape = tuple(frame_shape)
    if item.output.exists() and not overwrite:
        stored = _stored_parameters(item.output)
        if stored is not None and _request(item.params, spatial_ndim) == {
            key: stored.get(key) for key in PARAMETER_KEYS + BATCH_KEYS
        }:
            item.status = "skipped"
            for info in stored.get("frame_info") or []:
                item.infos[tuple(info["index"])] = info
            return
        if stored is not None:
            item.status = "failed"
            item.reason = f"{item.output.name} exists with other parameters; pass --overwrite to redo it"
            return
        # An unreadable output is not complete: redo it.


# ---------------------------------------------------------------- output
def _output_parameters(item: _Input, spatial_ndim: int) -> dict:
    infos = [item.infos[idx] for idx in item.indices]
    from . import __version__

    parameters = dict(
        _request(item.params, spatial_ndim),
        input=str(item.path),
        frames=item.n_frames,
        n_segments=item.n_segments,
        seconds=round(item.seconds, 3),
        version=__version__,
    )
    if item.indices == [()]:
        parameters["threshold_used"] = infos[0]["threshold_used"]
    parameters["frame_info"] = infos
    return parameters


def _open_partial_zarr(item: _Input, spatial_ndim: int) -> set:
    """Create (or reopen, to resume) the zarr an input's workers write into.

    Returns
    -------
    set of tuple
        Frames already done in an earlier, interrupted run.
    """
    import zarr

    item.partial = item.output.with_name(f".{item.output.name}.partial.zarr")
    request = _request(item.params, spatial_ndim)
    shape = tuple(item.shape[: len(item.indices[0])]) + item.spatial_shape
    if item.partial.exists():
        try:
            array = zarr.open_array(str(item.partial), mode="r+")
            stored = dict(array.attrs)
            if array.shape == shape and stored.get(ZARR_ATTR) == request:
                done = {}
                for info in stored.get(ZARR_DONE_ATTR, []):
                    done[tuple(info["index"])] = info
                item.infos.update(done)
                return set(done)
        except Exception:
            pass  # unreadable leftovers: start again
        shutil.rmtree(item.partial)
    chunks = (1,) * (len(shape) - len(item.spatial_shape)) + item.spatial_shape
    array = zarr.open_array(str(item.partial), mode="w", shape=shape, chunks=chunks, dtype="int32", fill_value=0)
    array.attrs[ZARR_ATTR] = request
    array.attrs[ZARR_DONE_ATTR] = []
    return set()


def _flush_zarr_progress(item: _Input) -> None:
    import zarr

    array = zarr.open_array(str(item.partial), mode="r+")
    array.attrs[ZARR_DONE_ATTR] = list(item.infos.values())


def _finish(item: _Input, spatial_ndim: int) -> None:
    """Write a finished input's output (TIFF), or seal its zarr by renaming it."""
    parameters = _output_parameters(item, spatial_ndim)
    if item.kind != "zarr":
        write_labels(item.output, item.labels, parameters)
        item.labels = None
        return
    import zarr

    array = zarr.open_array(str(item.partial), mode="r+")
    array.attrs[ZARR_ATTR] = parameters
    del array.attrs[ZARR_DONE_ATTR]
    if item.output.exists():  # --overwrite: move the old one aside, then swap
        old = item.output.with_name(f".{item.output.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(item.output, old)
        os.replace(item.partial, item.output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(item.partial, item.output)


# ---------------------------------------------------------------- the run
def _connect(scheduler: str | None, workers: int):
    """A dask client: to ``scheduler`` if given, else to a new local cluster."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s"), None
        except Exception as exc:
            raise CliError(
                f"cannot connect to the dask scheduler at {scheduler} ({type(exc).__name__}: {exc})."
            ) from exc
    # Processes with one thread each: the pipeline holds the GIL in places,
    # and one BLAS thread per worker avoids oversubscribing the cores.
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    )
    return Client(cluster), cluster


def _summary(items, wall: float) -> str:
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


def run_batch(
    inputs,
    out_dir,
    params: dict,
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
    params : dict
        Keyword arguments of :func:`napari_spectral_seg.segment`, e.g. from
        :func:`resolve_parameters`.
    spatial_ndim : {2, 3}
        Axes of a frame; leading axes beyond it are a series.
    scheduler : str, optional
        Address of a running dask scheduler; None starts a local cluster of
        ``workers`` processes with one thread each.
    workers : int, optional
        Local cluster size (default: the number of CPUs).
    overwrite : bool
        Redo inputs whose output is already complete.
    progress : bool
        Show a progress bar on stderr.
    stream : file, optional
        Where the summary table goes (stdout).

    Returns
    -------
    exit_code : int
        0 if every input is written or skipped, 1 if any failed.
    items : list
        Per input: path, output, status, reason, frames, segments, seconds.

    Raises
    ------
    CliError
        Usage errors: nothing to do, clashing output names, no scheduler.
    """
    from distributed import as_completed
    from tqdm import tqdm

    stream = stream or sys.stdout
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    paths = expand_inputs(inputs)
    if not paths:
        raise CliError("no input files given.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{out_dir}: cannot create the output directory ({exc}).") from exc
    items = [_Input(path, _KIND[path.suffix.lower()], output_path(out_dir, path)) for path in paths]
    clash = {}
    for item in items:
        clash.setdefault(item.output, []).append(item.path)
    for output, sources in clash.items():
        if len(sources) > 1:
            raise CliError(
                f"{', '.join(map(str, sources))} would all be written to {output}; "
                "rename them or run them into different --out directories."
            )
    for item in items:
        _plan(item, params, spatial_ndim, overwrite)

    todo = [item for item in items if item.status == "pending"]
    client = cluster = None
    futures = {}
    bar = None
    done_zarr_flush = {}
    interrupted = False

    def report_failure(item, reason):
        item.status, item.reason = "failed", reason
        item.labels = None
        if item.partial is not None and item.partial.exists():
            _flush_zarr_progress(item)  # keep its finished frames for the next run
        message = f"failed: {item.path}: {reason}"
        if bar is not None:
            bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    for item in items:
        if item.status == "failed":
            report_failure(item, item.reason)
    try:
        if todo:
            client, cluster = _connect(scheduler, workers or os.cpu_count() or 1)
            for item in todo:
                item.status = "running"
                skip = set()
                out_zarr = None
                if item.kind == "zarr":
                    skip = _open_partial_zarr(item, spatial_ndim)
                    out_zarr = str(item.partial)
                for index in item.indices:
                    if index in skip:
                        continue
                    future = client.submit(
                        segment_frame,
                        str(item.path),
                        item.kind,
                        index,
                        item.params,
                        out_zarr,
                        pure=False,
                        # unique: other clients may share the scheduler
                        key=f"segment-{item.path.stem}-{uuid.uuid4().hex}",
                    )
                    futures[future] = (item, index)
            n_total = len(futures)
            bar = tqdm(total=n_total, unit="frame", file=sys.stderr, disable=not progress, dynamic_ncols=True)

            def postfix():
                states = [item.status for item in items]
                bar.set_postfix_str(
                    f"inputs done {states.count('written') + states.count('skipped')}, "
                    f"failed {states.count('failed')}, remaining {states.count('running')}"
                )

            postfix()
            # Inputs whose remaining frames were all done in an earlier run.
            for item in todo:
                if item.status == "running" and len(item.infos) == item.n_frames:
                    _finish(item, spatial_ndim)
                    item.status = "written"
            for future in as_completed(list(futures)):
                item, index = futures.pop(future)
                if item.status != "running":  # a frame of an input that already failed
                    future.cancel()
                    bar.update(1)
                    continue
                try:
                    labels, info = future.result()
                except Exception as exc:
                    where = f"frame {index}: " if index else ""
                    report_failure(item, f"{where}{exc}")
                    client.cancel([f for f, (other, _) in futures.items() if other is item])
                    bar.update(1)
                    postfix()
                    continue
                item.infos[index] = info
                if labels is not None:
                    if item.labels is None:  # allocated on the first frame, not for queued inputs
                        item.labels = np.zeros(item.shape[: len(index)] + labels.shape, labels.dtype)
                    item.labels[index if index else ...] = labels
                elif time.monotonic() - done_zarr_flush.get(id(item), 0) > _ZARR_FLUSH_INTERVAL:
                    _flush_zarr_progress(item)
                    done_zarr_flush[id(item)] = time.monotonic()
                if len(item.infos) == item.n_frames:
                    try:
                        _finish(item, spatial_ndim)
                        item.status = "written"
                    except Exception as exc:
                        report_failure(item, f"cannot write {item.output} ({exc})")
                bar.update(1)
                postfix()
    except KeyboardInterrupt:
        interrupted = True
        for item in items:
            if item.status == "running" and item.partial is not None:
                _flush_zarr_progress(item)
    finally:
        if bar is not None:
            bar.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    if interrupted:
        written = sum(item.status == "written" for item in items)
        print(
            f"{PROG}: interrupted; {written} output(s) complete and no partial file left; "
            "run the same command again to resume.",
            file=sys.stderr,
        )
        return 130, items
    print(_summary(items, time.perf_counter() - t0), file=stream)
    code = 1 if any(item.status == "failed" for item in items) else 0
    return code, items


# ---------------------------------------------------------------- command line
def add_batch_arguments(parser) -> None:
    """The ``batch`` subcommand's arguments (flags default to None: "not given")."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files or glob patterns (.tif, .png, .jpg, .npy, .zarr); quote globs",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output directory: DIR/<stem>_labels.tif (or .zarr for zarr inputs)"
    )
    parser.add_argument(
        "--params", metavar="FILE", help="JSON/YAML parameter file (as the widget saves it); flags override it"
    )
    parser.add_argument(
        "--spatial-ndim",
        type=int,
        choices=(2, 3),
        default=None,
        help="axes of one frame; leading axes beyond are a time series (default: len(spacing), else 2)",
    )
    add_segmentation_arguments(parser, {name: None for name in SEGMENT_DEFAULTS})
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", help="submit to a running dask scheduler, e.g. tcp://host:8786"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="without --scheduler: local worker processes (default: CPU count)"
    )
    parser.add_argument("--overwrite", action="store_true", help="redo inputs whose output is complete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_batch(args) -> int:
    """Run ``napari-spectral-seg batch``; returns the exit code."""
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers {args.workers}: need at least 1.")
    try:
        file_params = load_parameters(args.params) if args.params else {}
        flags = dict(
            threshold=args.threshold,
            n_clusters=args.n_clusters,
            beta=args.beta,
            eigen_solver=args.eigen_solver,
            min_size=args.min_size,
            spacing=args.spacing,
            sigma=args.sigma,
            sensitivity=args.sensitivity,
            edge_level=args.edge_level,
            random_state=args.seed,
            spatial_ndim=args.spatial_ndim,
        )
        params, spatial_ndim = resolve_parameters(file_params, flags)
    except (ValueError, TypeError) as exc:
        raise CliError(str(exc)) from exc
    code, _ = run_batch(
        args.inputs,
        args.out,
        params,
        spatial_ndim,
        scheduler=args.scheduler,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    return code
