"""Settings chosen from the image itself: ``sigma="auto"`` and ``min_size="auto"``.

A user should not have to guess how much to smooth or how small a speck is.
Both follow from two things the image shows: its pixel noise and the size of
its objects.

* Noise: the robust spread (MAD) of differences between neighbouring pixels.
  Blurred objects and background change little from one pixel to the next,
  so the differences are mostly noise.
* Typical object radius: the inscribed radius (largest distance to the
  background) of each piece of a rough foreground mask. A clump of touching
  nuclei has the inscribed radius of one nucleus, so clumping does not
  inflate it; its area-weighted median ignores specks.
* ``sigma``: the smallest Gaussian width that brings the smoothed noise below
  a share of the object-to-background contrast (``noise_to_contrast``) and
  leaves at most a few brightness peaks per typical object
  (``peaks_per_object``; so noise and texture no longer make passes inside
  an object), and never more than a share of the typical radius
  (``sigma_per_radius``; so necks between touching objects survive). A
  clean image is not smoothed at all: in a crowded field of small objects
  even one pixel of smoothing fills the necks between them.
* ``min_size``: a share of the typical object's area or volume
  (``min_size_per_object``): smaller pieces are noise above the threshold,
  not objects.

The shares are fields of :class:`~.auto.config.AutoConfig` (``config=``;
default ``AutoConfig()``). numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi

from .auto.config import AutoConfig, resolve_config
from .auto.geometry import distances_at, fill_image_holes
from .mask import otsu_threshold, threshold_in_use, thresholds
from .params import check_sigma

__all__ = [
    "ImageScales",
    "RoughMasks",
    "check_foreground",
    "chooses_min_size",
    "chooses_sigma",
    "chosen_settings",
    "estimate_noise",
    "measure_scales",
    "no_objects_error",
    "noise_threshold",
    "rough_radius",
    "smoothed_noise",
    "split_contrast",
    "unit_spacing",
]

# At most this many samples for the noise estimate (a median of them): a bound
# on its cost, not a threshold, so not a field of AutoConfig.
_NOISE_SAMPLES = 500_000


@dataclass(frozen=True)
class ImageScales:
    """What the image says about itself.

    Attributes
    ----------
    noise : float
        Pixel noise standard deviation.
    contrast : float
        Median foreground minus median background of the rough mask.
    radius : float
        Typical object radius, in pixels of the finest axis.
    sigma : float
        Chosen smoothing width, in pixels of the finest axis (0: none).
    min_size : int
        Chosen smallest piece, in pixels.
    """

    noise: float
    contrast: float
    radius: float
    sigma: float
    min_size: int

    def record(self) -> dict:
        """As recorded with a result."""
        return dict(
            noise=round(self.noise, 6),
            contrast=round(self.contrast, 6),
            typical_radius=round(self.radius, 3),
            sigma_used=self.sigma,
            min_size_used=self.min_size,
        )


def estimate_noise(image: np.ndarray, where: np.ndarray | None = None) -> float:
    """Robust pixel-noise standard deviation of ``image`` (spatial axes only).

    Parameters
    ----------
    image : ndarray of float, shape S
    where : ndarray of bool, shape S, optional
        Only differences between two pixels both in ``where`` count.

    Returns
    -------
    float
        1.4826 times the median absolute deviation of the differences between
        neighbours along the last axis, divided by sqrt(2).
    """
    if image.shape[-1] < 2:
        return 0.0
    differences = np.diff(image, axis=-1)
    if where is not None:
        differences = differences[where[..., 1:] & where[..., :-1]]
    differences = differences.ravel()
    if differences.size == 0:
        return 0.0
    differences = differences[:: max(1, differences.size // _NOISE_SAMPLES)]
    deviation = np.median(np.abs(differences - np.median(differences)))
    return float(1.4826 * deviation / np.sqrt(2.0))


def unit_spacing(spacing, ndim) -> np.ndarray:
    """Pixel size per axis in units of the finest axis."""
    spacing = np.ones(ndim) if spacing is None else np.asarray(spacing, dtype=float)
    return spacing / spacing.min()


def _smoothed_noise_factor(sigma: float, unit: np.ndarray) -> float:
    """Standard deviation of unit white noise after a Gaussian of ``sigma`` finest-axis pixels."""
    factor = 1.0
    for width in sigma / unit:
        if width > 0.3:  # narrower kernels leave the noise almost as it is
            factor /= np.sqrt(2.0 * np.sqrt(np.pi) * width)
    return float(factor)


class RoughMasks:
    """The rough mask and typical radius of the last image measured, kept for one run.

    The background correction measures the radius on the image, and the
    settings measure it again on the corrected image, which is the same
    image whenever the background was left as it is: the second ask then
    takes the first answer instead of smoothing, thresholding and labelling
    the image again.
    """

    def __init__(self):
        self._last = None

    def get(self, intensity: np.ndarray, mask, threshold, unit: np.ndarray) -> tuple[np.ndarray, float]:
        """``(rough mask, typical radius)`` of ``intensity`` (see :func:`rough_radius`)."""
        if self._last is not None:
            seen, seen_mask, seen_threshold, seen_unit, answer = self._last
            same_image = seen is intensity or (
                seen.dtype == intensity.dtype and seen.shape == intensity.shape and np.array_equal(seen, intensity)
            )
            if same_image and seen_mask is mask and seen_threshold == threshold and np.array_equal(seen_unit, unit):
                return answer
        rough = _rough_mask(intensity, mask, threshold, unit)
        answer = (rough, _typical_radius(rough, unit) if rough.any() else 1.0)
        self._last = (intensity, mask, threshold, np.array(unit, dtype=float), answer)
        return answer


def rough_radius(intensity: np.ndarray, mask, threshold, unit: np.ndarray, masks: RoughMasks | None = None) -> float:
    """The typical object radius of a lightly smoothed, thresholded image (pixels of the finest axis).

    ``masks`` keeps the answer for a later ask about the same image.
    """
    return (RoughMasks() if masks is None else masks).get(intensity, mask, threshold, unit)[1]


def _rough_mask(intensity, mask, threshold, unit) -> np.ndarray:
    """Foreground of the lightly smoothed image: the mask, or above the threshold."""
    threshold = threshold_in_use(threshold, mask is not None)
    if threshold is None:
        rough = np.ones(intensity.shape, bool) if mask is None else mask
    else:
        light = ndi.gaussian_filter(intensity, 1.0 / unit, mode="nearest")
        if threshold == "otsu":
            level = otsu_threshold(light[mask] if mask is not None and mask.any() else light)
        else:
            level = float(threshold)
        rough = light > level
        if mask is not None:
            rough &= mask
    return fill_image_holes(rough)


def _typical_radius(rough: np.ndarray, unit: np.ndarray) -> float:
    """Area-weighted median of the pieces' inscribed radii, in finest-axis pixels.

    The image border counts as background, except along an axis shorter than
    the objects (a stack of a few slices through them): the objects go on
    beyond it, so it would cap every radius at half the stack's depth.
    """
    radius = _median_inscribed_radius(rough, unit, np.ones(rough.ndim, bool))
    thin = _thin_axes(rough.shape, unit, radius)
    if thin.any() and not thin.all():
        radius = _median_inscribed_radius(rough, unit, ~thin)
    return radius


def _thin_axes(shape, unit: np.ndarray, radius: float) -> np.ndarray:
    """Axes of a stack no deeper than an object of ``radius`` is wide (never in 2D)."""
    extent = np.asarray(shape, float) * unit
    if len(shape) < 3:
        return np.zeros(len(shape), bool)
    return extent <= 2.0 * radius


def _median_inscribed_radius(rough: np.ndarray, unit: np.ndarray, closed: np.ndarray) -> float:
    """Area-weighted median inscribed radius, the border of the ``closed`` axes counting as background."""
    labels, n = ndi.label(rough)
    if n == 0:
        return 1.0
    pad = [(1, 1) if axis_closed else (0, 0) for axis_closed in closed]
    padded = np.pad(rough, pad)
    inside = labels > 0
    # The depth at the pieces' pixels only, their places in the padded image.
    at = np.unravel_index(np.flatnonzero(inside), rough.shape)
    at = np.ravel_multi_index(tuple(c + p[0] for c, p in zip(at, pad)), padded.shape)
    depth = distances_at(padded, at, sampling=unit)
    # The largest depth per piece (ndimage.maximum's values, at a fraction of its time).
    radii = np.full(n + 1, -np.inf)
    np.maximum.at(radii, labels[inside], depth)
    radii = radii[1:]
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(float)
    order = np.argsort(radii)
    mass = np.cumsum(areas[order])
    return float(max(radii[order][np.searchsorted(mass, mass[-1] / 2.0)], 1.0))


def _choose_sigma(noise: float, contrast: float, radius: float, unit: np.ndarray, config: AutoConfig) -> float:
    """The smallest width (quarter-pixel steps) that brings the smoothed noise below the contrast share."""
    cap = config.sigma_per_radius * radius
    allowed = contrast * config.noise_to_contrast
    if contrast <= 0 or noise <= allowed:
        return 0.0
    for sigma in np.arange(0.5, cap + 1e-9, 0.25):
        if noise * _smoothed_noise_factor(sigma, unit) <= allowed:
            return float(sigma)
    return float(max(round(cap * 4) / 4, 0.0))


def _sigma_for_peaks(intensity, rough, radius, unit, config: AutoConfig) -> float:
    """Smallest width (from none, half-pixel steps, up to ``sigma_per_radius``) that leaves at most
    ``peaks_per_object`` brightness peaks per typical object inside the foreground.

    Texture (chromatin, nucleoli) is not white noise: its peaks survive more
    smoothing than the noise estimate predicts, so they are counted instead.
    """
    if not rough.any():
        return 0.0
    n_objects = rough.sum() / _object_area(radius, unit, rough.shape)
    cap = max(config.sigma_per_radius * radius, 1.0)
    sigma = 0.0
    while sigma <= cap:
        smooth = ndi.gaussian_filter(intensity, sigma / unit, mode="nearest") if sigma else intensity
        peaks = (ndi.maximum_filter(smooth, size=3, mode="nearest") == smooth) & rough
        if peaks.sum() <= config.peaks_per_object * max(n_objects, 1.0):
            return sigma
        sigma += 0.5
    return float(round(cap * 2) / 2)


def _object_area(radius: float, unit: np.ndarray, shape=None) -> float:
    """Pixels (voxels) in a disc (ball) of ``radius`` finest-axis pixels.

    A ball is cut to the stack's depth along an axis shorter than its
    diameter (``shape``: the image's spatial shape).
    """
    if len(unit) == 2:
        return np.pi * radius**2 / np.prod(unit)
    volume = 4.0 / 3.0 * np.pi * radius**3 / np.prod(unit)
    if shape is not None:
        extent = np.asarray(shape, float) * unit
        volume *= float(np.prod(np.minimum(1.0, extent / (2.0 * radius))))
    return volume


def _choose_min_size(radius: float, unit: np.ndarray, shape, config: AutoConfig) -> int:
    """``min_size_per_object`` of a disc (ball) of the typical radius, in pixels (voxels)."""
    return max(int(round(config.min_size_per_object * _object_area(radius, unit, shape))), 1)


def measure_scales(
    intensity: np.ndarray,
    *,
    mask=None,
    threshold=None,
    spacing=None,
    choose_sigma: bool = True,
    config: AutoConfig | None = None,
    masks: RoughMasks | None = None,
) -> ImageScales:
    """Noise, contrast and typical object radius of an image, and the settings they imply.

    Parameters
    ----------
    intensity : ndarray of float, shape S
        The image (channel mean for colour images), not yet smoothed.
    mask : ndarray of bool, shape S, optional
        Pixels that may be foreground.
    threshold : float or "otsu", optional
        How the foreground is told from the background (as in ``segment``).
    spacing : sequence of float, optional
        Pixel size per axis.
    choose_sigma : bool
        Whether to choose a smoothing width (its peak count smooths the
        image several times); ``sigma`` is 0 when not.
    config : AutoConfig, optional
        The shares the choices follow (default: ``AutoConfig()``).
    masks : RoughMasks, optional
        Rough masks measured before in this run (the same image is not measured twice).

    Returns
    -------
    ImageScales
    """
    config = resolve_config(config)
    unit = unit_spacing(spacing, intensity.ndim)
    rough, radius = (RoughMasks() if masks is None else masks).get(intensity, mask, threshold, unit)
    noise = estimate_noise(intensity)
    inside, outside = intensity[rough], intensity[~rough]
    contrast = float(np.median(inside) - np.median(outside)) if inside.size and outside.size else 0.0
    min_size = _choose_min_size(radius, unit, intensity.shape, config)
    if not choose_sigma:
        return ImageScales(noise, contrast, radius, 0.0, min_size)
    sigma = max(
        _choose_sigma(noise, contrast, radius, unit, config), _sigma_for_peaks(intensity, rough, radius, unit, config)
    )
    return ImageScales(noise, contrast, radius, sigma, min_size)


def chooses_sigma(params) -> bool:
    """Whether :func:`chosen_settings` chooses the smoothing width: ``sigma="auto"`` in auto mode only."""
    return _is_auto(params.sigma) and _is_auto(params.n_clusters)


def chooses_min_size(params, thresholded: bool) -> bool:
    """Whether :func:`chosen_settings` chooses the smallest piece: ``min_size="auto"`` where a threshold acts."""
    return _is_auto(params.min_size) and thresholded


def _is_auto(value) -> bool:
    # Not value == "auto": a per-axis sigma may be an array.
    return isinstance(value, str) and value == "auto"


def chosen_settings(
    data: np.ndarray,
    explicit_mask,
    params,
    spatial_shape,
    spacing,
    parameters: dict,
    config: AutoConfig | None = None,
    masks: RoughMasks | None = None,
) -> tuple[tuple[str, float] | tuple[float, ...] | None, int]:
    """The smoothing and smallest piece to use: as given, or chosen from the image ("auto").

    ``sigma="auto"`` smooths in auto mode only (a fixed count follows the
    scikit-learn example, which does not smooth); ``min_size="auto"`` is
    chosen where a threshold makes the mask and is 0 inside a given mask
    (drawn as the user wants it). The values used are recorded in
    ``parameters`` (``sigma_used``, ``min_size_used``); ``config`` holds
    the shares the choices follow (default: ``AutoConfig()``). ``masks``:
    see :func:`measure_scales`.
    """
    choose_sigma = chooses_sigma(params)
    choose_min_size = chooses_min_size(params, thresholds(params.threshold, explicit_mask is not None))
    given_sigma = None if _is_auto(params.sigma) else params.sigma
    sigma = check_sigma(given_sigma, len(spatial_shape), shape=spatial_shape, spacing=spacing)
    min_size = 0 if _is_auto(params.min_size) else params.min_size
    if choose_sigma or choose_min_size:
        intensity = data if data.ndim == len(spatial_shape) else data.mean(axis=-1)
        scales = measure_scales(
            intensity,
            mask=explicit_mask,
            threshold=params.threshold,
            spacing=spacing,
            choose_sigma=choose_sigma,
            config=config,
            masks=masks,
        )
        parameters.update(scales.record())
        if choose_sigma:
            # Recorded even when it is 0: the engine chose not to smooth.
            given_sigma = scales.sigma
            sigma = ("scalar", scales.sigma) if scales.sigma > 0 else None
        if choose_min_size:
            min_size = scales.min_size
    parameters["sigma_used"] = given_sigma
    parameters["min_size_used"] = int(min_size)
    return sigma, min_size


def check_foreground(
    intensity: np.ndarray,
    mask: np.ndarray,
    threshold: float,
    parameters: dict,
    spacing=None,
    min_size: int = 1,
    config: AutoConfig | None = None,
):
    """An automatic threshold that split objects from background, not noise.

    Otsu's threshold always splits an image in two. Where few objects lie in
    a large field, or none (a well with no cells, a frame before they
    appear), it splits the background's noise, and the result would be a
    mosaic of noise. The split holds objects only where the median of the
    pixels above it exceeds that of the pixels below by
    ``config.foreground_to_noise`` standard deviations of the noise left
    after the smoothing. Where it does not, the objects are what stands
    ``config.noise_threshold_deviations`` such deviations above the image's
    median; where nothing does, the field is empty.

    Parameters
    ----------
    intensity : ndarray of float, shape S or S + (C,)
        The image as thresholded (smoothed, corrected; colour: its channel mean).
    mask : ndarray of bool, shape S
        The pixels above ``threshold``.
    threshold : float
        The automatic (Otsu) threshold.
    parameters : dict
        The run's record, with the ``noise`` and ``sigma_used`` of
        :func:`chosen_settings` (nothing is checked without them); receives
        ``foreground_contrast`` (in noise deviations) and, where the
        threshold is replaced, ``threshold_rule="noise"``.
    spacing : sequence of float, optional
    min_size : int
        Smallest piece kept: an empty field's chance pixels above the noise
        threshold are specks, not objects.
    config : AutoConfig, optional
        Default: ``AutoConfig()``.

    Returns
    -------
    mask : ndarray of bool, shape S
    threshold : float

    Raises
    ------
    EmptyMaskError
        When nothing stands out of the noise.
    """
    config = resolve_config(config)
    noise_left = smoothed_noise(parameters, mask.ndim, spacing)
    if not noise_left or mask.all() or not mask.any():
        return mask, threshold
    if intensity.ndim > mask.ndim:
        intensity = intensity.mean(axis=-1)
    contrast, holds = split_contrast(np.median(intensity[mask]), np.median(intensity[~mask]), noise_left, config)
    parameters["foreground_contrast"] = round(contrast, 3)
    if holds:
        return mask, threshold
    threshold = noise_threshold(np.median(intensity), noise_left, config)
    mask = intensity > threshold
    parameters["threshold_rule"] = "noise"
    pieces, _ = ndi.label(mask)
    sizes = np.bincount(pieces.ravel())
    if not (sizes[1:] >= min_size).any():
        raise no_objects_error(contrast, config)
    return mask, threshold


# The steps of check_foreground, public for a caller that has the medians
# without the whole image (blockwise: from histograms over blocks).


def smoothed_noise(parameters: dict, ndim: int, spacing=None) -> float:
    """The noise standard deviation left after the run's smoothing (0: no noise was measured).

    Parameters
    ----------
    parameters : dict
        The run's record, with ``noise`` and ``sigma_used`` (see :func:`chosen_settings`).
    ndim : int
        Spatial axes.
    spacing : sequence of float, optional
    """
    noise = parameters.get("noise")
    if not noise:
        return 0.0
    sigma = parameters.get("sigma_used") or 0.0
    return noise * (_smoothed_noise_factor(sigma, unit_spacing(spacing, ndim)) if sigma else 1.0)


def split_contrast(
    inside_median: float, outside_median: float, noise_left: float, config: AutoConfig | None = None
) -> tuple[float, bool]:
    """The medians above and below an automatic threshold, apart in noise deviations; and whether that holds objects
    (at least ``config.foreground_to_noise``)."""
    contrast = float(inside_median - outside_median) / noise_left
    return contrast, contrast >= resolve_config(config).foreground_to_noise


def noise_threshold(image_median: float, noise_left: float, config: AutoConfig | None = None) -> float:
    """The threshold where the automatic one split noise: ``config.noise_threshold_deviations`` above the median."""
    return float(image_median + resolve_config(config).noise_threshold_deviations * noise_left)


def no_objects_error(contrast: float, config: AutoConfig | None = None):
    """The :class:`~.result.EmptyMaskError` of a field where nothing stands out of the noise."""
    from .result import EmptyMaskError

    deviations = resolve_config(config).noise_threshold_deviations
    return EmptyMaskError(
        f"no objects: nothing is brighter than the image's noise allows by chance (the pixels above Otsu's "
        f"threshold are only {contrast:.2g} noise deviations brighter than the rest, and none lies "
        f"{deviations:g} above the median); if the field is not empty, give threshold a number or draw a mask."
    )
