"""Synthetic test images with known truth (numpy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["four_circles"]

# Centres and radii of the scikit-learn example, on its 100 x 100 grid.
_CENTERS = np.array([(28, 24), (40, 50), (67, 58), (24, 70)], dtype=float)
_RADII = np.array([16, 14, 15, 14], dtype=float)


def four_circles(size: int = 100, noise: float = 0.2, seed: int | None = 0, ndim: int = 2):
    """The scikit-learn example's four touching circles, optionally scaled up or in 3D.

    Parameters
    ----------
    size : int
        Side of the image in pixels (100 is the example); circles scale with it.
    noise : float
        Standard deviation of the added Gaussian noise (0.2 in the example).
    seed : int, optional
        Noise seed.
    ndim : {2, 3}
        2 gives circles; 3 gives spheres with the same centres at mid-depth.

    Returns
    -------
    image : ndarray of float64, shape (size,) * ndim
        1 + (inside any circle) + noise, as in the example.
    mask : ndarray of bool, same shape
        Union of the circles (the example's mask).
    truth : ndarray of int32, same shape
        1..4 for pixels inside exactly one circle, 0 outside and where
        circles overlap (those pixels belong to no single true segment).
    """
    if ndim not in (2, 3):
        raise ValueError(f"ndim={ndim} must be 2 or 3.")
    scale = size / 100.0
    centers = _CENTERS * scale
    radii = _RADII * scale
    axes = np.ogrid[tuple(slice(0, size) for _ in range(ndim))]
    count = np.zeros((size,) * ndim, dtype=np.int8)
    truth = np.zeros((size,) * ndim, dtype=np.int32)
    for i, (center, radius) in enumerate(zip(centers, radii), start=1):
        dist2 = (axes[-2] - center[0]) ** 2 + (axes[-1] - center[1]) ** 2
        if ndim == 3:
            dist2 = dist2 + (axes[0] - size / 2) ** 2
        inside = dist2 < radius**2
        count += inside
        truth[inside] = i
    mask = count > 0
    truth[count > 1] = 0
    image = mask.astype(np.float64) + 1.0
    rng = np.random.default_rng(seed)
    image += noise * rng.standard_normal(image.shape)
    return image, mask, truth
