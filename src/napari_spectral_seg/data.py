"""Synthetic test images with known truth (numpy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["four_circles", "textured_nuclei", "touching_blobs"]

# Centres and radii of the scikit-learn example, on its 100 x 100 grid.
_CENTERS = np.array([(28, 24), (40, 50), (67, 58), (24, 70)], dtype=float)
_RADII = np.array([16, 14, 15, 14], dtype=float)


def four_circles(
    size: int = 100, noise: float = 0.2, seed: int | None = 0, ndim: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
) -> tuple[np.ndarray, np.ndarray]:
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


# ------------------------------------------------------------ textured nuclei
def _random_rotation(rng, ndim):
    """A random rotation matrix (uniform over rotations)."""
    q, r = np.linalg.qr(rng.standard_normal((ndim, ndim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _place_nuclei(rng, extent, margin, n_objects, radius_range, touch_fraction, max_tries=4000):
    """Centres, semi-axes and rotations of ellipsoids in physical units, some in contact with a neighbour.

    The mean radius is log-uniform in ``radius_range``; every ellipsoid keeps ``margin`` from the
    border of ``extent`` (no object is cut by the border).
    """
    ndim = len(extent)
    log_lo, log_hi = np.log(radius_range[0]), np.log(radius_range[1])
    centres, axes, rotations = [], [], []
    for _ in range(max_tries):
        if len(centres) == n_objects:
            break
        base = float(np.exp(rng.uniform(log_lo, log_hi)))
        semi = base * rng.uniform(0.8, 1.25, size=ndim)
        rotation = _random_rotation(rng, ndim)
        if centres and rng.random() < touch_fraction:
            j = int(rng.integers(len(centres)))
            direction = rng.standard_normal(ndim)
            direction /= np.linalg.norm(direction)
            # Centre distance just below the sum of mean radii: in contact, a shared border.
            centre = centres[j] + direction * rng.uniform(0.8, 0.95) * (base + axes[j].mean())
            min_gap = 0.75
        else:
            centre = rng.uniform(0.0, 1.0, size=ndim) * extent
            min_gap = 1.1
        reach = semi.max()
        if np.any(centre - reach < margin) or np.any(centre + reach > extent - margin):
            continue
        if all(np.linalg.norm(centre - c) >= min_gap * (base + a.mean()) for c, a in zip(centres, axes)):
            centres.append(centre)
            axes.append(semi)
            rotations.append(rotation)
    return centres, axes, rotations


def _nuclei_truth(coords, centres, axes, rotations):
    """Instance labels (1..N consecutive) and the indices of the ellipsoids that kept any pixel.

    A pixel inside several ellipsoids goes to the one whose surface is farthest away (largest
    depth ``(1 - rho) * mean radius``): the shared border of two nuclei in contact lies halfway
    between their surfaces, as where two soft bodies press together.
    """
    shape = coords.shape[1:]
    depth = np.full(shape, 0.0)
    truth = np.zeros(shape, dtype=np.int32)
    for i, (c, a, rot) in enumerate(zip(centres, axes, rotations), start=1):
        local = np.tensordot(rot.T, coords - c.reshape((-1,) + (1,) * len(shape)), axes=1)
        rho = np.sqrt(sum((local[k] / a[k]) ** 2 for k in range(len(a))))
        d = (1.0 - rho) * a.mean()
        closer = d > depth  # inside (rho < 1) and deeper than in any earlier nucleus
        truth[closer] = i
        depth = np.where(closer, d, depth)
    present = np.unique(truth[truth > 0])
    lookup = np.zeros(len(centres) + 1, dtype=np.int32)
    lookup[present] = np.arange(1, len(present) + 1)
    return lookup[truth], present - 1


def _nucleoli_factor(rng, coords, truth, centres, axes, rotations, kept, n_range):
    """Multiplicative factor of 1-3 nucleoli per nucleus, all darker or all brighter than the nucleus."""
    factor = np.ones(truth.shape)
    for label, k in enumerate(kept, start=1):
        c, a, rot = centres[k], axes[k], rotations[k]
        level = rng.uniform(0.3, 0.55) if rng.random() < 0.6 else rng.uniform(1.5, 2.0)
        for _ in range(int(rng.integers(n_range[0], n_range[1] + 1))):
            offset = rng.standard_normal(len(a))
            offset *= rng.uniform(0.0, 0.5) / np.linalg.norm(offset)
            centre = c + rot @ (offset * a)
            radius = max(1.0, a.mean() * rng.uniform(0.15, 0.25))
            dist2 = sum((coords[d] - centre[d]) ** 2 for d in range(len(a)))
            factor[(dist2 < radius**2) & (truth == label)] = level
    return factor


def _chromatin(rng, shape, sigmas, strength):
    """Log-normal chromatin-like texture: fine granules plus coarser clumps, mean about 1."""
    import scipy.ndimage as ndi

    field = np.zeros(shape)
    for scale, weight in ((1.0, 0.8), (3.0, 0.6)):
        noise = ndi.gaussian_filter(rng.standard_normal(shape), sigmas * scale)
        field += weight * noise / (noise.std() + 1e-12)
    return np.exp(strength * field - 0.5 * strength**2)


def _illumination(rng, coords, extent, gradient):
    """A linear ramp from ``gradient[0]`` to ``gradient[1]`` along a random direction in the image plane."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    u = np.array([np.cos(angle), np.sin(angle)])
    plane = coords[-2:]
    proj = u[0] * plane[0] + u[1] * plane[1]
    corners = [u[0] * y + u[1] * x for y in (0.0, extent[-2]) for x in (0.0, extent[-1])]
    t = (proj - min(corners)) / (max(corners) - min(corners))
    return gradient[0] + (gradient[1] - gradient[0]) * t


def textured_nuclei(
    shape=(128, 128),
    n_objects: int = 14,
    *,
    spacing=None,
    radius_range=(3.0, 15.0),
    touch_fraction: float = 0.5,
    gradient=(0.25, 1.0),
    photons: float = 300.0,
    background: float = 15.0,
    offset: int = 100,
    nucleoli=(1, 3),
    texture: float = 0.3,
    blur: float = 1.0,
    axial_blur: float = 3.0,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic widefield nuclei with chromatin texture, nucleoli, uneven illumination and shot noise.

    Unlike :func:`touching_blobs`, the hard parts of real nuclei images are built in:

    - **sizes over 5x**: the mean radius is log-uniform in ``radius_range``
      (3-15 pixels: diameters 5x, areas 25x apart); ellipsoids with semi-axes
      0.8-1.25 times it, randomly rotated;
    - **seamless touching**: about ``touch_fraction`` of the nuclei are placed
      in contact with an earlier one (centre distance 0.8-0.95 times the sum of
      mean radii); a pixel inside both goes to the nucleus whose surface is
      farther away, and the signal has no dip there (each nucleus is darker
      only towards the background, not towards a neighbour);
    - **chromatin texture**: log-normal multiplicative granules (1 pixel) and
      clumps (3 pixels) of strength ``texture``;
    - **nucleoli**: 1-3 per nucleus (``nucleoli``), radius 0.15-0.25 of the
      nucleus; in 60 % of the nuclei darker (0.3-0.55 times, as DNA stains
      show them), else brighter (1.5-2 times);
    - **uneven illumination**: signal and background are multiplied by a ramp
      from ``gradient[0]`` to ``gradient[1]`` across the field along a random
      direction, so that dim nuclei on the dark side fall below a global Otsu
      threshold;
    - **shot noise**: a nucleus of brightness 0.5-1 gives on average
      ``photons`` times that (times the illumination) photons per pixel, the
      background ``background`` times the illumination; the counts are
      Poisson and a camera ``offset`` is added;
    - **anisotropic 3D**: with ``spacing`` (e.g. ``(2.5, 1, 1)``) the objects
      are laid out in physical units, so a z step 2.5x the pixel gives fewer
      planes through each nucleus, and the PSF is ``axial_blur`` times wider
      along z than the ``blur`` in the plane.

    Parameters
    ----------
    shape : tuple of int, length 2 or 3
        Image shape in pixels; 3 axes give a 3D stack (z first).
    n_objects : int
        Number of nuclei attempted (fewer if they do not fit).
    spacing : tuple of float, optional
        Pixel size per axis, in units of the in-plane pixel (default 1 on
        every axis). ``radius_range``, ``blur`` and distances are in these units.
    radius_range : (float, float)
        Range of the mean radius (log-uniform).
    touch_fraction : float
        Probability that a new nucleus is placed in contact with an earlier one.
    gradient : (float, float)
        Illumination at the darkest and the brightest side of the field.
    photons : float
        Mean photon count per pixel of a nucleus of brightness 1 under full illumination.
    background : float
        Mean photon count per pixel of the background under full illumination.
    offset : int
        Camera offset added to the counts.
    nucleoli : (int, int)
        Smallest and largest number of nucleoli per nucleus.
    texture : float
        Strength of the chromatin texture (standard deviation of the log-intensity).
    blur : float
        Sigma of the Gaussian PSF in the plane.
    axial_blur : float
        Ratio of the PSF's sigma along z to ``blur`` (3D only).
    seed : int, optional
        Everything random derives from it: the same seed gives the same image.

    Returns
    -------
    image : ndarray of uint16, shape ``shape``
        Photon counts plus ``offset``.
    truth : ndarray of int32, shape ``shape``
        0 background, ``1..N`` the nuclei (consecutive, none touching the border).
    """
    import scipy.ndimage as ndi

    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"shape={shape} must have 2 or 3 axes.")
    step = np.ones(len(shape)) if spacing is None else np.asarray(spacing, dtype=float)
    if step.shape != (len(shape),) or np.any(step <= 0):
        raise ValueError(f"spacing={spacing} must give one positive number per axis of shape={shape}.")
    rng = np.random.default_rng(seed)
    extent = (np.asarray(shape) - 1) * step
    centres, axes, rotations = _place_nuclei(rng, extent, 2.0 * step, n_objects, radius_range, touch_fraction)
    coords = np.indices(shape, dtype=np.float64) * step.reshape((-1,) + (1,) * len(shape))
    truth, kept = _nuclei_truth(coords, centres, axes, rotations)
    brightness = np.concatenate([[0.0], rng.uniform(0.5, 1.0, size=len(kept))])
    inside = truth > 0
    edge_depth = ndi.distance_transform_edt(inside, sampling=step)
    rim = np.where(inside, 1.0 - 0.3 * np.exp(-edge_depth / 2.0), 0.0)
    signal = brightness[truth] * rim * _nucleoli_factor(rng, coords, truth, centres, axes, rotations, kept, nucleoli)
    signal *= _chromatin(rng, shape, 1.0 / step, texture)
    psf = blur / step
    if len(shape) == 3:
        psf[0] *= axial_blur
    signal = ndi.gaussian_filter(signal, psf) if blur > 0 else signal
    light = _illumination(rng, coords, extent, gradient)
    counts = rng.poisson(light * (photons * signal + background)) + int(offset)
    return np.clip(counts, 0, np.iinfo(np.uint16).max).astype(np.uint16), truth
