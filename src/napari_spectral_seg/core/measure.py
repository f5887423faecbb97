"""Per-object measurements of a label image: size, position, intensity, bounding box.

A table is a dict of equal-length 1-D numpy arrays (column name -> values),
one row per label, as :func:`skimage.measure.regionprops_table` returns it:
the widget puts it in a Labels layer's ``features``, the command line and
``batch`` write it as CSV.

Units: sizes and centroids are physical, from ``spacing`` (the voxel size;
1 per axis when not given), centroids measured from the centre of pixel 0
(so a caller adds its own origin, e.g. a napari layer's ``translate``, to
get world coordinates). Bounding boxes are pixel indices of the frame
(``min`` inclusive, ``max`` exclusive), to crop the arrays with. Intensities
are of the image as given (not smoothed); ``integrated_intensity`` is the
sum of the object's pixel values.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "AXIS_NAMES",
    "concatenate_tables",
    "frame_columns",
    "measure_frames",
    "measure_labels",
    "table_length",
    "with_frame",
]

# Names of the spatial axes by number of axes, as the columns say them.
AXIS_NAMES = {2: ("y", "x"), 3: ("z", "y", "x")}


def _intensity_columns(labels: np.ndarray, image: np.ndarray, props: dict, n_pixels: np.ndarray) -> dict:
    """Mean, max and sum of ``image`` (spatial axes, then channels if any) over each label.

    Sums by one ``bincount`` pass per channel; maxima from regionprops (each
    object's bounding box only: scipy's ``maximum`` sorts the whole image).
    """
    channels = image[..., np.newaxis] if image.ndim == labels.ndim else image
    n_channels = channels.shape[-1]
    flat = labels.ravel()
    columns = {}
    for c in range(n_channels):
        suffix = "" if n_channels == 1 else f"_c{c}"
        weights = np.asarray(channels[..., c], dtype=np.float64).ravel()
        total = np.bincount(flat, weights=weights, minlength=int(flat.max(initial=0)) + 1)[props["label"]]
        maximum = (
            props["intensity_max"] if n_channels == 1 and image.ndim == labels.ndim else props[f"intensity_max-{c}"]
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[f"mean_intensity{suffix}"] = total / n_pixels
        columns[f"max_intensity{suffix}"] = np.asarray(maximum, dtype=np.float64)
        columns[f"integrated_intensity{suffix}"] = total
    return columns


def measure_labels(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    *,
    spacing=None,
    channel_axis: int | None = None,
) -> dict[str, np.ndarray]:
    """Measure every object (label > 0) of a 2D or 3D label image.

    Parameters
    ----------
    labels : ndarray of int, 2D or 3D
        0 is background.
    image : ndarray, optional
        The intensity image: ``labels``' shape, plus a channel axis if
        ``channel_axis`` is given. Without it there are no intensity columns.
    spacing : sequence of float, optional
        Size of a pixel (voxel) along each axis; 1 by default.
    channel_axis : int, optional
        The image's channel axis: each channel gets its own intensity
        columns, suffixed ``_c0``, ``_c1``...

    Returns
    -------
    dict of str to ndarray
        ``label``; ``area`` (2D) or ``volume`` (3D) in physical units;
        ``n_pixels``; ``centroid_z`` (3D), ``centroid_y``, ``centroid_x``;
        ``equivalent_diameter`` (of the disc or ball of that area or volume);
        ``mean_intensity``, ``max_intensity``, ``integrated_intensity`` (with
        an image); ``bbox_min_<axis>``, ``bbox_max_<axis>`` (pixels). Rows in
        increasing label order; no rows when there is no object.

    Raises
    ------
    ValueError
        ``labels`` is not 2D or 3D, ``spacing`` or ``image`` does not fit it.
    """
    from skimage.measure import regionprops_table

    labels = np.asarray(labels)
    ndim = labels.ndim
    if ndim not in AXIS_NAMES:
        raise ValueError(f"labels has {ndim} axes; measure 2D or 3D labels (use measure_frames for stacks).")
    spacing = (1.0,) * ndim if spacing is None else tuple(float(v) for v in spacing)
    if len(spacing) != ndim or not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise ValueError(f"spacing={spacing} must be {ndim} positive numbers, one per axis of the labels.")
    if image is not None:
        image = np.asarray(image)
        if channel_axis is not None:
            image = np.moveaxis(image, channel_axis, -1)
        if image.shape[:ndim] != labels.shape or image.ndim > ndim + 1:
            raise ValueError(f"image of shape {image.shape} does not fit labels of shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer) or labels.dtype.kind == "u" and labels.dtype.itemsize == 8:
        labels = labels.astype(np.int64)  # bincount takes signed and smaller unsigned integers
    properties = ("label", "area", "num_pixels", "centroid", "equivalent_diameter_area", "bbox")
    props = regionprops_table(
        labels,
        image,
        properties=properties + (("intensity_max",) if image is not None else ()),
        spacing=spacing,
    )
    axes = AXIS_NAMES[ndim]
    table = {
        "label": props["label"].astype(np.int64),
        "area" if ndim == 2 else "volume": props["area"].astype(np.float64),
        "n_pixels": props["num_pixels"].astype(np.int64),
        **{f"centroid_{axis}": props[f"centroid-{i}"].astype(np.float64) for i, axis in enumerate(axes)},
        "equivalent_diameter": props["equivalent_diameter_area"].astype(np.float64),
    }
    if image is not None:
        table.update(_intensity_columns(labels, image, props, table["n_pixels"]))
    for i, axis in enumerate(axes):
        table[f"bbox_min_{axis}"] = props[f"bbox-{i}"].astype(np.int64)
    for i, axis in enumerate(axes):
        table[f"bbox_max_{axis}"] = props[f"bbox-{i + ndim}"].astype(np.int64)
    return table


def frame_columns(n_leading: int) -> tuple[str, ...]:
    """Names of the columns that hold a row's frame index: ``frame``, or ``frame_0``, ``frame_1``... for several axes."""
    return ("frame",) if n_leading == 1 else tuple(f"frame_{i}" for i in range(n_leading))


def table_length(table: dict) -> int:
    """Number of rows of a table."""
    return len(next(iter(table.values()))) if table else 0


def concatenate_tables(tables: list[dict]) -> dict[str, np.ndarray]:
    """One table of the rows of several with the same columns, in order (empty: ``{}``)."""
    tables = [table for table in tables if table]
    if not tables:
        return {}
    return {name: np.concatenate([table[name] for table in tables]) for name in tables[0]}


def with_frame(table: dict, index: tuple[int, ...]) -> dict[str, np.ndarray]:
    """``table`` with the frame index ``index`` (a stack's leading axes) as its first columns."""
    n = table_length(table)
    frame = {name: np.full(n, value, dtype=np.int64) for name, value in zip(frame_columns(len(index)), index)}
    return {**frame, **table}


def measure_frames(
    labels: np.ndarray,
    image: np.ndarray | None = None,
    *,
    spatial_ndim: int | None = None,
    spacing=None,
    channel_axis: int | None = None,
) -> dict[str, np.ndarray]:
    """:func:`measure_labels` of every frame of a label stack, with the frame as the first column(s).

    Parameters
    ----------
    labels : ndarray of int
        Leading axes (time, positions...) then ``spatial_ndim`` spatial axes.
    image : ndarray, optional
        The image the labels were made from: ``labels``' shape plus a
        channel axis if ``channel_axis`` is given.
    spatial_ndim : int, optional
        Axes of one frame (2 or 3); default: all of ``labels``' axes (no stack).
    spacing : sequence of float, optional
        The voxel size of one frame, as for :func:`measure_labels`.
    channel_axis : int, optional
        Axis of ``image`` (the whole stack, as for
        :func:`~napari_spectral_seg.core.frames.iter_segment_frames`) that holds channels.

    Returns
    -------
    dict of str to ndarray
        Without leading axes, :func:`measure_labels`' table. With them,
        ``frame`` (one leading axis) or ``frame_0``, ``frame_1``... first,
        the frames' rows one after another in C order.
    """
    labels = np.asarray(labels)
    spatial_ndim = labels.ndim if spatial_ndim is None else int(spatial_ndim)
    leading = labels.shape[: labels.ndim - spatial_ndim]
    if not leading:
        return measure_labels(labels, image, spacing=spacing, channel_axis=channel_axis)
    if channel_axis is not None and image is not None:
        image = np.moveaxis(image, channel_axis, -1)  # channels last, so a frame is image[index]
        channel_axis = -1
    tables = []
    for index in np.ndindex(*leading):
        frame_image = None if image is None else np.asarray(image[index])
        table = measure_labels(labels[index], frame_image, spacing=spacing, channel_axis=channel_axis)
        tables.append(with_frame(table, index))
    return concatenate_tables(tables)
