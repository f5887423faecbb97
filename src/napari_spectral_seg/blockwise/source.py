"""The image a blockwise run reads: a zarr array, one level of an OME-Zarr image, or a TIFF read lazily.

A :class:`Source` is small and picklable: the client opens the input once to
learn its shape, axes and voxel size, and each worker reads only the boxes
it is given (:meth:`Source.read`), opening the store itself (once per
process). Non-spatial axes (``c``, ``t``) of an OME-Zarr image must have
length 1: a blockwise run segments one single-channel 2D or 3D image.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Source", "SourceError", "multiscales_of", "open_source"]

_TIFF_SUFFIXES = (".tif", ".tiff")
_SPATIAL_NAMES = ("z", "y", "x")


class SourceError(ValueError):
    """The input cannot be read blockwise; the message says why and what to pass instead."""


@dataclass(frozen=True)
class Source:
    """Where the pixels are and what they are.

    Attributes
    ----------
    path : str
        The zarr store, OME-Zarr image group or TIFF file.
    kind : {"zarr", "ome-zarr", "tif"}
    component : str
        The array's path inside the store ("" for a store that is an array).
    shape : tuple of int
        Spatial shape (the axes segmented).
    dtype : str
    axes : tuple of str
        Names of the spatial axes (``("y", "x")`` or ``("z", "y", "x")``).
    scale : tuple of float or None
        Voxel size per spatial axis at this level (OME-Zarr), else None.
    units : tuple of str or None
        Units of the spatial axes, when the OME-Zarr metadata names them.
    translation : tuple of float or None
        Position of the first pixel per spatial axis at this level (OME-Zarr).
    leading : tuple of int
        Index into the stored array's length-1 non-spatial axes (dropped).
    level : int
        The OME-Zarr resolution level read (0 otherwise).
    """

    path: str
    kind: str
    component: str
    shape: tuple
    dtype: str
    axes: tuple
    scale: tuple | None = None
    units: tuple | None = None
    translation: tuple | None = None
    leading: tuple = ()
    level: int = 0

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def read(self, box) -> np.ndarray:
        """The pixels of ``box`` (a ``(start, stop)`` pair per spatial axis) as a numpy array."""
        array = _open_array(self.path, self.kind, self.component)
        return np.asarray(array[self.leading + tuple(slice(a, b) for a, b in box)])

    def identity(self) -> dict:
        """What a resumed run must find unchanged: path, array, shape and dtype."""
        return dict(
            path=str(Path(self.path).resolve()),
            kind=self.kind,
            component=self.component,
            shape=list(self.shape),
            dtype=self.dtype,
        )


@functools.lru_cache(maxsize=8)
def _open_array(path: str, kind: str, component: str):
    """The stored array, opened once per process (workers read many boxes of it)."""
    import zarr

    if kind == "tif":
        import tifffile

        return zarr.open(tifffile.imread(path, aszarr=True), mode="r")
    if component:
        return zarr.open_group(path, mode="r")[component]
    return zarr.open_array(path, mode="r")


def open_source(path, level: int = 0) -> Source:
    """Open ``path`` for a blockwise run, without reading its pixels.

    Parameters
    ----------
    path : str or Path
        A zarr array, an OME-Zarr image group (multiscales), or a TIFF.
    level : int
        OME-Zarr resolution level (0: full resolution).

    Raises
    ------
    SourceError
        Missing path, not an array or an OME-Zarr image, a level out of
        range, or axes that are not 2 or 3 spatial axes.
    """
    import zarr

    path = str(path)
    if not Path(path).exists():
        raise SourceError(f"{path}: no such file or directory.")
    if path.lower().endswith(_TIFF_SUFFIXES):
        array = _open_array(path, "tif", "")
        return _plain(path, "tif", array, level)
    try:
        node = zarr.open(path, mode="r")
    except Exception as exc:
        raise SourceError(f"{path}: cannot open it as zarr ({type(exc).__name__}: {exc}).") from exc
    if isinstance(node, zarr.Array):
        return _plain(path, "zarr", node, level)
    return _ome_image(path, node, level)


def _plain(path: str, kind: str, array, level: int) -> Source:
    if level != 0:
        raise SourceError(f"--level {level}: {path} is a single array, it has only level 0.")
    if array.ndim not in (2, 3):
        raise SourceError(
            f"{path}: array of shape {array.shape} has {array.ndim} axes; blockwise segmentation takes one "
            "2D or 3D single-channel image."
        )
    axes = _SPATIAL_NAMES[-array.ndim :]
    return Source(path, kind, "", tuple(int(n) for n in array.shape), str(array.dtype), axes)


def multiscales_of(attrs: dict) -> list:
    """The ``multiscales`` list of OME-Zarr 0.4 (top level) or 0.5 (under ``"ome"``)."""
    return attrs.get("ome", {}).get("multiscales") or attrs.get("multiscales") or []


def _ome_image(path: str, group, level: int) -> Source:
    multiscales = multiscales_of(dict(group.attrs))
    if not multiscales:
        raise SourceError(
            f"{path}: a zarr group without OME-Zarr 'multiscales' metadata; pass the array inside it "
            "(e.g. PATH/0) or an OME-Zarr image."
        )
    image = multiscales[0]
    datasets = image["datasets"]
    if not 0 <= level < len(datasets):
        raise SourceError(f"--level {level}: {path} has levels 0 to {len(datasets) - 1}.")
    array = group[datasets[level]["path"]]
    axes = [axis if isinstance(axis, dict) else {"name": axis} for axis in image.get("axes", [])]
    if len(axes) != array.ndim:
        axes = [{"name": name, "type": "space"} for name in ("t", "c", "z", "y", "x")[-array.ndim :]]
    scale, translation = _level_transform(image, datasets[level], array.ndim)
    spatial = [i for i, axis in enumerate(axes) if axis.get("type", "space") == "space"]
    for i, axis in enumerate(axes):
        if i not in spatial and array.shape[i] != 1:
            raise SourceError(
                f"{path}: axis '{axis['name']}' has length {array.shape[i]}; blockwise segmentation takes one "
                "single-channel 2D or 3D image: write that channel or time point as an image of its own."
            )
    if len(spatial) not in (2, 3):
        raise SourceError(f"{path}: {len(spatial)} spatial axes; blockwise segmentation takes 2 or 3.")
    units = tuple(axes[i].get("unit", "") for i in spatial)
    return Source(
        path,
        "ome-zarr",
        datasets[level]["path"],
        tuple(int(array.shape[i]) for i in spatial),
        str(array.dtype),
        tuple(axes[i]["name"] for i in spatial),
        scale=tuple(scale[i] for i in spatial),
        units=units if any(units) else None,
        translation=tuple(translation[i] for i in spatial) if any(translation) else None,
        leading=tuple(0 for i in range(spatial[0])),
        level=level,
    )


def _level_transform(image: dict, dataset: dict, ndim: int) -> tuple[list, list]:
    """Voxel size and first-pixel position per axis of one level, the multiscale-wide transform applied after."""
    scale, translation = np.ones(ndim), np.zeros(ndim)
    for transforms in (dataset.get("coordinateTransformations", []), image.get("coordinateTransformations", [])):
        for transform in transforms:
            if transform.get("type") == "scale":
                factor = np.asarray(transform["scale"], dtype=float)
                scale, translation = scale * factor, translation * factor
            elif transform.get("type") == "translation":
                translation = translation + np.asarray(transform["translation"], dtype=float)
    return [float(v) for v in scale], [float(v) for v in translation]
