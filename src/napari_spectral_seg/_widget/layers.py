"""napari layers <-> arrays for the dock widget, as plain functions (no Qt, no viewer).

What one run reads from the layers (:func:`collect_job`: the frame shown,
the mask of a Labels or Shapes layer, seed pixels of a Points layer), and
where its labels go (:func:`put_result`: the image's result Labels layer,
created or updated in place, with the run's parameters as metadata).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from napari.components import LayerList
from napari.layers import Image, Labels, Layer, Points, Shapes
from napari.utils.notifications import show_info

from .. import __version__
from ..core.drawn import DrawnShapes
from ..core.params import SegmentationParams
from ..core.pipeline import SegmentationResult
from .levels import Placement, level_data, mask_in_box, placement_geometry, seeds_in_box
from .undo import tracker, write_run

__all__ = [
    "LAYER_PARAMETERS",
    "METADATA_KEY",
    "EditWatch",
    "Job",
    "collect_job",
    "current_frame",
    "default_dims",
    "drawn_shapes",
    "full_resolution",
    "is_result_layer",
    "labels_mask",
    "layer_parameters",
    "put_result",
    "recorded_parameters",
    "result_geometry",
    "result_layer",
    "result_layer_name",
    "result_metadata",
    "seed_pixels",
    "show_frame",
    "show_labels",
    "spatial_ndim",
    "stack_shape",
]

METADATA_KEY = "spectral_seg"
# Parameters read from the image layer rather than from a field.
LAYER_PARAMETERS = ("spacing", "channel_axis")


def result_layer_name(image_name: str) -> str:
    """Name of the Labels layer that holds the segmentation of ``image_name``."""
    return f"{image_name} spectral"


def is_result_layer(layer: Layer) -> bool:
    """Whether ``layer`` is a segmentation result (a Labels layer carrying our metadata)."""
    return isinstance(layer, Labels) and METADATA_KEY in layer.metadata


# ---------------------------------------------------------------- the image layer's geometry
def full_resolution(image_layer: Image) -> Any:
    """The layer's pixel array at full resolution (level 0 of a multiscale layer): numpy, dask, zarr..."""
    return image_layer.data[0] if image_layer.multiscale else image_layer.data


def stack_shape(image_layer: Image) -> tuple:
    """Shape of the layer's non-channel axes: the shape of its result Labels layer."""
    return tuple(full_resolution(image_layer).shape[: image_layer.ndim])


def spatial_ndim(image_layer: Image, dims: int) -> int:
    """Axes of one frame when segmenting in ``dims`` (2 or 3) dimensions.

    An RGB layer's ``ndim`` leaves out the channel axis.
    """
    return min(int(dims), image_layer.ndim)


# Axis labels that name time: a stack whose first axis has one is a movie of 2D frames.
TIME_AXIS_LABELS = ("t", "time", "frame", "frames")


def default_dims(image_layer: Image, viewer_axis_labels: Sequence[str] = ()) -> int:
    """2 or 3: how to segment the layer by default.

    3D for a stack of three or more axes (a z-stack), except when its first
    axis is labelled as time (``t``, ``time``; the layer's ``axis_labels``,
    or the viewer's for the layer's axes): then each (y, x) frame.
    """
    if image_layer.ndim < 3:
        return 2
    labels = tuple(getattr(image_layer, "axis_labels", ()) or ())
    viewer_labels = tuple(viewer_axis_labels)[-image_layer.ndim :]
    for names in (labels, viewer_labels):
        if len(names) == image_layer.ndim and str(names[0]).strip().lower() in TIME_AXIS_LABELS:
            return 2
    return 3


def layer_parameters(image_layer: Image, n_spatial: int) -> dict:
    """The parameters the image layer decides: ``spacing`` and ``channel_axis``.

    The layer's scale is the pixel (voxel) size, so anisotropic stacks are
    segmented as physical objects; an RGB layer has its channels last.
    """
    return dict(
        spacing=tuple(float(v) for v in image_layer.scale[-n_spatial:]),
        channel_axis=-1 if image_layer.rgb else None,
    )


def current_frame(image_layer: Image, dims_point: Sequence[float], n_leading: int, level: int = 0) -> tuple:
    """Index of the frame the viewer shows, over the layer's ``n_leading`` leading axes.

    Parameters
    ----------
    image_layer : Image
        The layer being segmented.
    dims_point : sequence of float
        The viewer's world position (``viewer.dims.point``).
    n_leading : int
        Axes before the frame (time, positions, ...).
    level : int
        The level of a multiscale layer whose frames are counted.
    """
    point = np.asarray(dims_point)[-image_layer.ndim :]
    coords = np.asarray(image_layer.world_to_data(point))[:n_leading]
    if image_layer.multiscale:
        coords = coords / np.asarray(image_layer.downsample_factors[level])[:n_leading]
    shape = np.asarray(level_data(image_layer, level).shape[:n_leading])
    return tuple(int(v) for v in np.clip(np.round(coords), 0, shape - 1))


def result_geometry(image_layer: Image, spatial: int) -> dict:
    """The image layer's world transform for a result of ``spatial`` axes.

    Scale and translate of the image's trailing (spatial) axes; for a
    result with as many axes as the image also rotate, shear, affine and
    units, so the labels overlay the image exactly in world coordinates
    (an RGB layer's scale has no channel entry, a stack's result frame is
    placed by scale and translate only).
    """
    geometry = dict(
        scale=tuple(image_layer.scale)[-spatial:],
        translate=tuple(image_layer.translate)[-spatial:],
    )
    units = getattr(image_layer, "units", None)  # napari < 0.6 has no units
    if units is not None:
        geometry["units"] = tuple(units)[-spatial:]
    if image_layer.ndim == spatial:
        geometry.update(rotate=image_layer.rotate, shear=image_layer.shear, affine=image_layer.affine)
    return geometry


# ---------------------------------------------------------------- masks and seed points
def drawn_shapes(
    shapes_layer: Shapes, image_layer: Image, spatial_shape: tuple, placement: Placement | None = None
) -> DrawnShapes:
    """The drawn shapes on the image's pixel grid (the box of ``placement`` if given), not rasterised.

    Only the vertices are moved into the image's pixel coordinates here;
    the engine fills the mask (:meth:`DrawnShapes.rasterise`), never the GUI thread.

    Raises
    ------
    ValueError
        The layer has no shapes.
    """
    if len(shapes_layer.data) == 0:
        raise ValueError(f"mask '{shapes_layer.name}' has no shapes; draw a region or pick 'none'.")
    ndim = len(spatial_shape)
    # Vertices in the image's pixel coordinates, whatever the two layers' transforms.
    vertices = [
        np.array([image_layer.world_to_data(shapes_layer.data_to_world(v)) for v in shape])[:, -ndim:]
        for shape in shapes_layer.data
    ]
    if placement is not None:
        vertices = [placement.to_box(v) for v in vertices]
    return DrawnShapes(tuple(vertices), tuple(shapes_layer.shape_type), tuple(spatial_shape), shapes_layer.name)


def labels_mask(
    mask_layer: Labels, image_layer: Image, spatial_shape: tuple, frame_index: tuple | None = None
) -> np.ndarray:
    """A Labels layer's data as the mask of one image or frame, not read yet.

    The layer is one frame's shape, or the whole stack's (then the frame
    ``frame_index`` is taken: a view, or a lazy slice of a dask array).
    The run's worker copies it, a slab at a time, off the GUI thread.
    Integer labels keep their regions apart in the core; the user's layer
    is untouched.

    Raises
    ------
    ValueError
        The mask's shape fits neither the frame nor the stack.
    """
    mask_shape = tuple(mask_layer.data.shape)
    full_shape = stack_shape(image_layer)
    if mask_shape not in (spatial_shape, full_shape):
        raise ValueError(
            f"mask '{mask_layer.name}' has shape {mask_shape} but image "
            f"'{image_layer.name}' has {spatial_shape}; pick a mask drawn on this image, or 'none'."
        )
    mask = mask_layer.data
    if mask_shape == full_shape and frame_index is not None and mask_shape != spatial_shape:
        mask = mask[frame_index]
    return mask


def seed_pixels(
    points_layer: Points, image_layer: Image, n_spatial: int, frame_index: tuple | None = None
) -> np.ndarray:
    """Points of ``points_layer`` as pixel coordinates of ``image_layer``, shape (n, n_spatial).

    For a frame of a stack, only the points placed on that frame count (a
    notification says how many others were ignored).

    Raises
    ------
    ValueError
        No points, or none on the frame.
    """
    if len(points_layer.data) == 0:
        raise ValueError(f"seed points '{points_layer.name}' has no points; add points or pick 'none'.")
    world = np.array([points_layer.data_to_world(p) for p in points_layer.data])
    pixels = np.array([image_layer.world_to_data(w) for w in world])
    if frame_index and pixels.shape[1] > n_spatial:
        leading = np.rint(pixels[:, : len(frame_index)]).astype(int)
        on_frame = np.all(leading == np.asarray(frame_index), axis=1)
        if not on_frame.any():
            raise ValueError(
                f"None of the seed points of '{points_layer.name}' is on frame {frame_index}; add points on this frame."
            )
        if not on_frame.all():
            show_info(
                f"Using the {int(on_frame.sum())} seed point(s) on frame {frame_index}; "
                f"{int((~on_frame).sum())} on other frames are ignored."
            )
        pixels = pixels[on_frame]
    return pixels[:, -n_spatial:]


# ---------------------------------------------------------------- one run
def recorded_parameters(params: SegmentationParams, *, from_layer: bool = True) -> dict:
    """The parameters the widget sets, as it saves them and records them with a stack's labels.

    Those with a field (``gui`` in their spec) and those the image layer
    decides (:data:`LAYER_PARAMETERS`; left out with ``from_layer=False``,
    when there is no image layer), in JSON types. A parameter that does
    not act on the run (see ``applies``) is recorded as None, as
    :func:`napari_spectral_seg.segment` records it.
    """
    record = {}
    for spec in SegmentationParams.specs():
        from_image = spec.name in LAYER_PARAMETERS
        if (spec.gui is None and not from_image) or (from_image and not from_layer):
            continue
        value = getattr(params, spec.name)
        if spec.applies_text and not params.applies(spec.name):
            value = None
        record[spec.name] = list(value) if isinstance(value, tuple) else value
    return record


@dataclass
class Job:
    """What one run reads from the layers, and where its labels go.

    Attributes
    ----------
    layer : Image
        The image layer segmented.
    mask_layer : Labels, Shapes or None
        The mask layer chosen.
    image : array-like
        The image, or the frame shown, as the layer holds it (numpy, dask,
        zarr; a view or a lazy slice): the run's worker thread reads it
        into shared memory, never the GUI thread.
    mask : array-like, DrawnShapes or None
        The mask of ``image``, also read by the worker; a Shapes layer's
        shapes, rasterised by the engine.
    params : SegmentationParams
        The run's parameters, seed points included.
    frame_index : tuple or None
        The frame of a stack that is segmented (None: the whole layer).
    spatial_ndim : int or None
        Every frame of a stack is segmented, frames of this many axes.
    placement : Placement or None
        The level and box of the frame segmented (None: all of level 0).
    """

    layer: Image
    mask_layer: Labels | Shapes | None
    image: Any
    mask: Any
    params: SegmentationParams
    frame_index: tuple | None = None
    spatial_ndim: int | None = None
    placement: Placement | None = None

    @property
    def all_frames(self) -> bool:
        """Whether every frame of a stack is segmented."""
        return self.spatial_ndim is not None

    def stack_parameters(self) -> dict:
        """The parameters recorded with an all-frames result (its frames each had their own threshold)."""
        return dict(recorded_parameters(self.params), spatial_ndim=self.spatial_ndim, threshold_used=None)


def collect_job(
    layer: Image | None,
    mask_layer: Labels | Shapes | None,
    points_layer: Points | None,
    params: SegmentationParams,
    *,
    dims: int,
    all_frames: bool,
    dims_point: Sequence[float],
    placement: Placement | None = None,
) -> Job:
    """Read the layers for one run.

    Parameters
    ----------
    layer, mask_layer, points_layer
        The chosen image, mask and seed-points layers (None: not chosen).
    params : SegmentationParams
        The fields' parameters, without seed points.
    dims : {2, 3}
        Segment in 2D or 3D: frames of up to this many axes (:func:`spatial_ndim`).
    all_frames : bool
        Segment every frame of a stack, not the one shown.
    dims_point : sequence of float
        The viewer's world position: picks the frame shown.
    placement : Placement, optional
        The level and the box of its frame to segment (:mod:`.levels`); default all of level 0.

    Raises
    ------
    ValueError
        With a message for the user: no image, a mask or points that do
        not fit the image.
    """
    if layer is None:
        raise ValueError("No image layer: open an image (or File > Open Sample > Four circles) and pick it in 'image'.")
    n_spatial = spatial_ndim(layer, dims)
    n_leading = layer.ndim - n_spatial  # time (or other) axes before the frame
    spatial_shape = tuple(full_resolution(layer).shape[n_leading : layer.ndim])
    if placement is not None and placement.is_whole and placement.shape == spatial_shape:
        placement = None  # all of level 0: the usual run
    level = 0 if placement is None else placement.level
    data = level_data(layer, level)
    all_frames = n_leading > 0 and all_frames
    frame_index = None
    if n_leading and not all_frames:
        frame_index = current_frame(layer, dims_point, n_leading, level)
        data = data[frame_index]
    if placement is not None:  # a lazy slice (a view, or a dask graph): the worker reads it
        data = data[(slice(None),) * (n_leading if all_frames else 0) + placement.box()]
    mask = None
    if isinstance(mask_layer, Shapes):
        mask = drawn_shapes(mask_layer, layer, spatial_shape if placement is None else placement.shape, placement)
    elif mask_layer is not None:
        mask = labels_mask(mask_layer, layer, spatial_shape, frame_index)
        mask = mask if placement is None else mask_in_box(mask, mask_layer, placement)
    seeds = None
    if points_layer is not None:
        if all_frames:
            raise ValueError("Seed points work on one frame: set 'frames' to 'current frame'.")
        seeds = seed_pixels(points_layer, layer, n_spatial, frame_index)
        seeds = seeds if placement is None else seeds_in_box(seeds, points_layer, placement)
    if placement is not None and params.spacing is not None:
        # A level's pixel is the downsample factor times the image's pixel: sizes, smoothing and measurements follow.
        params = params.replace(spacing=tuple(s * f for s, f in zip(params.spacing, placement.factors, strict=True)))
    return Job(
        layer=layer,
        mask_layer=mask_layer,
        image=data,
        mask=mask,
        params=params.replace(seeds=seeds),
        frame_index=frame_index,
        spatial_ndim=n_spatial if all_frames else None,
        placement=placement,
    )


def result_metadata(job: Job, result: SegmentationResult, seconds: float) -> dict:
    """What the result layer records of a run: its parameters, the layers' names, time, count, frames."""
    metadata = dict(result.parameters)
    metadata.update(
        image=job.layer.name,
        mask=None if job.mask_layer is None else job.mask_layer.name,
        # The run's own time; a wait for the engine to start (first run
        # only) is recorded apart, as the status line shows it.
        seconds=round(seconds, 3),
        engine_start_seconds=round(result.seconds.get("engine_start", 0.0), 3),
        n_segments=int(result.labels.max()),
        frames="all" if job.all_frames else job.frame_index,
        version=__version__,
    )
    if job.placement is not None:  # where the labels lie in the image: its level and the box's first pixel
        metadata.update(level=job.placement.level, region_offset=list(job.placement.offset))
    per_frame = result.parameters.get("per_frame")
    if job.all_frames and per_frame:
        # Each frame is labelled 1..M_t on its own: the total is the sum,
        # and the threshold the frames' own (one number if they agree).
        metadata["n_segments"] = sum(record["n_segments"] for record in per_frame.values())
        used = [record["threshold_used"] for record in per_frame.values()]
        metadata["threshold_used"] = used[0] if len(set(used)) == 1 else used
    return metadata


# ---------------------------------------------------------------- the result layer
def result_layer(layers: LayerList, image_layer: Image) -> Labels | None:
    """The Labels layer named after ``image_layer``'s result, if there is one."""
    name = result_layer_name(image_layer.name)
    layer = layers[name] if name in layers else None
    return layer if isinstance(layer, Labels) else None


def _same_value(current, value) -> bool:
    """Whether a layer attribute (scale, affine, units...) already holds ``value``."""
    if current is None:
        return False
    affine = getattr(current, "affine_matrix", None)
    if affine is not None:
        current = affine
    other = getattr(value, "affine_matrix", value)
    try:
        return bool(np.array_equal(np.asarray(current), np.asarray(other)))
    except (TypeError, ValueError):
        return False


def show_labels(
    layers: LayerList,
    image_layer: Image,
    labels: np.ndarray,
    metadata: dict,
    *,
    new_layer: bool = False,
    placement: Placement | None = None,
) -> Labels:
    """Put ``labels`` in the image's result layer: updated in place if it fits, else a new layer.

    The result layer takes the image's world transform and ``metadata``
    under :data:`METADATA_KEY`. A new layer (always one with
    ``new_layer``) is appended to ``layers``; it gets a numbered name if
    another layer holds the result name. Labels of a level or a box
    (``placement``) get its pixel size and place.
    """
    name = result_layer_name(image_layer.name)
    geometry = result_geometry(image_layer, labels.ndim)
    if placement is not None:
        geometry = placement_geometry(image_layer, placement, labels.ndim, geometry)
    metadata = {METADATA_KEY: metadata}
    existing = layers[name] if name in layers else None
    if isinstance(existing, Labels) and existing.data.shape == labels.shape and not new_layer:
        # One undo step: Ctrl+Z brings back the previous result, never a mix of two runs.
        write_run(existing, labels.astype(existing.data.dtype, copy=False), METADATA_KEY, metadata[METADATA_KEY])
        for key, value in geometry.items():
            # Each setter refreshes the layer (recolours every pixel: ~11 ms at
            # 1024^2, ~180 ms at 4096^2), even for an equal value: set only changes.
            if _same_value(getattr(existing, key, None), value):
                continue
            try:
                setattr(existing, key, value)
            except (AttributeError, ValueError, TypeError):
                pass  # e.g. units the layer cannot take
        return existing
    if existing is not None:
        name = f"{name} [{len(layers)}]"
    # The whole transform goes in at construction: setting it afterwards
    # fires a refresh per attribute (measured ~25 ms of main-thread time
    # at 1024^2, on top of the ~90 ms napari needs to add a layer).
    try:
        layer = Labels(labels, name=name, metadata=metadata, **geometry)
    except (ValueError, TypeError):
        geometry.pop("units", None)  # units napari does not accept
        layer = Labels(labels, name=name, metadata=metadata, **geometry)
    layers.append(layer)
    return layer


def show_frame(
    layers: LayerList,
    image_layer: Image,
    frame_index: tuple,
    frame_labels: np.ndarray,
    metadata: dict,
    *,
    new_layer: bool = False,
    placement: Placement | None = None,
) -> Labels:
    """Put one frame's labels into the stack-shaped result layer (other frames kept).

    Each frame's parameters are kept under ``metadata["per_frame"]``,
    keyed by the frame index as text, across runs. With ``new_layer``, a
    new stack layer holds this frame alone.
    """
    full_shape = stack_shape(image_layer)
    if placement is not None:  # the stack at the level, its frames cut to the box
        full_shape = tuple(level_data(image_layer, placement.level).shape[: len(frame_index)]) + placement.shape
    existing = result_layer(layers, image_layer)
    fits = existing is not None and existing.data.shape == full_shape and not new_layer
    # How each frame was made: frames keep their labels across runs.
    per_frame = dict(existing.metadata.get(METADATA_KEY, {}).get("per_frame", {})) if fits else {}
    per_frame[str(tuple(frame_index))] = dict(metadata)
    metadata = dict(metadata, per_frame=per_frame)
    if fits:
        frame_labels = np.asarray(frame_labels, dtype=existing.data.dtype)
        write_run(existing, frame_labels, METADATA_KEY, metadata, frame_index)  # one undo step
        return existing
    stack = np.zeros(full_shape, dtype=np.int32)
    stack[frame_index] = frame_labels
    return show_labels(layers, image_layer, stack, metadata, new_layer=new_layer, placement=placement)


def put_result(layers: LayerList, job: Job, labels: np.ndarray, metadata: dict, *, new_layer: bool = False) -> Labels:
    """Put a run's labels where they belong: the frame it segmented, or the whole result layer.

    ``new_layer``: in a new layer, never over the existing result (it was edited during the run).
    """
    where = dict(new_layer=new_layer, placement=job.placement)
    if job.frame_index is not None:
        return show_frame(layers, job.layer, job.frame_index, labels, metadata, **where)
    return show_labels(layers, job.layer, labels, metadata, **where)


class EditWatch:
    """Whether a Labels layer was edited since the watch began: painted, filled, set, undone or its data replaced.

    ``events.paint`` fires for every undo step napari records (brush,
    fill, polygon, ``data_setitem``, the click edits); the data's identity
    catches a new array; an undo or redo (Ctrl+Z), which emits no public
    event, is reported by the layer's :class:`.undo.UndoTracker`.
    """

    def __init__(self, layer: Labels | None) -> None:
        self.layer = layer
        self._edits = 0
        if layer is not None:
            self._start = self._state()
            layer.events.paint.connect(self._count)
            tracker(layer, METADATA_KEY).listeners.append(self._count)

    def _state(self) -> int:
        return id(self.layer.data)

    def _count(self, _event=None) -> None:
        self._edits += 1

    @property
    def edited(self) -> bool:
        """Whether the layer changed since the watch began."""
        return self.layer is not None and (self._edits > 0 or self._state() != self._start)

    def close(self) -> None:
        """Stop counting."""
        if self.layer is not None:
            self.layer.events.paint.disconnect(self._count)
            listeners = tracker(self.layer, METADATA_KEY).listeners
            if self._count in listeners:
                listeners.remove(self._count)
