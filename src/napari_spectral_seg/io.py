"""Reading and writing the files of the command line and of ``batch``.

Images (whole, or one frame of a series; RGB(A) TIFFs and colour PNG/JPEG
with their channel axis), labels (written atomically, with the parameters
that made them), the parameters stored in an output, whether an output was
written by this package, the identity of an input file, and parameter files
(JSON, YAML, or a labels TIFF).

Errors a user can fix (a missing or unreadable file, a suffix that is not
supported, an output directory that does not exist) are :class:`InputError`,
and :class:`ParameterFileError` for parameter files: both are
:class:`ValueError` subclasses whose message names the file; the command line
prints them as one line.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .core.params import PER_IMAGE, SegmentationParams

__all__ = [
    "FILE_KEYS",
    "METADATA_KEY",
    "InputError",
    "ParameterFileError",
    "INPUT_IDENTITY_KEY",
    "TABLE_RECORD_KEY",
    "check_output_path",
    "file_identity",
    "input_kind",
    "load_parameters",
    "probe",
    "read_frame",
    "read_image",
    "same_content",
    "same_file",
    "stored_input_identity",
    "stored_table_record",
    "stored_parameters",
    "tiff_colour_axis",
    "written_by_us",
    "write_labels",
]

READ_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy")
WRITE_SUFFIXES = (".tif", ".tiff", ".npy")
# What a frame reader does with each input suffix (``batch`` also reads zarr arrays).
_KIND = {".tif": "tif", ".tiff": "tif", ".png": "png", ".jpg": "png", ".jpeg": "png", ".npy": "npy", ".zarr": "zarr"}
INPUT_SUFFIXES = tuple(_KIND)
# The key the parameters are stored under: in a result layer's metadata, a
# saved parameter file and a zarr output's attributes.
METADATA_KEY = "spectral_seg"
# The keys a parameter file may set: every parameter but the per-image ones,
# plus batch's frame size.
FILE_KEYS = tuple(name for name in SegmentationParams.names() if name not in PER_IMAGE) + ("spatial_ndim",)
# Keys written next to the parameters by the widget, `segment` and `batch`:
# ignored in a parameter file, and never mistaken for a misspelt parameter.
_INFORMATIONAL_KEYS = frozenset(
    {
        "image",
        "mask",
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
        "split_ratios",
        "per_frame",
        *PER_IMAGE,
    }
)
# Where an output keeps the identity of the input it was made from (batch):
# a zarr attribute, or this private tag of a TIFF (JSON text). Not in the
# parameters, so they stay exactly what ``segment()`` records.
INPUT_IDENTITY_KEY = "spectral_seg_input"
_IDENTITY_TAG = 65111
# Likewise the record of the measurement table batch writes next to an output
# (napari_spectral_seg.tables.table_record).
TABLE_RECORD_KEY = "spectral_seg_measurements"
_TABLE_TAG = 65112
# Keys every set of parameters this package records holds: how an output
# written by ``segment``, ``batch`` or the widget is told from another file.
_OUR_KEYS = frozenset({"threshold", "n_clusters", "beta", "eigen_solver", "random_state"})


class InputError(ValueError):
    """A file that cannot be read or written as asked; the message names it and the fix."""


class ParameterFileError(InputError):
    """A parameter file that cannot be read or is not an object of parameters."""


# ---------------------------------------------------------------- images
def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int | None]:
    """Read an image file.

    Parameters
    ----------
    path : path-like
        ``.tif``/``.tiff``, ``.png``/``.jpg`` or ``.npy``.

    Returns
    -------
    image : ndarray
    channel_axis : int or None
        The colour axis (alpha dropped) of a colour PNG/JPEG (-1) or an
        RGB(A) TIFF (see :func:`tiff_colour_axis`), else None.

    Raises
    ------
    InputError
        Unsupported suffix, no such file, or the reader fails.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise InputError(f"{path}: unsupported file type '{suffix}'; use one of {', '.join(READ_SUFFIXES)}.")
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    try:
        channel_axis = None
        if suffix == ".npy":
            image = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                image, channel_axis = tif.asarray(), tiff_colour_axis(tif)
        else:
            import imageio.v3 as iio

            image = iio.imread(path)
            channel_axis = -1 if image.ndim == 3 else None
    except Exception as exc:  # any reader failure is a bad file for the user
        raise InputError(f"{path}: cannot read it as an image ({type(exc).__name__}: {_first_line(exc)}).") from exc
    image = np.asarray(image)
    return (image if channel_axis is None else _without_alpha(image, channel_axis)), channel_axis


def tiff_colour_axis(tif) -> int | None:
    """The colour axis of an RGB(A) TIFF, counted from the end (-1, or -3 for planar RGB); None for grey.

    Colour is photometric RGB with its samples last (the usual RGB TIFF),
    photometric RGB in separate planes for 8- and 16-bit integers, or uint8
    data whose last axis holds 3 or 4 values (RGB or RGBA without the tag).
    A float stack of 3 or 4 frames that tifffile stored as planar "RGB" by
    default is not colour.
    """
    import tifffile

    series = tif.series[0]
    axes, shape, dtype = series.axes, series.shape, series.dtype
    if series.keyframe.photometric == tifffile.PHOTOMETRIC.RGB and "S" in axes:
        if axes.endswith("S") or dtype in (np.uint8, np.uint16):
            return axes.index("S") - len(axes)
    if len(shape) >= 3 and shape[-1] in (3, 4) and dtype == np.uint8:
        return -1
    return None


def _without_alpha(image: np.ndarray, channel_axis: int) -> np.ndarray:
    """The first three channels (RGB) of a colour image: alpha and any extra samples dropped."""
    if image.shape[channel_axis] <= 3:
        return image
    return np.take(image, [0, 1, 2], axis=channel_axis)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def input_kind(path: str | os.PathLike) -> str:
    """How frames are read from ``path``: "tif", "png" (also JPEG), "npy" or "zarr".

    Raises
    ------
    InputError
        The suffix is not one of ``INPUT_SUFFIXES``.
    """
    path = Path(path)
    kind = _KIND.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unsupported file type '{path.suffix}'; use one of {', '.join(INPUT_SUFFIXES)}.")
    return kind


def probe(path: str | os.PathLike, kind: str) -> tuple[tuple[int, ...], int | None]:
    """Shape of an input and its reader's channel axis, reading only its header."""
    if kind == "npy":
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape), None
    if kind == "tif":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            shape, channel_axis = list(tif.series[0].shape), tiff_colour_axis(tif)
        if channel_axis is not None:  # alpha is dropped, as read_image does
            shape[channel_axis] = min(shape[channel_axis], 3)
        return tuple(shape), channel_axis
    if kind == "zarr":
        import zarr

        return tuple(zarr.open_array(str(path), mode="r").shape), None
    import imageio.v3 as iio

    shape = tuple(iio.improps(path).shape)
    if len(shape) == 3:  # colour: alpha is dropped, as read_image does
        return shape[:2] + (min(shape[2], 3),), -1
    return shape, None


def read_frame(path: str, kind: str, index: tuple[int, ...]) -> np.ndarray:
    """Read one frame of an input, touching as little of the file as the format allows.

    ``.npy`` and uncompressed ``.tif`` are memory-mapped, ``.zarr`` reads
    only the chunks of the frame; compressed TIFFs are read whole (tifffile
    cannot address one frame of them cheaply); PNG/JPEG are one frame. The
    alpha channel of an RGBA file is dropped, as :func:`read_image` does.
    """
    if kind == "zarr":
        import zarr

        array = zarr.open_array(path, mode="r")
        return np.asarray(array[index] if index else array[...])
    if kind == "npy":
        return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[index])
    if kind == "tif":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            channel_axis = tiff_colour_axis(tif)
        try:
            array = tifffile.memmap(path, mode="r")
        except Exception:  # compressed or tiled: no memory map, read it all
            array = tifffile.imread(path)
        frame = np.array(array[index])
        return frame if channel_axis is None else _without_alpha(frame, channel_axis)
    image, _ = read_image(path)
    return image


# ---------------------------------------------------------------- labels
def check_output_path(path: str | os.PathLike) -> Path:
    """Refuse an output path that cannot be written, before any work is done.

    Raises
    ------
    InputError
        Not ``.tif``/``.npy``, or its directory is missing or not writable.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise InputError(f"{path}: cannot write '{suffix}'; the output must end in .tif or .npy.")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: output directory does not exist; create it first.")
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"{path.parent}: output directory is not writable.")
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same path spelt differently, a symlink or a hard link."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _partial(path: Path) -> Path:
    """The temporary name a file is written under before it is renamed into place (hidden, same directory)."""
    return path.with_name(f".{path.name}.partial{path.suffix}")


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` and flush it to disk (a rename that follows never exposes an empty file)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    parameters: dict,
    *,
    input_identity: dict | None = None,
    table_record: dict | None = None,
) -> None:
    """Write labels atomically (temporary files, then rename) with the parameters.

    ``.tif`` files carry the parameters as JSON in the image description
    (and ``input_identity``, from :func:`file_identity`, and
    ``table_record``, the measurement table's, each in a private tag);
    ``.npy`` files get a sidecar ``<name>.json``. Everything is written and
    flushed under hidden temporary names first (``.<name>.partial.<suffix>``),
    then renamed: the sidecar, then the labels. A failed or interrupted
    write (a full disk, Ctrl-C, SIGTERM from the command line) removes the
    temporary files and leaves an earlier output as it was: never a
    half-written file, an empty sidecar or a new sidecar without its labels.

    Raises
    ------
    InputError
        The path is refused by :func:`check_output_path`, or writing fails.
    """
    path = check_output_path(path)
    suffix = path.suffix.lower()
    text = json.dumps(parameters, default=str)
    tmp = _partial(path)
    sidecar = path.with_name(path.name + ".json") if suffix == ".npy" else None
    temporaries = [tmp] + ([_partial(sidecar)] if sidecar else [])
    try:
        if sidecar is not None:
            if input_identity is not None or table_record is not None:
                raise InputError(f"{path}: the input's identity is stored in TIFF outputs only.")
            with open(tmp, "wb") as fh:
                np.save(fh, labels)
                fh.flush()
                os.fsync(fh.fileno())
            _write_text(temporaries[1], text)
            os.replace(temporaries[1], sidecar)
            try:
                os.replace(tmp, path)
            except OSError:
                sidecar.unlink(missing_ok=True)  # no sidecar without its labels
                raise
        else:
            import tifffile

            private = ((_IDENTITY_TAG, input_identity), (_TABLE_TAG, table_record))
            extratags = [(tag, "s", 0, json.dumps(value), True) for tag, value in private if value is not None]
            tifffile.imwrite(tmp, labels, description=text, metadata=None, extratags=extratags)
            _sync(tmp)
            os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({exc.strerror or exc}).") from exc
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def stored_parameters(output: str | os.PathLike) -> dict | None:
    """The parameters stored in a labels output, or None if there are none or it is unreadable.

    A TIFF's description, a zarr array's attribute, an ``.npy`` file's sidecar.
    """
    output = Path(output)
    try:
        suffix = output.suffix.lower()
        if suffix == ".zarr":
            import zarr

            return dict(zarr.open_array(str(output), mode="r").attrs[METADATA_KEY])
        if suffix == ".npy":
            return json.loads(output.with_name(output.name + ".json").read_text())
        import tifffile

        with tifffile.TiffFile(output) as tif:
            return json.loads(tif.pages[0].description)
    except Exception:
        return None


def written_by_us(stored) -> bool:
    """Whether ``stored`` (from :func:`stored_parameters`) is what this package records with its results."""
    return isinstance(stored, dict) and _OUR_KEYS <= stored.keys()


def stored_input_identity(output: str | os.PathLike) -> dict | None:
    """The input identity stored with a batch output (:func:`write_labels`), or None."""
    return _stored_private(output, INPUT_IDENTITY_KEY, _IDENTITY_TAG)


def stored_table_record(output: str | os.PathLike) -> dict | None:
    """The record of the measurement table stored with a batch output (:func:`write_labels`), or None."""
    return _stored_private(output, TABLE_RECORD_KEY, _TABLE_TAG)


def _stored_private(output: str | os.PathLike, zarr_key: str, tiff_tag: int) -> dict | None:
    """What an output keeps apart from its parameters: a zarr attribute, or a private TIFF tag's JSON."""
    output = Path(output)
    try:
        if output.suffix.lower() == ".zarr":
            import zarr

            return dict(zarr.open_array(str(output), mode="r").attrs[zarr_key])
        import tifffile

        with tifffile.TiffFile(output) as tif:
            tag = tif.pages[0].tags.get(tiff_tag)
            return None if tag is None else json.loads(tag.value)
    except Exception:
        return None


def file_identity(path: str | os.PathLike) -> dict:
    """What identifies an input's content: its size, modification time and a BLAKE2b hash of its bytes.

    For a directory (a zarr store) the hash covers every file's relative
    path and bytes. Reading is done in blocks of 4 MiB; hashlib releases
    the GIL, so identities of several files can be computed in threads.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    path = Path(path)
    digest = hashlib.blake2b(digest_size=16)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    size = 0
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode("utf-8", "surrogateescape") + b"\0")
        with open(file, "rb") as fh:
            while block := fh.read(4 << 20):
                digest.update(block)
                size += len(block)
    stat = path.stat()
    return {"size": size, "mtime_ns": stat.st_mtime_ns, "blake2b": digest.hexdigest()}


def same_content(identity: dict | None, other: dict | None) -> bool:
    """Whether two :func:`file_identity` results describe the same content (size and hash; times may differ)."""
    if not identity or not other:
        return False
    return (identity.get("size"), identity.get("blake2b")) == (other.get("size"), other.get("blake2b"))


# ---------------------------------------------------------------- parameter files
def _read_object(path: Path):
    """The JSON/YAML object of a parameter file, or a labels TIFF's stored parameters."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        stored = stored_parameters(path)
        if stored is None:
            raise ParameterFileError(f"{path}: holds no parameters (not a labels file written by segment or batch).")
        return stored
    try:
        text = path.read_text(encoding="utf-8")
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:  # any parse failure is a bad file for the user
        raise ParameterFileError(f"{_where(path, exc)}: cannot read parameters ({_parse_problem(exc)}).") from exc


def _where(path: Path, exc: Exception) -> str:
    """``path``, with the line and column (from 1) where a JSON or YAML parser stopped."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{path}, line {exc.lineno}, column {exc.colno}"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)  # yaml.MarkedYAMLError
    if mark is not None:
        return f"{path}, line {mark.line + 1}, column {mark.column + 1}"
    return str(path)


def _parse_problem(exc: Exception) -> str:
    """What the parser said, in one line (no excerpt of the file)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg}"
    problem = getattr(exc, "problem", None)
    if problem:
        return f"not valid YAML: {problem}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def load_parameters(path: str | os.PathLike) -> dict:
    """Read segmentation parameters from a JSON or YAML file.

    This is the format the widget's "Save parameters" button writes, and what
    ``batch --params FILE`` reads::

        {"spectral_seg": {"threshold": "otsu", "n_clusters": 4, "beta": 1.0,
                          "eigen_solver": "auto", "random_state": 0,
                          "min_size": 20, "spacing": null, "channel_axis": null,
                          "image": "cells", "seconds": 1.2, "version": "0.1.0"}}

    - A JSON (or, for ``.yaml``/``.yml``, YAML) object whose keys are
      keyword arguments of :func:`napari_spectral_seg.segment` (every
      parameter of :class:`~napari_spectral_seg.core.params.SegmentationParams`
      but the per-image ``seeds``: ``FILE_KEYS``); plus ``spatial_ndim``
      (2 or 3) for batch.
    - The object may be nested under the key ``"spectral_seg"`` (the key of
      the result layer's metadata), which is then used alone.
    - The keys our own tools write next to the parameters are informational
      and ignored (``image``, ``mask``, ``seeds``, ``seconds``, ``version``,
      ``threshold_used``, ``n_segments``, ``input``, ``frames``...). Any
      other key raises, naming the parameter it probably means (``seed`` ->
      ``random_state``), so neither a typo nor a guessed name is dropped.

    The parameters stored in a labels TIFF written by ``segment`` or
    ``batch`` (its description) are the same object, so such a ``.tif`` may
    also be given to reproduce a run.

    The values are checked where they are used, with the other parameters
    (a file's ``sensitivity`` may rely on a ``--n-clusters auto`` flag):
    by :class:`~napari_spectral_seg.core.params.SegmentationParams`.

    Parameters
    ----------
    path : path-like
        ``.json``, ``.yaml``/``.yml`` or a labels ``.tif``.

    Returns
    -------
    dict
        Only the parameter keys present in the file, with JSON lists turned
        into tuples (``spacing``, ``sigma``).

    Raises
    ------
    ParameterFileError
        The file is missing, is not JSON/YAML (the message gives the line
        and column), is not an object, or has a key that is not a parameter.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterFileError(f"{path}: no such parameter file.")
    data = _read_object(path)
    if isinstance(data, dict) and isinstance(data.get(METADATA_KEY), dict):
        data = data[METADATA_KEY]
    if not isinstance(data, dict):
        raise ParameterFileError(f'{path}: expected an object of parameters, e.g. {{"n_clusters": 4}}.')
    unknown = [key for key in data if key not in FILE_KEYS and key not in _INFORMATIONAL_KEYS]
    if unknown:
        raise ParameterFileError(f"{path}: {_unknown_key_message(unknown[0])}")
    return {key: tuple(data[key]) if isinstance(data[key], list) else data[key] for key in FILE_KEYS if key in data}


def _unknown_key_message(key) -> str:
    """Why ``key`` is refused: SegmentationParams' message (closest parameter, aliases), or batch's frame size."""
    if difflib.get_close_matches(str(key), ["spatial_ndim"], n=1, cutoff=0.8):
        return f"unknown parameter '{key}'; did you mean 'spatial_ndim'?"
    try:
        SegmentationParams.from_mapping({key: None})
    except ValueError as exc:
        return str(exc)
    return f"unknown parameter {key!r}."
