"""Polarity and uneven background: dark objects and dim objects under an illumination gradient are found."""

import numpy as np
import pytest
from conftest import f1

from napari_spectral_seg import segment
from napari_spectral_seg.core.background import choose_polarity, estimate_background
from napari_spectral_seg.core.pipeline import iter_segment
from napari_spectral_seg.core.progress import run_to_end
from napari_spectral_seg.data import touching_blobs


def test_dark_objects_on_a_bright_background_are_found_like_bright_ones():
    image, truth = touching_blobs((128, 128), 12, seed=1)
    bright = run_to_end(iter_segment(image, n_clusters="auto"))
    dark = run_to_end(iter_segment(image.max() - image, n_clusters="auto"))
    assert bright.parameters["polarity_used"] == "bright" and dark.parameters["polarity_used"] == "dark"
    assert f1(truth, dark.labels) > 0.9 and f1(truth, dark.labels) == pytest.approx(f1(truth, bright.labels), abs=0.1)
    # Overridden: the bright background is taken as the object.
    forced = segment(image.max() - image, n_clusters="auto", polarity="bright")
    assert f1(truth, forced) < 0.2


def test_polarity_is_dark_only_where_the_histogram_and_border_agree():
    rng = np.random.default_rng(0)
    dense = rng.random((64, 64)) * 0.1
    dense[8:56, 8:56] = 1.0  # one large bright object, most of the image but not the border
    assert choose_polarity(dense) == "bright"
    assert choose_polarity(1.0 - dense) == "bright"  # dark frame, bright centre: still bright objects
    spots = np.ones((64, 64))
    spots[20:28, 20:28] = spots[40:46, 30:38] = 0.1
    assert choose_polarity(spots) == "dark"


def test_dim_objects_under_an_illumination_gradient_are_found():
    image, truth = touching_blobs((192, 192), 20, seed=100)
    ramp = np.mgrid[:192, :192][1] / 191.0
    lit = image * (0.4 + 0.6 * ramp) + 0.6 * ramp
    result = run_to_end(iter_segment(lit, n_clusters="auto"))
    flat = segment(lit, n_clusters="auto", background="flat")
    assert result.parameters["background_used"] == "subtracted" and result.parameters["background_range"] > 0.3
    assert f1(truth, result.labels) > 0.75 and f1(truth, flat) < 0.3


def test_a_flat_background_is_left_alone():
    image, _ = touching_blobs((128, 128), 12, seed=2)
    result = run_to_end(iter_segment(image, n_clusters="auto"))
    assert result.parameters["background_used"] == "flat"
    np.testing.assert_array_equal(result.labels, segment(image, n_clusters="auto", background="flat"))
    # A mask decides the foreground: the background is never estimated.
    masked = run_to_end(iter_segment(image, image > 0.5, n_clusters="auto"))
    assert masked.parameters["background_used"] == "flat"


def test_the_background_estimate_follows_a_ramp():
    ramp = np.tile(np.linspace(0.0, 1.0, 200), (120, 1))
    spots = np.zeros_like(ramp)
    spots[::20, ::20] = 5.0
    surface = estimate_background(ramp + spots, radius=4.0, unit=np.ones(2))
    inner = (slice(20, -20), slice(30, -30))
    assert np.abs(surface - ramp)[inner].max() < 0.1


@pytest.mark.parametrize("name, value", [("polarity", "up"), ("background", "rolling")])
def test_unknown_words_are_refused_by_name(name, value):
    with pytest.raises(ValueError, match=f"{name}='{value}' is unknown"):
        segment(np.zeros((8, 8)), **{name: value})


def test_everything_chosen_from_the_image_is_declared_as_recorded():
    from napari_spectral_seg.core.prepare import CHOSEN_KEYS

    result = run_to_end(iter_segment(touching_blobs((64, 64), 4, seed=0)[0], n_clusters="auto"))
    assert set(CHOSEN_KEYS) <= set(result.parameters)


@pytest.mark.parametrize("shape, block", [((37, 50), (8, 7)), ((9, 20, 23), (4, 6, 5)), ((30, 1), (7, 1))])
def test_the_block_surface_is_the_multilinear_interpolation_of_block_percentiles(shape, block):
    # Reference: padded blocks, one percentile each, smoothed, then scipy's order-1 interpolation.
    import scipy.ndimage as ndi

    from napari_spectral_seg.core.background import _block_surface

    image = np.random.default_rng(3).random(shape)
    block = np.asarray(block)
    counts = -(-np.asarray(shape) // block)
    padded = np.pad(image, [(0, int(c * b - s)) for c, b, s in zip(counts, block, shape)], mode="edge")
    coarse = np.empty(tuple(counts))
    for index in np.ndindex(*counts):
        cell = tuple(slice(i * b, (i + 1) * b) for i, b in zip(index, block))
        coarse[index] = np.percentile(padded[cell], 10.0)
    coarse = ndi.gaussian_filter(coarse, 1.0, mode="nearest")
    grids = [np.clip((np.arange(n) + 0.5) / b - 0.5, 0, c - 1) for n, b, c in zip(shape, block, counts)]
    expected = ndi.map_coordinates(coarse, np.meshgrid(*grids, indexing="ij"), order=1, mode="nearest")
    np.testing.assert_allclose(_block_surface(image, block, 10.0), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_block_surface(image, block, 10.0, residual=True), image - expected, atol=1e-12)
