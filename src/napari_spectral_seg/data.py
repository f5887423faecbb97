"""Synthetic test images with known truth (numpy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["four_circles", "touching_blobs"]

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


def _place_blobs(rng, shape, n_objects, radius_range, touch_fraction, max_tries=2000):
    """Centres and radii of ellipsoids, some touching a neighbour, none cut by the border."""
    ndim = len(shape)
    shape_arr = np.asarray(shape, dtype=float)
    centres, radii = [], []
    tries = 0
    while len(centres) < n_objects and tries < max_tries:
        tries += 1
        base = rng.uniform(*radius_range)
        # Mildly elongated: nuclei are rarely perfect discs.
        r = base * rng.uniform(0.8, 1.2, size=ndim)
        if centres and rng.random() < touch_fraction:
            j = rng.integers(len(centres))
            direction = rng.standard_normal(ndim)
            direction /= np.linalg.norm(direction)
            # Centre distance below the sum of mean radii: the blobs overlap
            # and their union has a neck (or none, for deep overlaps).
            c = centres[j] + direction * rng.uniform(0.7, 0.95) * (base + radii[j].mean())
            min_gap = 0.6
        else:
            c = rng.uniform(0, 1, size=ndim) * shape_arr
            min_gap = 1.15
        if np.any(c - r < 1) or np.any(c + r > shape_arr - 2):
            continue
        ok = True
        for cj, rj in zip(centres, radii):
            gap = np.linalg.norm(c - cj) / (r.mean() + rj.mean())
            if gap < min_gap:
                ok = False
                break
        if ok:
            centres.append(c)
            radii.append(r)
    return np.array(centres), np.array(radii)


def touching_blobs(
    shape=(128, 128),
    n_objects: int = 14,
    *,
    radius_range=(6.0, 11.0),
    touch_fraction: float = 0.6,
    noise: float = 0.05,
    texture: float = 0.15,
    blur: float = 1.0,
    seed: int | None = 0,
):
    """Synthetic fluorescence-like nuclei, many touching, with their true instance labels.

    Ellipsoids of random size and brightness are placed at random; about
    ``touch_fraction`` of them overlap an earlier one (centre distance
    0.7-0.95 times the sum of the radii), which gives unions with a neck or,
    for deep overlaps, almost none. Each pixel belongs to the object in
    which it lies deepest (smallest normalised radius), so the truth border
    between touching objects is a smooth curve. The image is each object's
    brightness times a dome profile (brighter centre, as widefield nuclei),
    times smooth multiplicative texture, blurred by a Gaussian PSF, plus a
    background offset and Gaussian noise.

    Parameters
    ----------
    shape : tuple of int, length 2 or 3
        Image shape; 3 axes give a 3D stack.
    n_objects : int
        Number of objects attempted (fewer if they do not fit).
    radius_range : (float, float)
        Range of the mean radius in pixels.
    touch_fraction : float
        Probability that a new object is placed touching an existing one.
    noise : float
        Standard deviation of the additive Gaussian noise (brightness 0.5-1).
    texture : float
        Amplitude of the smooth multiplicative texture inside objects.
    blur : float
        Sigma of the Gaussian PSF in pixels.
    seed : int, optional
        Everything random (placement, sizes, brightness, texture, noise)
        derives from it: the same seed gives the same image.

    Returns
    -------
    image : ndarray of float64, shape ``shape``
    truth : ndarray of int32, shape ``shape``
        0 background, ``1..N`` the objects (consecutive).
    """
    import scipy.ndimage as ndi

    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"shape={shape} must have 2 or 3 axes.")
    rng = np.random.default_rng(seed)
    centres, radii = _place_blobs(rng, shape, n_objects, radius_range, touch_fraction)
    grid = np.indices(shape, dtype=np.float64)
    best = np.full(shape, np.inf)
    truth = np.zeros(shape, dtype=np.int32)
    brightness = rng.uniform(0.5, 1.0, size=len(centres))
    for i, (c, r) in enumerate(zip(centres, radii), start=1):
        rho = np.sqrt(sum(((grid[a] - c[a]) / r[a]) ** 2 for a in range(len(shape))))
        closer = (rho < 1.0) & (rho < best)
        truth[closer] = i
        best = np.where(closer, rho, best)
    inside = truth > 0
    dome = np.where(inside, 1.0 - 0.35 * np.minimum(best, 1.0) ** 2, 0.0)
    level = np.concatenate([[0.0], brightness])[truth]
    smooth_noise = ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
    smooth_noise /= smooth_noise.std() + 1e-12
    signal = level * dome * (1.0 + texture * smooth_noise)
    image = ndi.gaussian_filter(signal, blur) if blur > 0 else signal
    image = image + 0.1 + noise * rng.standard_normal(shape)
    return image, truth
