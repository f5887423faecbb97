"""Reading and writing the files of the command line and of ``batch``.

Images (whole, or one frame of a series), labels (written atomically, with
the parameters that made them), the parameters stored in an output, and
parameter files (JSON, YAML, or a labels TIFF).

Errors a user can fix (a missing or unreadable file, a suffix that is not
supported, an output directory that does not exist) are :class:`InputError`,
and :class:`ParameterFileError` for parameter files: both are
:class:`ValueError` subclasses whose message names the file; the command line
prints them as one line.
"""

from __future__ import annotations

import difflib
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
    "check_output_path",
    "input_kind",
    "load_parameters",
    "probe",
    "read_frame",
    "read_image",
    "stored_parameters",
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
        *PER_IMAGE,
    }
)


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
        -1 for colour PNG/JPEG (alpha dropped), else None.

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
        if suffix == ".npy":
            image = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            image = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            image = iio.imread(path)
    except Exception as exc:  # any reader failure is a bad file for the user
        raise InputError(f"{path}: cannot read it as an image ({type(exc).__name__}: {exc}).") from exc
    channel_axis = None
    if suffix in (".png", ".jpg", ".jpeg") and image.ndim == 3:
        image = image[..., :3]
        channel_axis = -1
    return np.asarray(image), channel_axis


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
            return tuple(tif.series[0].shape), None
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
    cannot address one frame of them cheaply); PNG/JPEG are one frame.
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


def write_labels(path: str | os.PathLike, labels: np.ndarray, parameters: dict) -> None:
    """Write labels atomically (temporary file, then rename) with the parameters.

    ``.tif`` files carry the parameters as JSON in the image description;
    ``.npy`` files get a sidecar ``<name>.json``. A failed or interrupted
    write leaves no file behind.

    Raises
    ------
    InputError
        The path is refused by :func:`check_output_path`, or writing fails.
    """
    path = check_output_path(path)
    suffix = path.suffix.lower()
    text = json.dumps(parameters, default=str)
    tmp = path.with_name(f".{path.name}.partial{suffix}")
    try:
        if suffix == ".npy":
            np.save(tmp, labels)
        else:
            import tifffile

            tifffile.imwrite(tmp, labels, description=text, metadata=None)
        os.replace(tmp, path)
        if suffix == ".npy":
            path.with_name(path.name + ".json").write_text(text)
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({exc.strerror or exc}).") from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def stored_parameters(output: str | os.PathLike) -> dict | None:
    """The parameters stored in a labels output (TIFF description or zarr attribute), or None if unreadable."""
    output = Path(output)
    try:
        if output.suffix == ".zarr":
            import zarr

            return dict(zarr.open_array(str(output), mode="r").attrs[METADATA_KEY])
        import tifffile

        with tifffile.TiffFile(output) as tif:
            return json.loads(tif.pages[0].description)
    except Exception:
        return None


# ---------------------------------------------------------------- parameter files
def _read_object(path: Path):
    """The JSON/YAML object of a parameter file, or a labels TIFF's stored parameters."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                return json.loads(tif.pages[0].description)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(path.read_text())
        return json.loads(path.read_text())
    except Exception as exc:  # any parse failure is a bad file for the user
        raise ParameterFileError(f"{path}: cannot read parameters ({type(exc).__name__}: {exc}).") from exc


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
    - Any other key is informational and ignored (``image``, ``mask``,
      ``seeds``, ``seconds``, ``version``, ``threshold_used``,
      ``n_segments``, ``input``, ``frames``...). A key that looks like a
      misspelt parameter name raises, so a typo is not silently dropped.

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
        The file is missing, is not JSON/YAML, is not an object, or has a
        misspelt parameter name.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterFileError(f"{path}: no such parameter file.")
    data = _read_object(path)
    if isinstance(data, dict) and isinstance(data.get(METADATA_KEY), dict):
        data = data[METADATA_KEY]
    if not isinstance(data, dict):
        raise ParameterFileError(f'{path}: expected an object of parameters, e.g. {{"n_clusters": 4}}.')
    for key in data:
        if key not in FILE_KEYS and key not in _INFORMATIONAL_KEYS:
            close = difflib.get_close_matches(str(key), FILE_KEYS, n=1, cutoff=0.8)
            if close:
                raise ParameterFileError(f"{path}: unknown parameter '{key}'; did you mean '{close[0]}'?")
    return {key: tuple(data[key]) if isinstance(data[key], list) else data[key] for key in FILE_KEYS if key in data}
