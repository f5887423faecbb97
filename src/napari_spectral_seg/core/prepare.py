"""The image as the graph should see it: objects bright, background flat, noise smoothed.

The steps before the mask, in order: polarity and uneven background
(:mod:`.background`), the smoothing width and smallest piece chosen from the
image where they are "auto" (:mod:`.adapt`), then the smoothing itself
(:mod:`.smooth`). :func:`iter_prepare_image` reports after each of them
(at 8192 x 8192 they take seconds), :func:`prepare_work` says beforehand
which will run, for the progress fraction (:mod:`.shares`).
"""

from __future__ import annotations

import numpy as np

from .adapt import RoughMasks, chooses_min_size, chooses_sigma, chosen_settings, rough_radius, unit_spacing
from .background import chooses_polarity, correct_intensity, estimates_background
from .image_checks import sigma_smooths
from .mask import thresholds
from .shares import PrepareShares, prepare_shares
from .smooth import smooth_image

__all__ = [
    "CHOSEN_KEYS",
    "PREPARE_STEPS",
    "estimate_prepare_shares",
    "iter_prepare_image",
    "prepare_work",
]

# What iter_prepare_image reports as done, in order.
PREPARE_STEPS = ("corrected", "settings", "smoothed")
# The costly parts of each step, as prepare_work names them.
_STEP_PARTS = dict(zip(PREPARE_STEPS, (("polarity", "background"), ("scales",), ("smoothing",)), strict=True))

# What iter_prepare_image records it decided from the image.
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


def iter_prepare_image(data: np.ndarray, explicit_mask, params, spatial_shape, spacing, config=None):
    """Correct, choose and smooth; yields ``(step, message)`` as each of ``PREPARE_STEPS`` ends.

    Parameters
    ----------
    data : ndarray of float, shape S or S + (C,)
        The checked image (channels last).
    explicit_mask : ndarray of bool or None
    params : SegmentationParams
    spatial_shape : tuple of int
    spacing : ndarray or None
    config : AutoConfig, optional
        The shares of the choices taken from the image (default: ``AutoConfig()``).

    Returns
    -------
    tuple
        As the ``StopIteration`` value: ``(data, min_size, chosen)``, the
        image the mask and the graph are built from, the smallest piece
        kept, and what was decided from the image (``polarity_used``,
        ``sigma_used`` ...).
    """
    chosen = {}
    masks = RoughMasks()  # the correction's rough mask, reused by the settings when the image is unchanged
    data = _corrected(data, explicit_mask, params, spatial_shape, spacing, chosen, config, masks)
    yield "corrected", "polarity and background"
    sigma, min_size = chosen_settings(data, explicit_mask, params, spatial_shape, spacing, chosen, config, masks)
    yield "settings", "smoothing width and smallest piece"
    # Smoothed before the mask so a threshold sees the denoised image too.
    data = smooth_image(data, sigma, spacing, multichannel=data.ndim > len(spatial_shape))
    yield "smoothed", "smoothed the image"
    return data, min_size, chosen


def prepare_work(params, has_mask: bool, colour: bool) -> dict[str, bool]:
    """Which of the costly steps before the mask a run will take, known before any runs.

    Keys ``polarity``, ``background``, ``scales`` (the noise and object
    size behind ``sigma`` or ``min_size`` "auto") and ``smoothing``; the
    predicates are those :func:`.background.correct_intensity` and
    :func:`.adapt.chosen_settings` decide by (a chosen width is nearly
    always above 0, so it is counted as smoothing).
    """
    thresholded = thresholds(params.threshold, has_mask)
    choose_sigma = chooses_sigma(params)
    given = not isinstance(params.sigma, str) and sigma_smooths(params.sigma)
    return {
        "polarity": chooses_polarity(params),
        "background": estimates_background(params, thresholded, colour),
        "scales": choose_sigma or chooses_min_size(params, thresholded),
        "smoothing": choose_sigma or given,
    }


def _corrected(data, explicit_mask, params, spatial_shape, spacing, parameters, config, masks=None) -> np.ndarray:
    """The image with bright objects on a flat background (see :mod:`.background`)."""
    unit = unit_spacing(spacing, len(spatial_shape))
    thresholded = thresholds(params.threshold, explicit_mask is not None)

    def radius_of(intensity):
        return rough_radius(intensity, explicit_mask, params.threshold, unit, masks)

    return correct_intensity(data, len(spatial_shape), params, thresholded, radius_of, unit, parameters, config)


def estimate_prepare_shares(data, spatial_shape, explicit_mask, params, seed_pixels) -> PrepareShares:
    """The steps before the graph, as shares of the run estimated from the image's size (core/shares.py)."""
    n_pixels = int(np.prod(spatial_shape))
    colour = data.ndim > len(spatial_shape)
    has_mask = explicit_mask is not None
    work = prepare_work(params, has_mask, colour)
    steps = {step: [part for part in parts if work[part]] for step, parts in _STEP_PARTS.items()}
    n_masked = int(np.count_nonzero(explicit_mask)) if has_mask else n_pixels
    thresholded = thresholds(params.threshold, has_mask)
    auto = params.n_clusters == "auto" and seed_pixels is None
    k = len(seed_pixels) if seed_pixels is not None else (2 if auto else params.n_clusters)
    n_channels = data.shape[-1] if colour else 1
    return prepare_shares(n_pixels, n_channels, steps, (n_masked, thresholded), auto, k, params.eigen_solver)
