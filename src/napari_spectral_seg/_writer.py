"""napari's File > Save of a Labels layer (TIFF, or .npy), with its segmentation parameters and voxel size.

The npe2 writer of ``napari.yaml``: napari hands over the layer's data and
its attributes (``metadata``, ``scale``, ``units``, ``axis_labels``). The
labels are written by :func:`napari_spectral_seg.io.write_labels`
(atomically, with the parameters recorded in ``metadata["spectral_seg"]``,
as ``segment`` writes them), at the layer's scale: an ImageJ hyperstack that
Fiji opens at that scale, and that ``batch --params`` can replay; an ``.npy``
gets the parameters (and the voxel size) in its ``<name>.npy.json`` sidecar.
Imports neither napari nor Qt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .io import METADATA_KEY, InputError, VoxelSize, write_labels

__all__ = ["layer_voxel_size", "write_labels_layer"]

TIME_AXIS_LABELS = ("t", "time", "frame", "frames")  # as the widget names a movie's first axis


def _spatial_axes(labels: np.ndarray, record: dict, axis_labels) -> int:
    """How many trailing axes of the labels are space: as the run recorded, else 3 for a z-stack, 2 for a movie."""
    spacing = record.get("spacing")
    if isinstance(spacing, (list, tuple)) and len(spacing) in (2, 3) and len(spacing) <= labels.ndim:
        return len(spacing)
    first = str(axis_labels[0]).strip().lower() if axis_labels else ""
    return 3 if labels.ndim >= 3 and first not in TIME_AXIS_LABELS else min(labels.ndim, 2)


def layer_voxel_size(labels: np.ndarray, attributes: dict) -> VoxelSize | None:
    """The voxel size of a layer's spatial axes from its ``scale`` and ``units``; None at scale 1 in pixels."""
    record = (attributes.get("metadata") or {}).get(METADATA_KEY) or {}
    n_spatial = _spatial_axes(labels, record, attributes.get("axis_labels"))
    scale = tuple(float(v) for v in (attributes.get("scale") or (1.0,) * labels.ndim))[-n_spatial:]
    units = attributes.get("units") or ()
    unit = str(units[-1]) if len(units) else None
    if unit in ("pixel", "pixels", "px", ""):
        unit = None
    if unit is None and all(v == 1.0 for v in scale):
        return None
    return VoxelSize.from_spacing(scale, unit, source="napari layer scale")


def write_labels_layer(path: str, data: Any, attributes: dict) -> list[str]:
    """Write one Labels layer to ``path`` (``.tif``/``.tiff``/``.npy``) with its parameters and voxel size.

    Parameters
    ----------
    path : str
        Where napari's File > Save asked for.
    data : array-like or list of them
        The layer's labels (a multiscale layer's first level).
    attributes : dict
        The layer's state, as napari gives it to writers.

    Returns
    -------
    list of str
        ``[path]``.

    Raises
    ------
    OSError
        The file cannot be written (the message names it and why); an
        earlier file there is left as it was.
    """
    if isinstance(data, (list, tuple)):  # multiscale: the full resolution
        data = data[0]
    labels = np.asarray(data)
    parameters = dict((attributes.get("metadata") or {}).get(METADATA_KEY) or {})
    voxel = layer_voxel_size(labels, attributes)
    if voxel is not None:
        parameters["voxel_size"] = voxel.record()
    try:
        write_labels(path, labels, parameters, voxel_size=voxel)
    except InputError as exc:
        # napari takes a writer's ValueError for "not a writer of this file" and drops its message.
        raise OSError(str(exc)) from exc
    return [str(path)]
