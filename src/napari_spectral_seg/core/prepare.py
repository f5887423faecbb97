"""The image as the graph should see it: objects bright, background flat, noise smoothed.

The steps before the mask, in order: polarity and uneven background
(:mod:`.background`), the smoothing width and smallest piece chosen from the
image where they are "auto" (:mod:`.adapt`), then the smoothing itself
(:mod:`.smooth`).
"""

from __future__ import annotations

import numpy as np

from .adapt import chosen_settings, rough_radius, unit_spacing
from .background import correct_intensity
from .mask import threshold_in_use
from .smooth import smooth_image

__all__ = ["CHOSEN_KEYS", "prepare_image"]

# What prepare_image records it decided from the image.
CHOSEN_KEYS = (
    "polarity_used",
    "background_used",
    "background_range",
    "noise",
    "contrast",
    "typical_radius",
    "sigma_used",
    "min_size_used",
)


def prepare_image(data: np.ndarray, explicit_mask, params, spatial_shape, spacing) -> tuple[np.ndarray, int, dict]:
    """Correct, choose and smooth.

    Parameters
    ----------
    data : ndarray of float, shape S or S + (C,)
        The checked image (channels last).
    explicit_mask : ndarray of bool or None
    params : SegmentationParams
    spatial_shape : tuple of int
    spacing : ndarray or None

    Returns
    -------
    data : ndarray of float
        The image the mask and the graph are built from.
    min_size : int
        The smallest piece kept.
    chosen : dict
        What was decided from the image (``polarity_used``, ``sigma_used`` ...).
    """
    chosen = {}
    data = _corrected(data, explicit_mask, params, spatial_shape, spacing, chosen)
    sigma, min_size = chosen_settings(data, explicit_mask, params, spatial_shape, spacing, chosen)
    # Smoothed before the mask so a threshold sees the denoised image too.
    data = smooth_image(data, sigma, spacing, multichannel=data.ndim > len(spatial_shape))
    return data, min_size, chosen


def _corrected(data, explicit_mask, params, spatial_shape, spacing, parameters) -> np.ndarray:
    """The image with bright objects on a flat background (see :mod:`.background`)."""
    unit = unit_spacing(spacing, len(spatial_shape))
    has_mask = explicit_mask is not None
    thresholded = threshold_in_use(params.threshold, has_mask) is not None

    def radius_of(intensity):
        return rough_radius(intensity, explicit_mask, params.threshold, unit)

    return correct_intensity(data, len(spatial_shape), params, thresholded, radius_of, unit, parameters)
