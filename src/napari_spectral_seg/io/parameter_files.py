"""Parameter files: JSON, YAML, or a labels TIFF written by ``segment`` or ``batch``."""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
from pathlib import Path

from ..core.params import PER_IMAGE, SegmentationParams
from ..core.prepare import CHOSEN_KEYS
from .common import METADATA_KEY, ParameterFileError, first_line
from .labels import LABELS_FILE_KEY, stored_parameters

__all__ = ["FILE_KEYS", "load_parameters"]

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
        "voxel_size",
        LABELS_FILE_KEY,
        *CHOSEN_KEYS,
        *PER_IMAGE,
    }
)


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

            return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (a SafeLoader)
        return json.loads(text)
    except Exception as exc:  # any parse failure is a bad file for the user
        raise ParameterFileError(f"{_where(path, exc)}: cannot read parameters ({_parse_problem(exc)}).") from exc


# A number with an exponent and no point (1e9, 2E-3): YAML 1.1, which PyYAML
# follows, reads it as text; YAML 1.2 and JSON as a number, as a user means it.
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


@functools.cache
def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))
    return Loader


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
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start}); save it as UTF-8"
    if isinstance(exc, RecursionError):
        return 'nested too deeply: a parameter file is one object of parameters, e.g. {"n_clusters": 4}'
    problem = getattr(exc, "problem", None)
    if problem:
        return f"not valid YAML: {problem}"
    return f"{type(exc).__name__}: {first_line(exc)}"


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
    if path.is_dir():
        raise ParameterFileError(f"{path}: is a folder; pass a parameter file (.json, .yaml or a labels .tif).")
    if not path.is_file():
        if path.exists():  # reading a pipe or a device could block or never end
            raise ParameterFileError(
                f"{path}: is not a regular file (a named pipe or a device); pass a parameter file."
            )
        raise ParameterFileError(f"{path}: no such parameter file.")
    data = _read_object(path)
    if isinstance(data, dict) and METADATA_KEY in data:
        if not isinstance(data[METADATA_KEY], dict):
            raise ParameterFileError(
                f'{path}: "{METADATA_KEY}" holds {data[METADATA_KEY]!r}; it holds the parameters as an object, '
                f'e.g. {{"{METADATA_KEY}": {{"n_clusters": 4}}}}.'
            )
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
