"""Object edges at a fraction of each object's own brightness (core/edges.py), against known truth."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from napari_spectral_seg import segment
from napari_spectral_seg.core.edges import check_edge_level, object_levels, refine_object_edges
from napari_spectral_seg.core.pipeline import iter_segment, run_to_end


def disk(shape, centre, radius):
    yy, xx = np.indices(shape)
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2


def iou(a, b):
    return np.count_nonzero(a & b) / np.count_nonzero(a | b)


def bright_and_dim_discs(seed=0):
    """A bright (1.0) and a dim (0.4) disc of radius 7, blurred like a widefield image."""
    shape = (48, 80)
    bright, dim = disk(shape, (24, 20), 7), disk(shape, (24, 58), 7)
    signal = 1.0 * bright + 0.4 * dim
    rng = np.random.default_rng(seed)
    image = ndi.gaussian_filter(signal, 1.5) + 0.1 + 0.01 * rng.standard_normal(shape)
    return image, bright, dim


def test_dim_object_gets_its_true_size_back():
    image, bright, dim = bright_and_dim_discs()
    kw = dict(threshold="otsu", n_clusters="auto", min_size=10, random_state=0)
    plain = segment(image, edge_level=0, **kw)
    refined = segment(image, edge_level=0.4, **kw)
    # The global threshold sits high on the dim disc's flank: it comes out
    # far too small; its own level draws it near its true outline.
    dim_plain = plain == plain[24, 58]
    dim_refined = refined == refined[24, 58]
    # Measured: dim 0.66 -> 1.0, bright 0.82 -> 0.99.
    assert iou(dim_plain, dim) < 0.7
    assert iou(dim_refined, dim) > 0.95
    assert iou(plain == plain[24, 20], bright) < 0.85
    assert iou(refined == refined[24, 20], bright) > 0.95
    assert sorted(np.unique(refined)) == [0, 1, 2]


def test_levels_are_per_object_and_background_relative():
    labels = np.zeros((4, 10), dtype=np.int32)
    labels[:, :5] = 1
    labels[:, 5:] = 3  # label 2 has no pixel
    intensity = np.where(labels == 1, 2.0, 0.6)
    levels = object_levels(intensity, labels, background=0.1, level=0.5)
    assert levels[1] == pytest.approx(0.1 + 0.5 * 1.9)
    assert levels[3] == pytest.approx(0.1 + 0.5 * 0.5)
    assert np.isinf(levels[0]) and np.isinf(levels[2])


def test_growth_is_geodesic_limited_and_respects_the_allowed_mask():
    shape = (30, 30)
    intensity = np.full(shape, 0.1)
    intensity[10:20, 5:15] = 1.0  # the object, only its core labelled
    intensity[10:20, 17:19] = 1.0  # a bright stripe beyond a dark 2-pixel gap
    labels = np.zeros(shape, dtype=np.int32)
    labels[12:18, 7:13] = 5
    before = labels.copy()
    out = refine_object_edges(intensity, labels, background=0.1, level=0.4, reach=4)
    np.testing.assert_array_equal(labels, before)  # input untouched
    # Grown up to the object's true edge (the corners are 4 face steps
    # away), the label kept, and the stripe across the dark gap not taken.
    expected = np.zeros(shape, dtype=bool)
    expected[10:20, 5:15] = True
    np.testing.assert_array_equal(out == 5, expected)
    # Grown only inside an explicit mask.
    allowed = np.zeros(shape, dtype=bool)
    allowed[:, :11] = True
    out = refine_object_edges(intensity, labels, background=0.1, level=0.4, reach=3, allowed=allowed)
    assert out[15, 5] == 5 and out[15, 12] == 5 and out[15, 13] == 0  # left grown, right kept as labelled


def test_reach_follows_spacing():
    shape = (20, 20)
    intensity = np.full(shape, 0.1)
    intensity[2:18, 2:18] = 1.0
    labels = np.zeros(shape, dtype=np.int32)
    labels[8:12, 8:12] = 1
    out = refine_object_edges(intensity, labels, background=0.1, level=0.4, reach=3, spacing=(3.0, 1.0))
    rows, cols = np.nonzero(out == 1)
    # One step along the coarse axis (3 units), three along the fine one.
    assert (rows.min(), rows.max()) == (7, 12)
    assert (cols.min(), cols.max()) == (5, 14)


def test_edge_level_is_validated_recorded_and_only_used_in_auto_mode_with_a_threshold():
    image, _, _ = bright_and_dim_discs()
    for bad in (-0.1, 1.0, float("nan"), "half", True):
        with pytest.raises(ValueError, match="edge_level"):
            check_edge_level(bad)
    assert check_edge_level(0) is None and check_edge_level(None) is None
    result = run_to_end(iter_segment(image, threshold="otsu", n_clusters="auto", edge_level=0.3, random_state=0))
    assert result.parameters["edge_level"] == 0.3
    result = run_to_end(iter_segment(image, threshold="otsu", n_clusters=2, random_state=0))
    assert result.parameters["edge_level"] is None
    mask = image > 0.3
    result = run_to_end(iter_segment(image, mask, n_clusters="auto", random_state=0))
    assert result.parameters["edge_level"] is None
    # No threshold: the mask's edges are the user's, kept exactly.
    assert np.array_equal(result.labels > 0, ndi.binary_fill_holes(mask) & mask)
