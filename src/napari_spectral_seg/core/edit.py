"""Editing a segmentation: split one segment by a spectral cut, merge two segments.

Both return the pixels to change (indices and new values) rather than a new
label image, so a caller such as napari's Labels layer can apply them as one
undoable edit, and nothing outside the edited segments is touched.
"""

from __future__ import annotations

import numpy as np

from .pipeline import segment

__all__ = ["split_label", "merge_labels"]


def _bounding_box(region: np.ndarray, margin: int = 1):
    coords = np.nonzero(region)
    return tuple(
        slice(max(int(c.min()) - margin, 0), min(int(c.max()) + margin + 1, n)) for c, n in zip(coords, region.shape)
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
):
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

    Returns
    -------
    indices : tuple of ndarray
        Pixels of the segment (``np.nonzero`` style, full-image coordinates).
    values : ndarray of int
        Their new labels: the part holding the segment's first pixel (or the
        first seed) keeps ``label``, the others get ``labels.max() + 1, ...``.
    """
    labels = np.asarray(labels)
    if label <= 0 or not np.any(labels == label):
        raise ValueError(f"label={label} is not a segment of this label image; click inside a segment.")
    region = labels == label
    box = _bounding_box(region)
    image = np.asarray(image)
    if channel_axis is not None:
        image = np.moveaxis(image, channel_axis, -1)
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
    new_ids = np.concatenate([[label], int(labels.max()) + np.arange(1, part.max())])
    values = new_ids[part - 1]
    indices = tuple(c + s.start for c, s in zip(local, box))
    return indices, values.astype(labels.dtype, copy=False)


def merge_labels(labels: np.ndarray, keep: int, other: int):
    """Merge segment ``other`` into segment ``keep``.

    Returns
    -------
    indices : tuple of ndarray
        Pixels of ``other``.
    value : int
        ``keep``, their new label.
    """
    labels = np.asarray(labels)
    if keep <= 0 or other <= 0 or keep == other:
        raise ValueError(f"cannot merge label {other} into {keep}: pick two different segments (not background).")
    indices = np.nonzero(labels == other)
    if len(indices[0]) == 0:
        raise ValueError(f"label={other} is not a segment of this label image.")
    return indices, keep
