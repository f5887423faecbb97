"""Dim objects below Otsu's threshold (core/dim.py): found in auto mode, nothing added where nothing dim lies."""

import numpy as np
import pytest
import scipy.ndimage as ndi

from napari_spectral_seg import segment
from napari_spectral_seg.core import SegmentationParams, iter_segment, run_to_end
from napari_spectral_seg.data import touching_blobs


def _disc(shape, centre, radius):
    yy, xx = np.indices(shape)
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _dim_beside_bright(seed=0, dim_level=170.0):
    """Two bright nuclei and a dim one touching the first, the dim one wholly below Otsu's threshold."""
    shape = (128, 128)
    truth = np.zeros(shape, np.int32)
    truth[_disc(shape, (64, 44), 13)] = 1
    truth[_disc(shape, (30, 100), 12)] = 2
    truth[_disc(shape, (64, 73), 10) & (truth == 0)] = 3
    image = np.full(shape, 100.0)
    image[truth == 1] = 420.0
    image[truth == 2] = 400.0
    image[truth == 3] = dim_level
    image = ndi.gaussian_filter(image, 1.5)
    image += np.random.default_rng(seed).normal(0, 3.0, shape)
    return image, truth


def _best_iou(labels, truth_object):
    values = np.bincount(labels[truth_object])
    values[0] = 0
    if not values.any():
        return 0.0
    best = labels == values.argmax()
    return float((best & truth_object).sum() / (best | truth_object).sum())


def test_a_dim_nucleus_beside_a_bright_one_is_found_and_recorded():
    image, truth = _dim_beside_bright()
    result = run_to_end(iter_segment(image, n_clusters="auto"))
    parameters = result.parameters
    assert image[truth == 3].max() < parameters["threshold_used"]  # wholly below Otsu's threshold
    assert parameters["low_threshold"] == "auto"
    assert parameters["dim_objects"] == 1
    assert 100.0 < parameters["low_threshold_used"] < parameters["threshold_used"]
    assert result.labels.max() == 3
    for label in (1, 2, 3):
        assert _best_iou(result.labels, truth == label) > 0.8
    # Without the search (None), the dim nucleus is missed and the rest is unchanged.
    without = run_to_end(iter_segment(image, n_clusters="auto", low_threshold=None))
    assert without.labels.max() == 2
    assert without.parameters["low_threshold_used"] is None
    assert _best_iou(without.labels, truth == 3) == 0.0
    # The bright nuclei are the same objects (their outlines may give up a pixel or two to the dim one).
    for label in (1, 2):
        assert abs(_best_iou(result.labels, truth == label) - _best_iou(without.labels, truth == label)) < 0.05


def test_a_given_low_threshold_is_used_and_a_high_one_finds_nothing():
    image, truth = _dim_beside_bright()
    found = run_to_end(iter_segment(image, n_clusters="auto", low_threshold=130.0))
    assert found.parameters["low_threshold_used"] == 130.0
    assert found.parameters["dim_objects"] == 1
    above_the_dim = run_to_end(iter_segment(image, n_clusters="auto", low_threshold=200.0))
    assert above_the_dim.parameters["dim_objects"] == 0
    assert above_the_dim.labels.max() == 2


def test_nothing_is_added_where_nothing_dim_lies():
    image, _ = touching_blobs((128, 128), 14, seed=3)
    with_search = run_to_end(iter_segment(image, n_clusters="auto"))
    without = run_to_end(iter_segment(image, n_clusters="auto", low_threshold=None))
    assert with_search.parameters["dim_objects"] == 0
    assert np.array_equal(with_search.labels, without.labels)


def test_a_bright_object_on_a_background_gradient_gains_no_dim_objects():
    shape = (128, 128)
    yy, xx = np.indices(shape)
    image = 100.0 + 0.15 * xx  # the background rises by 19 across the field, under a fifth of the contrast
    image[_disc(shape, (64, 64), 14)] += 300.0
    image[_disc(shape, (24, 24), 10)] += 280.0
    image = ndi.gaussian_filter(image, 1.5) + np.random.default_rng(1).normal(0, 3.0, shape)
    result = run_to_end(iter_segment(image, n_clusters="auto"))
    assert result.parameters["dim_objects"] == 0
    assert result.labels.max() == 2


def test_the_search_applies_with_an_automatic_threshold_only():
    image, _ = _dim_beside_bright()
    given = run_to_end(iter_segment(image, n_clusters="auto", threshold=250.0))
    assert given.parameters["low_threshold_used"] is None  # "auto" leaves a threshold number alone
    inside_mask = run_to_end(iter_segment(image, np.ones(image.shape, bool), n_clusters="auto", low_threshold=130.0))
    assert inside_mask.parameters["low_threshold_used"] is None
    fixed = run_to_end(iter_segment(image, n_clusters=3))
    assert fixed.parameters["low_threshold"] is None  # does not apply: recorded as None


@pytest.mark.parametrize("value", ["low", float("nan"), True])
def test_a_bad_low_threshold_names_the_parameter(value):
    with pytest.raises(ValueError, match="low_threshold="):
        SegmentationParams(low_threshold=value)


def test_segment_takes_low_threshold():
    image, _ = _dim_beside_bright()
    assert segment(image, n_clusters="auto").max() == 3
    assert segment(image, n_clusters="auto", low_threshold=None).max() == 2


@pytest.mark.parametrize(("text", "value"), [("auto", "auto"), ("none", None), ("120.5", 120.5)])
def test_the_low_threshold_flag_takes_auto_none_and_a_number(text, value):
    from napari_spectral_seg.cli_flags import OneLineParser, add_segmentation_arguments, given_flags

    parser = OneLineParser(prog="napari-spectral-seg segment")
    add_segmentation_arguments(parser, with_mask=False)
    assert given_flags(parser.parse_args(["--low-threshold", text]))["low_threshold"] == value


@pytest.mark.parametrize("bright_speck", [False, True])
def test_a_part_with_nothing_to_cut_above_the_threshold_still_gets_its_dim_objects(bright_speck):
    # A block of a blockwise run (the search decided on the whole image): no pixel above the
    # threshold, or only a speck smaller than min_size, is no empty mask; a dim nucleus lies there.
    from napari_spectral_seg.core.dim import DimDecided
    from napari_spectral_seg.core.result import EmptyMaskError

    image = np.full((96, 96), 100.0)
    image[_disc(image.shape, (50, 50), 10)] = 150.0
    if bright_speck:
        image[10:13, 10:13] = 400.0
    image = ndi.gaussian_filter(image, 1.0)
    params = SegmentationParams(threshold=300.0, n_clusters="auto", min_size=20, sigma=None, low_threshold=None)
    decided = DimDecided(120.0, np.full(image.shape, 100.0), 3.0, 20)
    result = run_to_end(
        iter_segment(image, None, params, object_size=300.0, edge_background=100.0, dim_decided=decided)
    )
    assert result.labels.max() == 1 and result.labels[50, 50] == 1
    assert result.labels[11, 11] == 0
    assert result.parameters["dim_objects"] == 1 and result.parameters["dim_labels"] == [1]
    assert _best_iou(result.labels, _disc(image.shape, (50, 50), 10)) > 0.8
    # A whole image (no decisions handed in) with nothing to cut is refused as before.
    with pytest.raises(EmptyMaskError):
        run_to_end(iter_segment(image, None, params.replace(low_threshold=120.0)))
