"""Which pixels to segment: an explicit mask, a threshold, or Otsu's threshold."""

from __future__ import annotations

import numpy as np

from .validation import scale_for_graph

__all__ = [
    "empty_mask_hint",
    "otsu_from_histogram",
    "otsu_threshold",
    "resolve_mask",
    "threshold_in_use",
    "thresholds",
]


def otsu_threshold(image: np.ndarray, n_bins: int = 256) -> float:
    """Otsu's threshold: the cut of the histogram that maximises between-class variance.

    Parameters
    ----------
    image : ndarray, shape S or S + (C,)
        Intensities (channels are averaged).
    n_bins : int
        Histogram bins.

    Returns
    -------
    float
        Pixels strictly above it are foreground. For a constant image it is
        the constant (so the foreground is empty).
    """
    values = np.asarray(image, dtype=np.float64).ravel()
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    # On a copy scaled by a power of two (exact) when the squares of the
    # between-class variance would overflow or underflow: the threshold of
    # image * 2**k is then exactly 2**k times the image's, the same mask.
    scaled = scale_for_graph(values)
    exponent = _scale_exponent(values, scaled)
    return float(np.ldexp(_otsu_scaled(scaled, n_bins), exponent))


def otsu_from_histogram(counts: np.ndarray, lo: float, hi: float) -> float:
    """Otsu's threshold from a histogram of ``len(counts)`` equal bins over ``[lo, hi]``.

    The counts of ``np.histogram(values, bins=len(counts), range=(lo, hi))``
    summed over the blocks of an image give :func:`otsu_threshold` of the
    whole image (the same bins and cut), without holding it.
    """
    counts = np.asarray(counts)
    if hi <= lo:
        return float(lo)
    edges = np.linspace(lo, hi, len(counts) + 1)
    # Centres scaled by a power of two (exact) keep the squared means finite;
    # the cut, an edge, is taken unscaled.
    exponent = int(np.frexp(max(abs(lo), abs(hi)))[1])
    centers = np.ldexp((edges[:-1] + edges[1:]) / 2, -exponent)
    return _best_cut(counts, centers, edges, int(counts.sum()))


def _scale_exponent(values: np.ndarray, scaled: np.ndarray) -> int:
    """``e`` with ``values == scaled * 2**e`` (0 when nothing was scaled)."""
    if scaled is values:
        return 0
    i = int(np.argmax(np.abs(values)))
    return int(np.frexp(values[i])[1] - np.frexp(scaled[i])[1])


def _otsu_scaled(values: np.ndarray, n_bins: int) -> float:
    """Otsu's threshold of values whose magnitude is moderate (see :func:`otsu_threshold`)."""
    lo, hi = float(values.min()), float(values.max())
    try:
        counts, edges = np.histogram(values, bins=n_bins, range=(lo, hi))
    except ValueError:
        # A range too narrow for n_bins distinct float64 edges ("Too many
        # bins for data range"): only a few distinct values, cut between them.
        distinct, counts = np.unique(values, return_counts=True)
        return _best_cut(counts, distinct, np.concatenate([[lo], distinct]), len(values))
    centers = (edges[:-1] + edges[1:]) / 2
    return _best_cut(counts, centers, edges, len(values))


def _best_cut(counts, centers, edges, n_values) -> float:
    """The upper edge of the last "below" bin that maximises the between-class variance.

    ``edges[i + 1]`` is the upper edge of bin ``i`` (``centers[i]`` its value).
    """
    weight_below = np.cumsum(counts)[:-1]
    weight_above = n_values - weight_below
    sum_below = np.cumsum(counts * centers)[:-1]
    mean_below = sum_below / weight_below.clip(min=1)
    mean_above = (np.sum(counts * centers) - sum_below) / weight_above.clip(min=1)
    between = weight_below * weight_above * (mean_below - mean_above) ** 2
    # The threshold is the upper edge of the last "below" bin.
    return float(edges[1:-1][np.argmax(between)])


def threshold_in_use(threshold, has_mask: bool):
    """The threshold a run applies: ``"auto"`` is Otsu's without a mask and none inside one.

    Parameters
    ----------
    threshold : float, "otsu", "auto" or None
        As given to ``segment``.
    has_mask : bool
        Whether a mask is given.

    Returns
    -------
    float, "otsu" or None
    """
    if isinstance(threshold, str):
        word = threshold.lower()
        if word == "auto":
            return None if has_mask else "otsu"
        return word
    return threshold


def thresholds(threshold, has_mask: bool) -> bool:
    """Whether a run's mask is made (or narrowed) by a threshold (:func:`threshold_in_use`)."""
    return threshold_in_use(threshold, has_mask) is not None


def resolve_mask(image, mask=None, threshold=None, spatial_shape=None) -> tuple[np.ndarray, float | None]:
    """Boolean mask of the pixels to segment.

    Parameters
    ----------
    image : ndarray, shape S or S + (C,)
        Intensities (channel axis last); thresholds apply to the channel mean.
    mask : array_like of bool, shape S, optional
        Explicit mask; nonzero means inside. Combined with ``threshold`` by
        logical and when both are given.
    threshold : float, "otsu" or "auto", optional
        Keep pixels whose intensity is strictly greater; Otsu's threshold is
        that of the pixels inside ``mask`` when one is given (a region of
        interest), and ``"auto"`` is none with a mask (see :func:`threshold_in_use`).
    spatial_shape : tuple, optional
        ``S``; defaults to ``image.shape``.

    Returns
    -------
    mask : ndarray of bool, shape S
    threshold : float or None
        The threshold used (Otsu's value when ``threshold="otsu"``).
    """
    spatial_shape = image.shape if spatial_shape is None else tuple(spatial_shape)
    intensity = image if image.shape == spatial_shape else image.mean(axis=-1)
    if mask is not None:
        result = np.asarray(mask).astype(bool, copy=True)
    else:
        result = np.ones(spatial_shape, dtype=bool)
    used = None
    threshold = threshold_in_use(threshold, mask is not None)
    if threshold is not None:
        if threshold == "otsu":
            # Inside a region of interest, Otsu's threshold of that region.
            used = otsu_threshold(intensity[result] if mask is not None and result.any() else intensity)
        else:
            used = float(threshold)
        result &= intensity > used
    return result, used


def empty_mask_hint(data: np.ndarray, threshold, used_threshold, explicit_mask=None) -> str:
    """What to change when the mask keeps no pixel (a given mask empty itself comes first)."""
    if used_threshold is None or (explicit_mask is not None and not np.any(explicit_mask)):
        return "draw or pass a mask with some nonzero pixels"
    if isinstance(threshold, str) and data.max() == data.min():
        return f"the image is constant, so threshold={threshold!r} keeps nothing; pass threshold=None"
    return f"lower the threshold (it is {used_threshold:.4g}, the image maximum is {data.max():.4g})"
