"""Checks of the parameters that need the image's shape: ``spacing`` and ``sigma`` per axis.

:mod:`.params` declares them; these run when the image is known (the
pipeline's image checks), and :mod:`.params` re-exports them.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_sigma", "check_spacing", "sigma_smooths"]

_ONE_UNIT = "give every size in one unit (e.g. µm)."


def check_spacing(spacing, ndim) -> np.ndarray | None:
    """Validate ``spacing``: ``ndim`` positive finite pixel sizes (or None)."""
    if spacing is None:
        return None
    if isinstance(spacing, (str, bytes)):
        example = [1.0] * ndim
        raise ValueError(
            f"spacing={spacing!r} is text, but must be {ndim} positive numbers, one pixel size per spatial "
            f"axis: e.g. {example} in a parameter file, --spacing {','.join('1' * ndim)} on the command line."
        )
    message = (
        f"spacing={spacing!r} must be {ndim} positive numbers, one pixel size per spatial axis"
        f" (e.g. spacing={(1.0,) * ndim})."
    )
    try:
        values = np.asarray(spacing, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if values.shape != (ndim,) or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(message)
    if values.max() > 1e100 * values.min():  # sizes relative to the smallest, squared: they would overflow
        raise ValueError(
            f"spacing={spacing!r}: the largest pixel size is more than 1e+100 times the smallest; {_ONE_UNIT}"
        )
    return values


def sigma_smooths(sigma) -> bool:
    """Whether a given ``sigma`` (a number, one per axis, or None; not "auto") smooths: not None nor all 0.

    A value :func:`check_sigma` refuses counts as smoothing: the forecasts
    made before it runs must not fail in numpy's words instead of its own.
    """
    if sigma is None:
        return False
    try:
        return bool(np.any(np.asarray(sigma, dtype=float) != 0))
    except (TypeError, ValueError):
        return True


def check_sigma(sigma, n_spatial: int, shape=None, spacing=None) -> tuple[str, float] | tuple[float, ...] | None:
    """Validate ``sigma`` and return it as ``("scalar", value)``, a per-axis tuple of floats, or None.

    Parameters
    ----------
    sigma : None, float, or sequence of float
        ``None`` or ``0``: no smoothing. A scalar applies to every spatial
        axis (scaled by spacing); a sequence gives one value per spatial
        axis, in pixels of that axis.
    n_spatial : int
        Number of spatial axes.
    shape, spacing : sequence, optional
        The image's spatial shape and pixel sizes: a width (in pixels of
        its axis, after ``spacing``) larger than the image along that axis
        is refused, as the filter's cost grows with the width and the
        result is a flat image.

    Raises
    ------
    TypeError, ValueError
        A bool, a non-number, negative, NaN or infinite values, a
        sequence of the wrong length, or wider than the image.
    """
    if sigma is None:
        return None
    if isinstance(sigma, str):
        raise ValueError(f"sigma={sigma!r} is not understood; pass a number of pixels, 'auto' or None.")
    if isinstance(sigma, bool):
        raise TypeError(f"sigma={sigma!r} must be a number of pixels (e.g. sigma=1.0) or None.")
    if isinstance(sigma, numbers.Real):
        values, scalar = np.array([float(sigma)]), True
    else:
        try:
            values = np.asarray(sigma, dtype=float).ravel()
        except (TypeError, ValueError):
            raise TypeError(f"sigma={sigma!r} must be a number of pixels, one per spatial axis, or None.") from None
        scalar = False
        if len(values) != n_spatial:
            raise ValueError(
                f"sigma={tuple(values.tolist())} has {len(values)} value(s) but the image has "
                f"{n_spatial} spatial axes; pass one number or {n_spatial}."
            )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(
            f"sigma={sigma!r} must be >= 0 and finite (Gaussian width in pixels); "
            "use 0 or None for no smoothing, e.g. sigma=1.0 for mild smoothing."
        )
    if not sigma_smooths(values):
        return None
    if shape is not None:
        _check_sigma_fits(sigma, values, scalar, shape, spacing)
    return ("scalar", float(values[0])) if scalar else tuple(float(v) for v in values)


def _check_sigma_fits(sigma, values, scalar, shape, spacing) -> None:
    """Refuse a smoothing width larger than the image along any axis (per-axis pixels as smooth_image uses them)."""
    extent = np.asarray(shape, dtype=float)
    if scalar:
        sizes = np.ones(len(extent)) if spacing is None else np.asarray(spacing, dtype=float)
        widths = values[0] * sizes.min() / sizes
    else:
        widths = values
    wide = np.flatnonzero(widths > extent)
    if len(wide):
        axis = int(wide[0])
        limit = float(extent[axis] if not scalar else extent[axis] * widths[0] / widths[axis])
        raise ValueError(
            f"sigma={sigma!r} is wider than the image: {widths[axis]:.4g} pixels along axis {axis}, which has "
            f"{int(extent[axis])}. Smoothing that wide leaves a flat image and takes time in proportion to sigma; "
            f"use sigma={limit:.4g} or less (e.g. sigma=1.0 against pixel noise), or 0 for none."
        )
