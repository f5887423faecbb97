"""The faster routes of auto mode give the numbers of the library calls they stand in for, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from napari_spectral_seg.core import edges
from napari_spectral_seg.core.auto.geometry import distances_at, fill_image_holes
from napari_spectral_seg.core.auto.landscape import _percentile
from napari_spectral_seg.core.dim import _label_maxima
from napari_spectral_seg.core.eigen import _with_diagonal

SHAPES = [(37, 52), (7, 19, 23)]
SPACINGS = [None, 2.0, (2.0, 1.0), (0.3, 1.7), (2.0, 1.0, 1.0), (0.123, 0.5, 1.0)]


def _blobs(shape, seed, level=0.5):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), 1.2) > level


def _spacings(ndim):
    return [s for s in SPACINGS if s is None or np.ndim(s) == 0 or len(s) == ndim]


@pytest.mark.parametrize("shape", SHAPES + [(1, 6), (1, 1, 5)])
@pytest.mark.parametrize("seed", range(4))
def test_fill_image_holes_is_binary_fill_holes(shape, seed):
    for mask in (_blobs(shape, seed, 0.45), _blobs(shape, seed, 0.55), np.ones(shape, bool), np.zeros(shape, bool)):
        np.testing.assert_array_equal(fill_image_holes(mask), ndi.binary_fill_holes(mask))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", range(3))
def test_distances_at_is_the_distance_transform(shape, seed):
    mask = _blobs(shape, seed)
    pixels = np.flatnonzero(mask.ravel() | (np.arange(mask.size) % 7 == 0))
    for sampling in _spacings(len(shape)):
        expected = ndi.distance_transform_edt(mask, sampling=sampling).ravel()[pixels]
        np.testing.assert_array_equal(distances_at(mask, pixels, sampling=sampling), expected)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reach", [0.0, 1.0, 1.5, 3.0, 4.2, 30.0])
def test_rim_is_the_distance_transform_rim(shape, reach):
    labels = ndi.label(_blobs(shape, 3))[0]
    labels[labels % 3 == 0] *= 2  # touching objects of other numbers
    inside = labels > 0
    padded = np.pad(labels, 1, constant_values=-1)
    edge = np.zeros_like(inside)
    for axis in range(labels.ndim):
        for shift in (-1, 1):
            edge |= inside & (np.roll(padded, shift, axis=axis)[(slice(1, -1),) * labels.ndim] != labels)
    for spacing in _spacings(len(shape)):
        unit = 1.0 if spacing is None else float(np.min(spacing))
        expected = inside & (ndi.distance_transform_edt(~edge, sampling=spacing) < reach * unit)
        np.testing.assert_array_equal(edges._near_own_edge(labels, reach, spacing), expected)


def test_percentile_is_numpys():
    rng = np.random.default_rng(5)
    for n in list(range(1, 40)) + [100, 257, 1000]:
        for values in (rng.normal(size=n), np.round(rng.normal(size=n), 1), rng.integers(0, 3, n) * 1.0):
            values[rng.random(n) < 0.2] = -0.0
            for fraction in (0.05, 0.5, 0.95, 1.0):
                expected = float(np.percentile(values, 100 * fraction))
                got = _percentile(values, fraction)
                assert got == expected and np.signbit(got) == np.signbit(expected)
    assert np.isnan(_percentile(np.array([1.0, np.nan, 2.0]), 0.95))


def test_label_maxima_is_ndimage_maximum():
    rng = np.random.default_rng(6)
    values = rng.normal(size=(40, 30)) - 5.0  # all negative: an empty label must still give 0
    labels = rng.integers(0, 9, size=values.shape)
    labels[labels == 4] = 0
    for n in (6, 9, 12):
        expected = np.asarray(ndi.maximum(values, labels, np.arange(n)), float)
        np.testing.assert_array_equal(_label_maxima(values, labels, n), expected)


def test_with_diagonal_is_np_insert():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n, m = int(rng.integers(1, 20)), int(rng.integers(0, 50))
        entries, cols = rng.normal(size=m), rng.integers(0, n, m).astype(np.int64)
        diagonal = np.sort(rng.integers(0, m + 1, n))
        data, indices = _with_diagonal(entries, cols, diagonal)
        np.testing.assert_array_equal(data, np.insert(entries, diagonal, 1.0))
        np.testing.assert_array_equal(indices, np.insert(cols, diagonal, np.arange(n)))


def test_refine_object_edges_growth_between_and_along_objects():
    """A gap pixel joins the object whose level it exceeds, the brighter one where it exceeds both;
    growth runs along the image border one pixel per step, as far as the reach."""
    intensity = np.zeros((9, 12))
    labels = np.zeros((9, 12), dtype=np.int32)
    labels[2:7, 0:4], intensity[2:7, 0:4] = 1, 1.0  # on the left border; edge level 0.5
    labels[2:7, 5:9], intensity[2:7, 5:9] = 2, 4.0  # edge level 2.0
    intensity[2:7, 4] = 0.9  # the gap between them
    intensity[0:2, 0:4] = 0.8  # two rows above object 1, along the border
    out = edges.refine_object_edges(intensity, labels, background=0.0, level=0.5, reach=1.0)
    assert np.all(out[2:7, 4] == 1)  # above 0.5 only
    assert np.all(out[1, 0:4] == 1) and np.all(out[0, 0:4] == 0)  # one step of growth
    dimmer = np.where(labels == 2, 1.2, intensity)  # object 2's level now 0.6: the gap exceeds both
    out = edges.refine_object_edges(dimmer, labels, background=0.0, level=0.5, reach=3.0)
    assert np.all(out[2:7, 4] == 2)
    assert np.all(out[0:2, 0:4] == 1)
