"""The synthetic generators of napari_spectral_seg.data: textured_nuclei."""

import numpy as np
import pytest
import scipy.ndimage as ndi

from napari_spectral_seg.core.mask import otsu_threshold
from napari_spectral_seg.data import textured_nuclei

SHAPE_2D = (128, 128)
SHAPE_3D = (32, 80, 80)
SPACING_3D = (2.5, 1.0, 1.0)
SEEDS = range(5)


def sample_2d(seed):
    return textured_nuclei(SHAPE_2D, 14, seed=seed)


def sample_3d(seed):
    return textured_nuclei(SHAPE_3D, 12, spacing=SPACING_3D, seed=seed)


@pytest.mark.parametrize("make,shape", [(sample_2d, SHAPE_2D), (sample_3d, SHAPE_3D)], ids=["2d", "3d"])
def test_shape_dtype_and_counts_above_the_camera_offset(make, shape):
    image, truth = make(0)
    assert image.shape == shape and truth.shape == shape
    assert image.dtype == np.uint16 and truth.dtype == np.int32
    assert image.min() >= 100  # the camera offset
    assert image[truth > 0].mean() > image[truth == 0].mean()


@pytest.mark.parametrize("make", [sample_2d, sample_3d], ids=["2d", "3d"])
def test_truth_labels_are_consecutive_connected_and_inside_the_image(make):
    for seed in SEEDS:
        _, truth = make(seed)
        labels = np.unique(truth)
        n = int(truth.max())
        assert n >= 8
        assert np.array_equal(labels, np.arange(n + 1))
        border = np.zeros(truth.shape, dtype=bool)
        for axis in range(truth.ndim):
            index = [slice(None)] * truth.ndim
            for end in (0, -1):
                index[axis] = end
                border[tuple(index)] = True
        assert not truth[border].any(), f"seed {seed}: an object touches the border"
        for label in range(1, n + 1):
            assert ndi.label(truth == label)[1] == 1, f"seed {seed}: object {label} is in pieces"


def test_the_same_seed_gives_the_same_images_and_another_seed_others():
    image, truth = sample_3d(7)
    again, truth_again = sample_3d(7)
    assert np.array_equal(image, again) and np.array_equal(truth, truth_again)
    other, truth_other = sample_3d(8)
    assert not np.array_equal(truth, truth_other) and not np.array_equal(image, other)


def _corner_background(image, truth, size=24):
    """Mean background count (camera offset removed) in each corner square of the image plane."""
    means = []
    for ys in (slice(0, size), slice(-size, None)):
        for xs in (slice(0, size), slice(-size, None)):
            region = (Ellipsis, ys, xs)
            background = truth[region] == 0
            means.append((image[region][background].astype(float) - 100).mean())
    return np.array(means)


def test_the_illumination_gradient_is_there_and_leaves_dim_nuclei_below_a_global_otsu_threshold():
    below = 0
    for seed in SEEDS:
        image, truth = sample_2d(seed)
        corners = _corner_background(image, truth)
        assert corners.max() > 2.0 * corners.min(), f"seed {seed}: corners {corners}"
        above = image > otsu_threshold(image.astype(float))
        fraction_above = ndi.mean(above, truth, np.arange(1, truth.max() + 1))
        below += int(np.count_nonzero(fraction_above < 0.5))
    assert below >= len(SEEDS)  # on average at least one nucleus per image mostly under Otsu's threshold


@pytest.mark.parametrize("make,spacing", [(sample_2d, (1.0, 1.0)), (sample_3d, SPACING_3D)], ids=["2d", "3d"])
def test_sizes_span_a_wide_range(make, spacing):
    ratios = []
    for seed in SEEDS:
        _, truth = make(seed)
        volume = np.bincount(truth.ravel())[1:] * np.prod(spacing)
        diameter = volume ** (1.0 / truth.ndim)
        ratios.append(diameter.max() / diameter.min())
    assert min(ratios) > 2.5 and np.median(ratios) > 3.5, ratios


def test_3d_spacing_gives_fewer_planes_through_each_nucleus():
    _, truth = sample_3d(0)
    for label, box in enumerate(ndi.find_objects(truth), start=1):
        if (truth[box] == label).sum() < 200:
            continue
        depth, height, width = (s.stop - s.start for s in box)
        assert depth < 0.75 * max(height, width), f"object {label}: {depth} planes, {height} x {width} pixels"


def test_touching_nuclei_have_no_dark_seam():
    """Where two nuclei meet, far from the background, the signal is not below the dimmer one's.

    Without texture, nucleoli and (nearly) without noise, so that only the shape of the signal counts.
    """
    ratios = []
    for seed in SEEDS:
        image, truth = textured_nuclei(SHAPE_2D, 14, texture=0.0, nucleoli=(0, 0), photons=1e4, seed=seed)
        signal = image.astype(float) - 100
        deep = ndi.distance_transform_edt(truth > 0) > 3
        high = ndi.grey_dilation(truth, size=3)
        low = -ndi.grey_dilation(-truth, size=3)
        seam = deep & (high != low)  # next to another nucleus
        for a, b in {(int(x), int(y)) for x, y in zip(low[seam], high[seam])}:
            pair_seam = seam & (low == a) & (high == b)
            if pair_seam.sum() < 5:
                continue
            dimmer = min(signal[deep & ~seam & (truth == k)].mean() for k in (a, b))
            ratios.append(signal[pair_seam].mean() / dimmer)
    assert len(ratios) >= 5
    assert min(ratios) > 0.93, sorted(np.round(ratios, 3))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"shape": (64,)}, "2 or 3 axes"),
        ({"shape": (8, 32, 32), "spacing": (1, 1)}, "spacing"),
        ({"spacing": (0, 1)}, "spacing"),
    ],
)
def test_invalid_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        textured_nuclei(**kwargs)
