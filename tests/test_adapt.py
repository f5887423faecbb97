"""Settings chosen from the image: sigma='auto' and min_size='auto'."""

import numpy as np
import pytest
from conftest import f1

from napari_spectral_seg import segment, touching_blobs
from napari_spectral_seg.core import iter_segment, run_to_end
from napari_spectral_seg.core.adapt import estimate_noise, measure_scales
from napari_spectral_seg.core.result import EmptyMaskError


def discs(radius=10, shape=(160, 160), step=40):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape)
    for cy in range(step // 2, shape[0], step):
        for cx in range(step // 2, shape[1], step):
            image[(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2] = 1.0
    return image


def test_noise_estimate_reads_white_noise_over_objects():
    rng = np.random.default_rng(0)
    image = discs() + 0.1 * rng.standard_normal((160, 160))
    assert estimate_noise(image) == pytest.approx(0.1, rel=0.1)


@pytest.mark.parametrize("radius", [5, 10, 15])
def test_typical_radius_is_the_objects_radius(radius):
    scales = measure_scales(discs(radius, shape=(16 * radius, 16 * radius), step=4 * radius), threshold=0.5)
    assert scales.radius == pytest.approx(radius, rel=0.15)
    assert scales.min_size == pytest.approx(0.1 * np.pi * radius**2, rel=0.35)


def test_typical_radius_follows_the_spacing_of_a_stack():
    zz, yy, xx = np.mgrid[:20, :60, :60]
    ball = ((zz - 10) * 2.0) ** 2 + (yy - 30) ** 2 + (xx - 30) ** 2 < 10**2  # z step twice the xy pixel
    scales = measure_scales(ball.astype(float), threshold=0.5, spacing=(2.0, 1.0, 1.0))
    assert scales.radius == pytest.approx(10, rel=0.15)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_a_thin_stack_is_segmented_like_its_slice(depth):
    # The stack's ends are not the objects' edges: they must not cap the
    # typical radius (it did at depth/2, so min_size fell to 1 and the
    # background estimate cut every disc into specks).
    from napari_spectral_seg import four_circles, segment

    image = four_circles()[0]
    flat = segment(image)
    stack = segment(np.stack([image] * depth))
    assert np.array_equal(stack, np.stack([flat] * depth))
    scales = measure_scales(np.stack([image] * depth), threshold="otsu")
    assert scales.radius == pytest.approx(measure_scales(image, threshold="otsu").radius)


def test_chosen_settings_are_recorded_and_given_ones_win():
    image, _ = touching_blobs((96, 96), 8, seed=1)
    auto = run_to_end(iter_segment(image, threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto"))
    chosen = auto.parameters
    assert chosen["sigma"] == "auto" and chosen["sigma_used"] >= 0.0
    assert chosen["min_size"] == "auto" and chosen["min_size_used"] > 1 and chosen["typical_radius"] > 3
    given = run_to_end(iter_segment(image, threshold="otsu", n_clusters="auto", sigma=2.0, min_size="auto"))
    assert given.parameters["sigma_used"] == 2.0
    counted = run_to_end(iter_segment(image, threshold="otsu", n_clusters=3, sigma="auto", min_size=5))
    assert counted.parameters["sigma_used"] is None  # a fixed count is not smoothed
    assert counted.parameters["min_size_used"] == 5


def test_noisy_textured_nuclei_are_not_cut_into_a_mosaic_with_auto_settings():
    image, truth = touching_blobs((128, 128), 12, noise=0.15, texture=0.3, seed=7)
    raw = run_to_end(
        iter_segment(image, threshold="otsu", n_clusters="auto", sigma=None, min_size=0, random_state=0)
    ).labels
    chosen = run_to_end(
        iter_segment(image, threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto", random_state=0)
    ).labels
    assert f1(truth, chosen) > 0.7
    assert f1(truth, chosen) > f1(truth, raw) + 0.3


def test_auto_values_are_refused_where_they_mean_nothing():
    image, _ = touching_blobs((64, 64), 4, seed=0)
    with pytest.raises(ValueError, match="sigma='blurry' is not understood"):
        run_to_end(iter_segment(image, threshold="otsu", sigma="blurry"))
    with pytest.raises(ValueError, match="min_size='tiny' must be a whole number"):
        run_to_end(iter_segment(image, threshold="otsu", min_size="tiny"))


def test_auto_mode_on_an_empty_field_says_no_objects_instead_of_a_noise_mosaic():
    noise = np.random.default_rng(0).normal(100.0, 5.0, (128, 128))
    with pytest.raises(EmptyMaskError, match="no objects: nothing is brighter than the image's noise"):
        segment(noise, n_clusters="auto")


def test_a_few_objects_in_a_large_field_are_found_where_otsu_splits_the_background():
    image, truth = touching_blobs((512, 512), 3, seed=2)
    result = run_to_end(iter_segment(image, n_clusters="auto"))
    assert result.parameters["threshold_rule"] == "noise"  # Otsu's split held noise, not objects
    assert result.parameters["foreground_contrast"] < 3
    assert result.labels.max() == 3
    for t in range(1, truth.max() + 1):
        inside = result.labels[truth == t]
        assert np.bincount(inside).argmax() > 0  # each object is found, not lost in a mosaic


def test_a_clear_foreground_keeps_otsus_threshold():
    image, _ = touching_blobs((128, 128), 14, seed=3)
    result = run_to_end(iter_segment(image, n_clusters="auto"))
    assert "threshold_rule" not in result.parameters
    assert result.parameters["foreground_contrast"] > 10
