"""Object edges at a fraction of each object's own brightness (core/edges.py), against known truth."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from napari_spectral_seg import segment
from napari_spectral_seg.core.edges import object_levels, refine_object_edges
from napari_spectral_seg.core.params import SegmentationParams
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
            SegmentationParams(n_clusters="auto", threshold="otsu", edge_level=bad)
    for off in (0, None):
        assert SegmentationParams(n_clusters="auto", threshold="otsu", edge_level=off).used_edge_level() is None
    result = run_to_end(iter_segment(image, threshold="otsu", n_clusters="auto", edge_level=0.3, random_state=0))
    assert result.parameters["edge_level"] == 0.3
    result = run_to_end(iter_segment(image, threshold="otsu", n_clusters=2, random_state=0))
    assert result.parameters["edge_level"] is None
    mask = image > 0.3
    result = run_to_end(iter_segment(image, mask, n_clusters="auto", random_state=0))
    assert result.parameters["edge_level"] is None
    # No threshold: the mask's edges are the user's, kept exactly.
    assert np.array_equal(result.labels > 0, mask)
    # A threshold below the image minimum leaves no background to measure:
    # nothing is moved, and the parameters say so.
    result = run_to_end(iter_segment(image, threshold=float(image.min()) - 1, n_clusters="auto", random_state=0))
    assert result.parameters["edge_level"] is None


def test_dim_interior_is_kept_and_holes_filled():
    # A dim nucleus (0.5) with a bright core (1.5) on 12% of its area: the
    # core sets the object's bright level far above the nucleoplasm, yet
    # only pixels near the edge may be dropped, and holes are filled.
    shape = (60, 60)
    nucleus = disk(shape, (30, 30), 20)
    intensity = 0.1 + 0.5 * nucleus + 1.0 * disk(shape, (30, 30), 7)
    intensity[28:31, 20:23] = 0.1  # a dark spot inside
    labels = nucleus.astype(np.int32)
    out = refine_object_edges(intensity, labels, background=0.1, level=0.4, reach=3)
    # The edge moves in by at most the reach (3 px: the nucleoplasm's rim is
    # below 0.4 of the core's brightness), never further.
    assert np.all(out[disk(shape, (30, 30), 16)] == 1)  # interior and the dark spot kept
    assert np.count_nonzero(out == 1) >= disk(shape, (30, 30), 16).sum()


def test_growth_does_not_depend_on_label_numbers():
    # A pixel column between a bright and a dim object, above the dim one's
    # level only: it joins the dim object, whichever label each carries.
    intensity = np.array([[1.0, 1.0, 0.3, 0.3, 0.3, 0.1]])
    results = []
    for bright, dim in ((1, 2), (2, 1)):
        labels = np.array([[bright, bright, 0, dim, dim, 0]], dtype=np.int32)
        out = refine_object_edges(intensity, labels, background=0.1, level=0.4, reach=1)
        results.append(np.where(out == bright, "b", np.where(out == dim, "d", "-")))
    np.testing.assert_array_equal(results[0], results[1])
    assert "".join(results[0][0]) == "bbddd-"


def test_touching_label_regions_in_auto_mode_stay_apart():
    from napari_spectral_seg.data import touching_blobs

    image, truth = touching_blobs((128, 128), 14, seed=1)
    regions = np.zeros_like(truth)
    regions[:, :64], regions[:, 64:] = 1, 2
    regions[truth == 0] = 0
    for threshold in (None, "otsu"):
        labels = segment(image, regions, threshold=threshold, n_clusters="auto", random_state=0)
        assert labels.max() >= 10
        for lab in range(1, labels.max() + 1):
            assert len(np.unique(regions[labels == lab])) == 1  # never across a region border
        assert not np.any(labels[regions == 0])


def test_invalid_arguments_name_the_parameter():
    labels = np.zeros((5, 5), dtype=np.int32)
    with pytest.raises(ValueError, match="intensity has shape"):
        refine_object_edges(np.zeros((4, 4)), labels, background=0.0)
    with pytest.raises(ValueError, match="level="):
        refine_object_edges(np.zeros((5, 5)), labels, background=0.0, level=1.5)
    with pytest.raises(ValueError, match="reach="):
        refine_object_edges(np.zeros((5, 5)), labels, background=0.0, reach=-1)
