"""Which pixels a run segments: the level of a multiscale layer, and the whole image or the field of view.

A multiscale layer is segmented at one of its levels (by default the finest
whose run fits the memory guard); "visible field of view" segments only the
part of that level the canvas shows. :class:`Placement` says where such a
run's labels lie: at the level's pixel size (scale x downsample factor)
and at the region's offset (translate), so they overlay the image. Only
lazy slices are taken here (a view of numpy, a dask graph): the run's
worker reads the pixels, never the GUI thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Image, Layer
from napari.utils.notifications import show_info

from ..core.memory import available_memory, estimate_peak_bytes

__all__ = [
    "REGIONS",
    "LevelFields",
    "Placement",
    "default_level",
    "level_choices",
    "level_data",
    "mask_in_box",
    "placement_geometry",
    "seeds_in_box",
    "visible_box",
]

REGIONS = ("whole image", "visible field of view")
# The memory guard's assumption for a level not yet thresholded: half its pixels in the mask.
_MASK_FRACTION = 0.5
_TYPICAL_K = 8


def level_data(layer: Image, level: int) -> Any:
    """The layer's pixel array at ``level`` (the array itself for a single-scale layer)."""
    return layer.data[level] if layer.multiscale else layer.data


def level_choices(layer: Image | None) -> list[tuple[str, int]]:
    """(text, level) of each level of ``layer``: its number and shape, finest first."""
    if layer is None or not layer.multiscale:
        return [("full resolution", 0)]
    return [(f"{level}: {' x '.join(str(n) for n in data.shape)}", level) for level, data in enumerate(layer.data)]


def default_level(layer: Image, dims: int, available: int | None = None) -> int:
    """The finest level whose run fits the memory guard, else the coarsest.

    The guard's estimate for a frame of ``dims`` axes with half its pixels
    in the mask (:func:`napari_spectral_seg.core.memory.estimate_peak_bytes`).
    """
    if not layer.multiscale:
        return 0
    available = available_memory() if available is None else available
    n_levels = len(layer.data)
    if available is None:
        return 0
    for level in range(n_levels):
        n_pixels = int(np.prod(level_data(layer, level).shape[: layer.ndim][-dims:]))
        peak = estimate_peak_bytes(n_pixels, int(n_pixels * _MASK_FRACTION), dims, _TYPICAL_K, "multilevel")
        if peak <= available:
            return level
    return n_levels - 1


@dataclass(frozen=True)
class Placement:
    """Where a run's pixels come from and its labels go: a level and a box of its frame.

    Attributes
    ----------
    level : int
        The level segmented (0: full resolution).
    factors : tuple of float
        The level's downsample factor per spatial axis (1 at level 0).
    offset : tuple of int
        The box's first pixel, per spatial axis, at the level.
    shape : tuple of int
        The box's shape at the level (the whole frame for "whole image").
    """

    level: int
    factors: tuple
    offset: tuple
    shape: tuple

    @property
    def is_whole(self) -> bool:
        """Whether the run covers the whole full-resolution frame (the usual run)."""
        return self.level == 0 and not any(self.offset)

    def box(self) -> tuple:
        """The box as slices of the frame's axes."""
        return tuple(slice(o, o + n) for o, n in zip(self.offset, self.shape, strict=True))

    def to_box(self, pixels: np.ndarray) -> np.ndarray:
        """Full-resolution pixel coordinates of the frame's axes (n, spatial) -> the box's coordinates."""
        return np.asarray(pixels, dtype=float) / np.asarray(self.factors) - np.asarray(self.offset)


def visible_box(
    layer: Image, level: int, center: Sequence[float], zoom: float, canvas_size: Sequence[int], displayed: Sequence[int]
) -> tuple[tuple, tuple]:
    """(offset, shape) at ``level`` of the part of the layer's displayed axes the canvas shows.

    Parameters
    ----------
    layer : Image
        The layer.
    level : int
        The level whose pixels are counted.
    center : sequence of float
        The camera's centre in world coordinates of the displayed axes (``viewer.camera.center``).
    zoom : float
        Screen pixels per world unit (``viewer.camera.zoom``).
    canvas_size : sequence of int
        The canvas's (height, width) in screen pixels (``viewer.canvas.size``).
    displayed : sequence of int
        The world axes displayed (``viewer.dims.displayed``), the last two.

    Raises
    ------
    ValueError
        The canvas shows none of the layer.
    """
    half = np.asarray(canvas_size[-2:], dtype=float) / (2.0 * zoom)
    mid = np.asarray(center[-2:], dtype=float)
    world_axes = list(displayed)[-2:]
    n_world = len(layer.data_to_world(np.zeros(layer.ndim)))
    data_axes = [axis - (n_world - layer.ndim) for axis in world_axes]
    corners = []
    for dy in (-1, 1):
        for dx in (-1, 1):
            world = np.zeros(n_world)
            world[world_axes] = mid + half * np.array([dy, dx])
            corners.append(np.asarray(layer.world_to_data(world))[data_axes])
    corners = np.array(corners)
    factors = np.asarray(layer.downsample_factors[level])[data_axes] if layer.multiscale else np.ones(2)
    shape = np.asarray(level_data(layer, level).shape)[data_axes]
    # napari draws pixel i over [i - 0.5, i + 0.5]: a pixel partly in view counts.
    low = np.clip(np.floor(corners.min(axis=0) / factors + 0.5), 0, shape).astype(int)
    high = np.clip(np.ceil(corners.max(axis=0) / factors + 0.5), 0, shape).astype(int)
    if np.any(high <= low):
        raise ValueError(
            f"The canvas shows none of '{layer.name}': pan or zoom out to it, or set 'region' to 'whole image'."
        )
    return tuple(int(v) for v in low), tuple(int(v) for v in high - low)


def placement_geometry(layer: Image, placement: Placement, spatial: int, geometry: dict) -> dict:
    """``geometry`` (the image's transform for a result of ``spatial`` axes) for labels at ``placement``.

    Scale times the level's factors; translate moved to the box's first
    pixel through the image's own linear transform (rotate, shear, affine),
    so the labels land where the image shows those pixels.
    """
    geometry = dict(geometry)
    factors = np.ones(spatial)
    factors[-len(placement.factors) :] = placement.factors
    offset = np.zeros(layer.ndim)
    offset[-len(placement.offset) :] = np.asarray(placement.offset) * np.asarray(placement.factors)
    # The box's origin in world coordinates, taken back through the
    # layer's affine: what the result's translate must add.
    shift_world = np.asarray(layer.data_to_world(offset)) - np.asarray(layer.data_to_world(np.zeros(layer.ndim)))
    linear = np.asarray(layer.affine.affine_matrix)[:-1, :-1]
    shift = np.linalg.solve(linear, shift_world[-layer.ndim :])
    geometry["scale"] = tuple(float(s) * float(f) for s, f in zip(geometry["scale"], factors, strict=True))
    geometry["translate"] = tuple(
        float(t) + float(d) for t, d in zip(geometry["translate"], shift[-spatial:], strict=True)
    )
    return geometry


def mask_in_box(mask: Any, mask_layer: Layer, placement: Placement) -> Any:
    """A full-resolution mask (a frame or a stack) at the placement's level and box, lazily.

    Raises
    ------
    ValueError
        The level's downsample factors are not whole numbers (no pixel of the mask lies on the level's grid).
    """
    steps = [int(round(f)) for f in placement.factors]
    if not np.allclose(steps, placement.factors):
        raise ValueError(
            f"mask '{mask_layer.name}' is drawn at full resolution and level {placement.level} is not a whole "
            "downsampling of it; pick level 0, or 'none' for the mask."
        )
    strided = tuple(slice(None, None, step) for step in steps)
    return mask[(Ellipsis, *strided)][(Ellipsis, *placement.box())]


def seeds_in_box(seeds: np.ndarray, points_layer: Layer, placement: Placement) -> np.ndarray:
    """Seed pixels (full resolution) as pixels of the placement's box; points outside it are left out.

    Raises
    ------
    ValueError
        No point lies in the box.
    """
    pixels = placement.to_box(seeds)
    inside = np.all((pixels >= -0.5) & (pixels < np.asarray(placement.shape) - 0.5), axis=1)
    if not inside.any():
        raise ValueError(
            f"None of the seed points of '{points_layer.name}' is in the region segmented; "
            "add points there, pan to them, or set 'region' to 'whole image'."
        )
    if not inside.all():
        show_info(f"Using the {int(inside.sum())} seed point(s) in the region; {int((~inside).sum())} outside it.")
    return pixels[inside]


class LevelFields:
    """The "level" and "region" fields of the dock widget, and the :class:`Placement` they choose.

    ``level`` is shown for a multiscale layer only.
    """

    def __init__(self, viewer) -> None:
        self._viewer = viewer
        self._layer = None
        self.level = ComboBox(
            name="level",
            label="level",
            choices=lambda _widget=None: level_choices(self._layer),
            visible=False,
            tooltip="Level of the multiscale image to segment (0: full resolution; "
            "by default the finest whose run fits in memory).",
        )
        self.region = ComboBox(
            name="region",
            label="region",
            choices=list(REGIONS),
            value=REGIONS[0],
            tooltip="whole image: every pixel of the level. visible field of view: only what the canvas "
            "shows (zoom in first); the labels land at its place.",
        )

    @property
    def widgets(self) -> list:
        """The fields, in the order they are shown."""
        return [self.level, self.region]

    def set_layer(self, layer: Image | None, dims: int) -> None:
        """Offer ``layer``'s levels, the default chosen."""
        self._layer = layer
        self.level.reset_choices()
        multiscale = layer is not None and layer.multiscale
        self.level.visible = multiscale
        if multiscale:
            self.level.value = default_level(layer, dims)

    def placement(self, layer: Image, n_spatial: int) -> Placement:
        """Where this run reads and writes, from the fields and the canvas (lazy: no pixel read).

        Raises
        ------
        ValueError
            The field of view shows none of the layer, or the field of view is asked for in 3D.
        """
        level = int(self.level.value or 0) if layer.multiscale else 0
        data = level_data(layer, level)
        frame_shape = tuple(data.shape[: layer.ndim][layer.ndim - n_spatial :])
        factors = tuple(np.asarray(layer.downsample_factors[level])[-n_spatial:]) if layer.multiscale else None
        factors = tuple(float(f) for f in factors) if factors is not None else (1.0,) * n_spatial
        if self.region.value == REGIONS[0]:
            return Placement(level, factors, (0,) * n_spatial, frame_shape)
        viewer = self._viewer
        if viewer.dims.ndisplay != 2 or n_spatial != 2:
            raise ValueError(
                "'visible field of view' works on the 2D view of 2D frames: set 'region' to 'whole image'."
            )
        canvas_size = getattr(getattr(viewer, "canvas", None), "size", None) or viewer._canvas_size
        offset, shape = visible_box(
            layer, level, viewer.camera.center, viewer.camera.zoom, canvas_size, viewer.dims.displayed
        )
        return Placement(level, factors, offset, shape)
