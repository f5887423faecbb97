"""Input checks with messages that name the parameter and say what to change."""

from __future__ import annotations

import numbers

import numpy as np

from .eigen import EIGEN_SOLVERS
from .labels import LABEL_METHODS

__all__ = ["as_float_image", "check_parameters", "check_mask"]


def as_float_image(image, channel_axis=None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Validate an image and return it as float64 with any channel axis last.

    Parameters
    ----------
    image : array_like
        2D or 3D real-valued array (numpy, dask, or anything ``np.asarray`` takes),
        plus one channel axis if ``channel_axis`` is given.
    channel_axis : int, optional
        Axis that holds channels (e.g. -1 for RGB).

    Returns
    -------
    image : ndarray of float64, shape S or S + (C,)
        A new array; the caller's array is never modified.
    spatial_shape : tuple of int
        ``S``.
    """
    array = np.asarray(image)
    if array.dtype.kind == "c":
        raise TypeError(
            "image is complex; pass a real image, e.g. np.abs(image) for the magnitude."
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(f"image has dtype {array.dtype}; pass a numeric (bool, integer or float) array.")
    if channel_axis is not None:
        if not -array.ndim <= channel_axis < array.ndim:
            raise ValueError(
                f"channel_axis={channel_axis} is out of range for an image with {array.ndim} axes."
            )
        array = np.moveaxis(array, channel_axis, -1)
        spatial_shape = array.shape[:-1]
    else:
        spatial_shape = array.shape
    if len(spatial_shape) not in (2, 3):
        raise ValueError(
            f"image has {len(spatial_shape)} spatial axes (shape {array.shape}); segment takes "
            "2D or 3D images. Select one frame (image[t]) for time series, or pass channel_axis "
            "for a channel axis."
        )
    if min(spatial_shape) < 1:
        raise ValueError(f"image is empty (shape {array.shape}).")
    out = array.astype(np.float64, copy=True)
    if not np.all(np.isfinite(out)):
        bad = int(np.count_nonzero(~np.isfinite(out)))
        raise ValueError(
            f"image has {bad} NaN or infinite pixel(s); replace them first, "
            "e.g. np.nan_to_num(image), or leave them out with mask."
        )
    return out, tuple(spatial_shape)


def check_mask(mask, spatial_shape) -> np.ndarray | None:
    """Validate a mask's shape; returns it as a boolean array (or None)."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != tuple(spatial_shape):
        raise ValueError(
            f"mask has shape {mask.shape} but the image's spatial shape is {tuple(spatial_shape)}; "
            "pass a mask drawn on this image."
        )
    return mask != 0


def check_parameters(*, n_clusters, beta, eigen_solver, threshold, assign_labels, min_size):
    """Validate the scalar parameters of :func:`napari_spectral_seg.segment`."""
    if isinstance(n_clusters, str):
        if n_clusters != "auto":
            raise ValueError(f"n_clusters={n_clusters!r} is not understood; pass a whole number or 'auto'.")
    elif isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
        raise TypeError(f"n_clusters={n_clusters!r} must be a whole number, e.g. n_clusters=4, or 'auto'.")
    elif n_clusters < 1:
        raise ValueError(f"n_clusters={n_clusters} must be at least 1.")
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta={beta!r} must be a positive finite number; 1.0 is the seed example's value.")
    if eigen_solver not in EIGEN_SOLVERS:
        raise ValueError(f"eigen_solver={eigen_solver!r} is unknown; use one of {', '.join(EIGEN_SOLVERS)}.")
    if assign_labels not in LABEL_METHODS:
        raise ValueError(f"assign_labels={assign_labels!r} is unknown; use one of {', '.join(LABEL_METHODS)}.")
    if threshold is not None:
        if isinstance(threshold, str):
            if threshold.lower() != "otsu":
                raise ValueError(f"threshold={threshold!r} is not understood; pass a number or 'otsu'.")
        elif isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold):
            raise ValueError(f"threshold={threshold!r} must be a finite number or 'otsu'.")
    if isinstance(min_size, bool) or not isinstance(min_size, numbers.Integral) or min_size < 0:
        raise ValueError(f"min_size={min_size!r} must be a whole number of pixels >= 0.")
