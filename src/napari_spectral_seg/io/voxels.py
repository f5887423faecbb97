"""Voxel sizes in and out of TIFF files: ImageJ metadata, OME-TIFF PhysicalSize, TIFF resolution tags.

Read (:func:`read_voxel_size`): an OME-TIFF's ``PhysicalSizeX/Y/Z``; an
ImageJ TIFF's ``XResolution``/``YResolution`` with its ``unit`` and, for a
z-stack, ``spacing`` (the z step); else a plain TIFF's resolution tags with a
unit (inch or centimetre). Sizes are in micrometres where the unit is known.

Written (:func:`tiff_arguments`): a labels TIFF of at most 65,535 labels as
an ImageJ hyperstack (16-bit, the type ImageJ reads; resolution, unit, z
``spacing``, and the parameters in its ``Info``), so Fiji opens it at the
input's scale; more labels as a 32-bit TIFF with resolution tags (x and y)
and the parameters in its description.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from .common import tiff_warnings_off

__all__ = ["MICROMETRE", "VoxelSize", "read_voxel_size", "spacing_and_voxel_size", "tiff_arguments"]

MICROMETRE = "µm"
# Length units as ImageJ and OME spell them, in micrometres.
_IN_MICROMETRES = {
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "µm": 1.0,
    "\u03bcm": 1.0,  # Greek mu
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "mm": 1e3,
    "millimeter": 1e3,
    "cm": 1e4,
    "m": 1e6,
    "å": 1e-4,
    "angstrom": 1e-4,
}
_TIFF_UNIT_MICROMETRES = {2: 25400.0, 3: 10000.0}  # ResolutionUnit: inch, centimetre
_AXES = "ZYX"


@dataclass(frozen=True)
class VoxelSize:
    """The size of a pixel (voxel) along the spatial axes a file describes.

    Attributes
    ----------
    sizes : dict
        Axis (``"Z"``, ``"Y"``, ``"X"``) -> size, for the axes known.
    unit : str or None
        Their unit (:data:`MICROMETRE` where it was converted), None when the file names none.
    source : str
        Where they were read: "OME", "ImageJ", "TIFF resolution", or "--spacing".
    """

    sizes: dict
    unit: str | None = None
    source: str = ""

    @classmethod
    def from_spacing(cls, spacing, unit: str | None = None, source: str = "--spacing") -> VoxelSize:
        """The voxel size of ``spacing`` (one size per trailing spatial axis, z first)."""
        spacing = tuple(float(v) for v in spacing)
        return cls(dict(zip(_AXES[-len(spacing) :], spacing)), unit, source)

    def spacing(self, ndim: int) -> tuple | None:
        """Sizes of the last ``ndim`` spatial axes (z, y, x or y, x), or None if one is unknown."""
        axes = _AXES[-ndim:]
        if not all(axis in self.sizes for axis in axes):
            return None
        return tuple(float(self.sizes[axis]) for axis in axes)

    @property
    def has_z(self) -> bool:
        """Whether the file is a z-stack with a known z step."""
        return "Z" in self.sizes

    def record(self) -> dict:
        """What an output records of it, in JSON types."""
        return {
            "sizes": {axis: self.sizes[axis] for axis in _AXES if axis in self.sizes},
            "unit": self.unit,
            "source": self.source,
        }


def _in_micrometres(values: dict, units: dict) -> tuple[dict, str | None]:
    """``values`` converted to µm where every unit is known; else as they are, with their common unit."""
    factors = {axis: _IN_MICROMETRES.get(str(unit).strip().lower()) for axis, unit in units.items()}
    if all(factor is not None for factor in factors.values()):
        return {axis: value * factors[axis] for axis, value in values.items()}, MICROMETRE
    common = set(units.values())
    return values, (common.pop() if len(common) == 1 else None)


def _positive(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) and value > 0 else None


def _pixel_size(page, tag: str) -> float | None:
    """Size of a pixel from a resolution tag (pixels per unit), or None."""
    found = page.tags.get(tag)
    if found is None:
        return None
    value = found.value
    numerator, denominator = value if isinstance(value, tuple) else (value, 1)
    return _positive(denominator / numerator) if numerator else None


def _ome_voxel_size(tif) -> VoxelSize | None:
    root = ElementTree.fromstring(tif.ome_metadata)
    pixels = next((element for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    values, units = {}, {}
    for axis in _AXES:
        size = _positive(pixels.get(f"PhysicalSize{axis}"))
        if size is not None and not (axis == "Z" and int(pixels.get("SizeZ", "1")) <= 1):
            values[axis] = size
            units[axis] = pixels.get(f"PhysicalSize{axis}Unit", MICROMETRE)  # the OME schema's default
    if not values:
        return None
    values, unit = _in_micrometres(values, units)
    return VoxelSize(values, unit, "OME")


def _imagej_voxel_size(tif) -> VoxelSize | None:
    metadata = tif.imagej_metadata or {}
    page = tif.pages[0]
    values = {axis: _pixel_size(page, f"{axis}Resolution") for axis in "YX"}
    unit = metadata.get("unit")
    if unit in (None, "", "pixel", "pixels") and all(v in (None, 1.0) for v in values.values()):
        values = {}  # an uncalibrated ImageJ image: one pixel per pixel
    values = {axis: value for axis, value in values.items() if value is not None}
    spacing = _positive(metadata.get("spacing"))
    if spacing is not None and "Z" in tif.series[0].axes:
        values["Z"] = spacing
    if not values:
        return None
    if unit in (None, "", "pixel", "pixels"):
        return VoxelSize(values, None, "ImageJ")
    values, unit = _in_micrometres(values, dict.fromkeys(values, unit))
    return VoxelSize(values, unit, "ImageJ")


def _resolution_voxel_size(tif) -> VoxelSize | None:
    page = tif.pages[0]
    unit_tag = page.tags.get("ResolutionUnit")
    factor = _TIFF_UNIT_MICROMETRES.get(int(unit_tag.value) if unit_tag is not None else 2)  # the TIFF default: inch
    values = {axis: _pixel_size(page, f"{axis}Resolution") for axis in "YX"}
    if factor is None or any(value is None for value in values.values()):
        return None  # no unit (ResolutionUnit NONE): not a physical size
    return VoxelSize({axis: value * factor for axis, value in values.items()}, MICROMETRE, "TIFF resolution")


def _shaped_voxel_size(tif) -> VoxelSize | None:
    """The voxel size :func:`tiff_arguments` keeps in a JSON shape description, or None."""
    for metadata in tif.shaped_metadata or ():
        record = metadata.get(_SHAPED_KEY) if isinstance(metadata, dict) else None
        if isinstance(record, dict) and isinstance(record.get("sizes"), dict):
            sizes = {axis: _positive(size) for axis, size in record["sizes"].items() if axis in _AXES}
            if sizes and all(size is not None for size in sizes.values()):
                return VoxelSize(sizes, record.get("unit"), str(record.get("source") or ""))
    return None


def read_voxel_size(path: str | os.PathLike) -> VoxelSize | None:
    """The voxel size a TIFF records (OME, then ImageJ, then resolution tags), or None.

    None for other file types, a file without one, or one that cannot be
    read (:func:`~napari_spectral_seg.io.read_image` reports that).
    """
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return None
    import tifffile

    try:
        with tiff_warnings_off(), tifffile.TiffFile(path) as tif:
            if tif.is_ome:
                return _ome_voxel_size(tif)
            if tif.is_imagej:
                return _imagej_voxel_size(tif)
            return _shaped_voxel_size(tif) or _resolution_voxel_size(tif)
    except Exception:  # unreadable metadata is no voxel size; the image reader names a broken file
        return None


def spacing_and_voxel_size(
    voxel: VoxelSize | None, spacing, spatial_ndim: int
) -> tuple[tuple | None, VoxelSize | None]:
    """The ``spacing`` to segment with, and the voxel size the output carries.

    A given ``spacing`` wins (and is written, in the file's unit); else the
    file's voxel size for the frame's ``spatial_ndim`` axes (None, isotropic,
    where one is unknown); a file with a z step alone writes none.
    """
    if spacing is not None:
        return tuple(spacing), VoxelSize.from_spacing(spacing, unit=None if voxel is None else voxel.unit)
    if voxel is None or voxel.spacing(2) is None:
        return None, None
    return voxel.spacing(spatial_ndim), voxel


def _imagej_unit(unit: str | None) -> str | None:
    """The unit as ImageJ spells it in its description (ASCII): µm is "micron"."""
    if unit is None:
        return None
    return "micron" if _IN_MICROMETRES.get(unit.strip().lower()) == 1.0 else unit


# ImageJ hyperstacks name their axes in the order T, Z, C before Y and X: the
# leading axes of labels whose frames are planes (YX), and of volumes (ZYX),
# that ImageJ can name without moving any axis. Never C: labels have no
# channels, and a reader would take a C axis for them.
_IMAGEJ_LEADING = {2: ("", "T", "TZ"), 3: ("", "T")}
# The key of the voxel size in the JSON shape description of a TIFF that is not an ImageJ hyperstack.
_SHAPED_KEY = "voxel_size"


def tiff_arguments(labels: np.ndarray, text: str, voxel: VoxelSize | None) -> tuple[np.ndarray, dict]:
    """The labels as written and ``tifffile.imwrite``'s arguments: parameters ``text`` and the voxel size.

    Without a voxel size, the labels and ``text`` as the description (as
    outputs always were), plus the shape of labels of three or more axes.
    With one: an ImageJ hyperstack when the labels fit in 16 bits and
    ImageJ can name their leading axes (``YX``, ``ZYX`` with a z size,
    ``TYX``, ``TZYX``, ``TZYX`` for series of volumes); else a
    TIFF of the labels' own type with x/y resolution tags (per centimetre
    when the unit is µm) and the shape and voxel size in tifffile's JSON
    shape description, next to ``text``: every output reads back with its
    shape and voxel size (:func:`read_voxel_size`).
    """
    if voxel is None:
        # Which leading axis is z or time is unknown here: "Q" (other) for each, never a wrong name.
        shaped = {"metadata": {"axes": "Q" * (labels.ndim - 2) + "YX"}} if labels.ndim >= 3 else {}
        return labels, {"description": text, "metadata": None, **shaped}
    resolution = tuple(1.0 / voxel.sizes[axis] if axis in voxel.sizes else 1.0 for axis in "XY")
    spatial = 3 if voxel.has_z and labels.ndim >= 3 else 2
    leading = labels.ndim - spatial
    fits = labels.size == 0 or (labels.min() >= 0 and labels.max() <= np.iinfo(np.uint16).max)
    if not fits or leading >= len(_IMAGEJ_LEADING[spatial]):
        micrometres = voxel.unit == MICROMETRE
        shaped = {"axes": _leading_axes(leading) + _AXES[-spatial:], _SHAPED_KEY: voxel.record()}
        return labels, {
            "description": text,
            "metadata": shaped,
            "resolution": tuple(r * 1e4 for r in resolution) if micrometres else resolution,
            "resolutionunit": "CENTIMETER" if micrometres else 1,
        }
    metadata = {"axes": _IMAGEJ_LEADING[spatial][leading] + _AXES[-spatial:], "Info": text}
    unit = _imagej_unit(voxel.unit)
    if unit is not None:
        metadata["unit"] = unit
    if spatial == 3:
        metadata["spacing"] = float(voxel.sizes["Z"])
    arguments = {"imagej": True, "metadata": metadata, "resolution": resolution}
    return labels.astype(np.uint16), arguments


def _leading_axes(count: int) -> str:
    """Axis letters of leading (series) axes in a JSON shape description: time first, then "other"."""
    return ("T" + "Q" * (count - 1)) if count else ""
