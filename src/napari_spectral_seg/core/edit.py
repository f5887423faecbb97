"""Editing a segmentation: split one segment by a spectral cut, merge two segments.

Both return the pixels to change (indices and new values) rather than a new
label image, so a caller such as napari's Labels layer can apply them as one
undoable edit, and nothing outside the edited segments is touched.
"""

from __future__ import annotations

import numpy as np

from .params import is_integer
from .pipeline import segment
from .validation import masked_pixels

__all__ = ["split_label", "merge_labels"]


def _bounding_box(region: np.ndarray, margin: int = 1):
    coords = np.nonzero(region)
    return tuple(
        slice(max(int(c.min()) - margin, 0), min(int(c.max()) + margin + 1, n)) for c, n in zip(coords, region.shape)
    )


def _check_label(name: str, value) -> None:
    """Refuse a label that is not a whole number (None, a string, 1.5) before comparing it with the labels."""
    whole_float = isinstance(value, (float, np.floating)) and float(value).is_integer()
    if not (is_integer(value) or whole_float):
        raise ValueError(f"{name}={value!r} must be a whole number, the label of a segment (e.g. {name}=1).")


def _check_split(spatial_shape, labels: np.ndarray, label, n_parts, seeds, next_label=None) -> None:
    """Refuse a split whose labels do not fit the image or cannot hold the new parts."""
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels has dtype {labels.dtype}; pass an integer label image, e.g. labels.astype(np.int32).")
    if labels.shape != tuple(spatial_shape):
        raise ValueError(
            f"labels has shape {labels.shape} but the image's spatial shape is {tuple(spatial_shape)}; "
            "pass the label image of this image (and channel_axis for a colour image)."
        )
    _check_label("label", label)
    if label <= 0 or not np.any(labels == label):
        raise ValueError(f"label={label} is not a segment of this label image; click inside a segment.")
    parts = n_parts if seeds is None else len(np.asarray(seeds, dtype=float).reshape(-1, labels.ndim))
    first_new = int(labels.max()) + 1 if next_label is None else int(next_label)
    highest = first_new + max(int(parts) - 2, -1)
    limit = int(np.iinfo(labels.dtype).max)
    if highest > limit:
        wider = "int32" if highest <= np.iinfo(np.int32).max else "int64"
        raise ValueError(
            f"labels has dtype {labels.dtype}, which holds labels up to {limit}, but the split needs label "
            f"{highest}; convert the labels to a wider dtype first, e.g. labels.astype(np.{wider})."
        )


def split_label(
    image,
    labels: np.ndarray,
    label: int,
    *,
    n_parts: int = 2,
    seeds=None,
    beta: float = 1.0,
    spacing=None,
    sigma=None,
    channel_axis: int | None = None,
    random_state: int = 0,
    next_label: int | None = None,
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Split one segment into parts by spectral clustering of its pixels alone.

    Parameters
    ----------
    image : ndarray, spatial shape of ``labels`` (plus a channel axis if ``channel_axis``)
        Intensities.
    labels : ndarray of int
        Current segmentation; not modified.
    label : int
        Segment to split (> 0).
    n_parts : int
        Number of parts when no ``seeds`` are given.
    seeds : array_like, shape (n_points, ndim), optional
        Points (pixel coordinates) inside the segment, one per wanted part.
    beta, spacing, sigma, channel_axis, random_state
        As in :func:`napari_spectral_seg.segment`.
    next_label : int, optional
        The first label a new part gets (default ``labels.max() + 1``):
        pass the whole image's when ``labels`` is a crop of it.

    Returns
    -------
    indices : tuple of ndarray
        Pixels of the segment (``np.nonzero`` style, full-image coordinates).
    values : ndarray of ``labels.dtype``
        Their new labels: the part holding the segment's first pixel (or the
        first seed) keeps ``label``, the others get ``labels.max() + 1, ...``
        (``next_label, ...`` if given).

    Raises
    ------
    ValueError
        ``labels`` is not integer, its shape is not the image's spatial
        shape, ``label`` is not one of its segments, or the new labels do
        not fit its dtype (e.g. uint8 labels up to 255): convert the labels
        to a wider dtype first (``labels.astype(np.int32)``, ``np.int64`` for int32 labels).
    """
    labels = np.asarray(np.ma.filled(labels, 0) if isinstance(labels, np.ma.MaskedArray) else labels)
    image, hidden = masked_pixels(image, channel_axis)
    image = np.asarray(image)
    if channel_axis is not None:
        image = np.moveaxis(image, channel_axis, -1)
    spatial_shape = image.shape[:-1] if channel_axis is not None else image.shape
    _check_split(spatial_shape, labels, label, n_parts, seeds, next_label)
    region = labels == label
    if hidden is not None and hidden.shape == region.shape and np.any(hidden & region):
        raise ValueError(
            f"image is a numpy masked array with {int(np.count_nonzero(hidden & region))} masked pixel(s) "
            f"inside label {label}; fill them first, e.g. image.filled(value), or split a segment without them."
        )
    box = _bounding_box(region)
    crop_seeds = None
    if seeds is not None:
        crop_seeds = np.asarray(seeds, dtype=float) - np.array([s.start for s in box])
    parts = segment(
        image[box],
        region[box],
        n_clusters=n_parts,
        beta=beta,
        spacing=spacing,
        sigma=sigma,
        channel_axis=None if channel_axis is None else -1,
        random_state=random_state,
        seeds=crop_seeds,
    )
    local = np.nonzero(region[box])
    part = parts[local]  # 1..n_parts, the first pixel's part is 1 when unseeded
    first_new = int(labels.max()) + 1 if next_label is None else int(next_label)
    new_ids = np.concatenate([[label], first_new + np.arange(part.max() - 1)])
    values = new_ids[part - 1]
    indices = tuple(c + s.start for c, s in zip(local, box))
    return indices, values.astype(labels.dtype, copy=False)


def merge_labels(labels: np.ndarray, keep: int, other: int) -> tuple[tuple[np.ndarray, ...], int]:
    """Merge segment ``other`` into segment ``keep``.

    Returns
    -------
    indices : tuple of ndarray
        Pixels of ``other``.
    value : int
        ``keep``, their new label.

    Raises
    ------
    ValueError
        ``keep`` or ``other`` is not a whole number, is background, the
        same segment, or not a segment of ``labels``.
    """
    labels = np.asarray(labels)
    _check_label("keep", keep)
    _check_label("other", other)
    if keep <= 0 or other <= 0 or keep == other:
        raise ValueError(f"cannot merge label {other} into {keep}: pick two different segments (not background).")
    if not np.any(labels == keep):
        raise ValueError(f"keep={keep} is not a segment of this label image; pick an existing segment to keep.")
    indices = np.nonzero(labels == other)
    if len(indices[0]) == 0:
        raise ValueError(f"other={other} is not a segment of this label image; pick an existing segment to merge.")
    return indices, keep
