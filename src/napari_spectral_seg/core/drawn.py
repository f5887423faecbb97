"""Drawn regions (polygons, rectangles, ellipses, lines, paths) as a mask, rasterised where the work is.

The widget sends a :class:`DrawnShapes` (each shape's vertices in the
image's pixel coordinates and its type: a few kilobytes) to the engine
process, which rasterises it before segmenting: the GUI thread never fills
an image-sized mask. The rules follow napari's ``Shapes.to_masks``:
polygons and rectangles are filled (:func:`skimage.draw.polygon2mask`),
ellipses are filled (given by the four corners of their bounding box, as
napari stores them), lines and paths are one pixel wide along their
edges. In 3D a shape lies in the plane of the last two axes, on the
leading-axis positions its vertices span.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.draw import line, polygon2mask

__all__ = ["SHAPE_TYPES", "DrawnShapes", "shape_mask"]

SHAPE_TYPES = ("polygon", "rectangle", "ellipse", "line", "path")


@dataclass(frozen=True)
class DrawnShapes:
    """The union of drawn shapes on a pixel grid, not rasterised yet.

    Attributes
    ----------
    vertices : tuple of ndarray
        Each shape's vertices, shape (n, ndim), in pixel coordinates of the grid.
    types : tuple of str
        Each shape's type, one of :data:`SHAPE_TYPES`.
    shape : tuple of int
        The grid's shape (2 or 3 axes).
    name : str
        The layer's name, for the messages.
    """

    vertices: tuple
    types: tuple
    shape: tuple
    name: str = "shapes"

    def __post_init__(self) -> None:
        if len(self.vertices) != len(self.types):
            raise ValueError(f"mask '{self.name}': {len(self.vertices)} shapes but {len(self.types)} shape types.")
        unknown = sorted(set(self.types) - set(SHAPE_TYPES))
        if unknown:
            raise ValueError(f"mask '{self.name}': unknown shape type(s) {unknown}; expected one of {SHAPE_TYPES}.")

    @property
    def ndim(self) -> int:
        """Number of axes of the grid."""
        return len(self.shape)

    def rasterise(self) -> np.ndarray:
        """The union of the shapes as a boolean mask of :attr:`shape`.

        Raises
        ------
        ValueError
            No shape, or the shapes cover no pixel of the grid.
        """
        if not self.vertices:
            raise ValueError(f"mask '{self.name}' has no shapes; draw a region or pick 'none'.")
        mask = np.zeros(self.shape, dtype=bool)
        for vertices, kind in zip(self.vertices, self.types, strict=True):
            vertices = np.asarray(vertices, dtype=float)
            plane = shape_mask(kind, vertices[:, -2:], self.shape[-2:])
            if self.ndim == 2:
                mask |= plane
                continue
            # The leading-axis positions the shape spans (napari's slice key).
            first, last = np.rint(vertices[:, :-2].min(axis=0)), np.rint(vertices[:, :-2].max(axis=0))
            box = tuple(slice(max(int(a), 0), max(int(b) + 1, 0)) for a, b in zip(first, last, strict=True))
            mask[box] |= plane
        if not mask.any():
            raise ValueError(f"mask '{self.name}' covers no pixel of the image; draw the region over the image.")
        return mask


def shape_mask(kind: str, vertices: np.ndarray, plane_shape: tuple) -> np.ndarray:
    """One shape rasterised on a 2D grid of ``plane_shape``; ``vertices`` (n, 2) in pixel coordinates."""
    if kind in ("line", "path"):
        return _path_mask(vertices, plane_shape)
    if kind == "ellipse":
        return _ellipse_mask(vertices, plane_shape)
    return polygon2mask(plane_shape, vertices)


def _path_mask(vertices: np.ndarray, plane_shape: tuple) -> np.ndarray:
    """The pixels along each edge (vertices clipped to the grid, as napari does)."""
    mask = np.zeros(plane_shape, dtype=bool)
    points = np.rint(np.clip(vertices, 0, np.asarray(plane_shape) - 1)).astype(int)
    if len(points) == 1:
        mask[tuple(points[0])] = True
    for start, stop in zip(points[:-1], points[1:], strict=True):
        rows, cols = line(*start, *stop)
        mask[rows, cols] = True
    return mask


def _ellipse_mask(corners: np.ndarray, plane_shape: tuple) -> np.ndarray:
    """Pixels inside the ellipse inscribed in the (possibly rotated) rectangle of four ``corners``."""
    mask = np.zeros(plane_shape, dtype=bool)
    center = corners.mean(axis=0)
    half_axes = [(corners[1] - corners[0]) / 2, (corners[2] - corners[1]) / 2]
    extent = np.abs(half_axes[0]) + np.abs(half_axes[1])
    low = np.maximum(np.floor(center - extent).astype(int), 0)
    high = np.minimum(np.ceil(center + extent).astype(int) + 1, plane_shape)
    if np.any(high <= low) or min(np.dot(a, a) for a in half_axes) == 0:
        return mask
    rows, cols = np.mgrid[low[0] : high[0], low[1] : high[1]]
    offsets = np.stack([rows - center[0], cols - center[1]], axis=-1)
    # Squared coordinates along each half-axis, in units of its length.
    radius = sum((offsets @ axis) ** 2 / np.dot(axis, axis) ** 2 for axis in half_axes)
    mask[low[0] : high[0], low[1] : high[1]] = radius <= 1
    return mask
