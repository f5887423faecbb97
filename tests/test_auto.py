"""Auto number of segments, sigma pre-smoothing and frame-by-frame segmentation, against known truth."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from napari_spectral_seg import SegmentationCancelled, segment, segment_frames, touching_blobs
from napari_spectral_seg.core.auto import AutoConfig
from napari_spectral_seg.core.pipeline import iter_segment, run_to_end
from napari_spectral_seg.data import four_circles

# The settings of bench/quality.py's auto mode: Otsu mask, sigma 1, min size 20.
AUTO_OTSU = {"threshold": "otsu", "n_clusters": "auto", "sigma": 1.0, "min_size": 20, "random_state": 0}


def f1_at_iou50(truth, pred):
    """F1 at IoU > 0.5 (unique matches), written out independently of bench/."""
    tp = 0
    for t in range(1, truth.max() + 1):
        tm = truth == t
        ids, counts = np.unique(pred[tm], return_counts=True)
        for p, inter in zip(ids, counts):
            if p == 0:
                continue
            union = np.count_nonzero(tm | (pred == p))
            if inter / union > 0.5:
                tp += 1
    return 2 * tp / (truth.max() + pred.max())


def disk(shape, centre, radius):
    yy, xx = np.indices(shape)
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2


def majority_agreement(truth, pred):
    """Fraction of truth objects whose pixels mostly carry one predicted label unique to them."""
    best = {}
    for t in range(1, truth.max() + 1):
        ids, counts = np.unique(pred[truth == t], return_counts=True)
        best[t] = ids[np.argmax(counts)]
    return best


def segment_with(image, config, **kwargs):
    """Labels of an auto-mode run with the thresholds ``config``."""
    return run_to_end(iter_segment(image, auto_config=config, **kwargs)).labels


def test_auto_splits_seed_four_circles_into_four():
    image, mask, truth = four_circles()
    labels = segment(image, mask, n_clusters="auto", random_state=0)
    assert labels.max() == 4
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4}
    # Each circle's (non-overlap) pixels mostly in its own segment.
    best = majority_agreement(truth, labels)
    assert sorted(best.values()) == [1, 2, 3, 4]
    assert f1_at_iou50(truth, labels) == 1.0


def test_auto_keeps_single_disk_whole():
    rng = np.random.default_rng(1)
    mask = disk((80, 80), (40, 40), 25)
    image = 1.0 + mask + 0.2 * rng.standard_normal(mask.shape)
    labels = segment(image, mask, n_clusters="auto", random_state=0)
    assert labels.max() == 1
    assert np.array_equal(labels > 0, mask)


@pytest.mark.xfail(
    strict=True,
    reason="a known loss: the second landscape (distance alone) that found this neck earned no pooled F1 in the "
    "ablation on unseen data and was removed (README, 'Which auto-mode rules earn their place')",
)
def test_auto_splits_dim_small_object_on_bright_one():
    # A dim small nucleus against a bright large one: in the distance x
    # intensity landscape it is only a low shoulder (the bright one's
    # blurred light lifts the pass almost to its top), but the mask still
    # has a neck. Both should come out, each matching its truth.
    shape = (48, 64)
    big = disk(shape, (24, 22), 12)
    small = disk(shape, (24, 38.5), 7.5) & ~big
    image = ndi.gaussian_filter(1.0 * big + 0.4 * small, 1.0) + 0.05
    image += 0.02 * np.random.default_rng(0).standard_normal(shape)
    labels = segment(image, big | small, n_clusters="auto", random_state=0)
    truth = big * 1 + small * 2
    assert labels.max() == 2
    assert f1_at_iou50(truth.astype(np.int64), labels) == 1.0


def test_auto_keeps_elongated_ellipse_whole():
    yy, xx = np.indices((60, 100))
    mask = ((yy - 30) / 10) ** 2 + ((xx - 50) / 35) ** 2 < 1
    image = 1.0 + mask.astype(float)
    assert segment(image, mask, n_clusters="auto", random_state=0).max() == 1


def test_auto_two_separate_disks_and_tiny_speck():
    mask = disk((60, 100), (30, 25), 15) | disk((60, 100), (30, 75), 15)
    mask[2:4, 2:4] = True  # 4 pixels: dropped by min_size
    image = 1.0 + mask.astype(float)
    labels = segment(image, mask, n_clusters="auto", min_size=10, random_state=0)
    assert labels.max() == 2
    assert labels[3, 3] == 0
    assert labels[30, 25] != labels[30, 75]


def test_auto_touching_blobs_f1():
    image, truth = touching_blobs((96, 96), 8, seed=3)
    labels = segment(image, **AUTO_OTSU)
    assert labels.dtype == np.int32
    # Consecutive labels 1..M.
    assert np.array_equal(np.unique(labels)[1:], np.arange(1, labels.max() + 1))
    assert f1_at_iou50(truth, labels) >= 0.8


def test_auto_config_defaults_are_the_default_run():
    image, mask, _ = four_circles()
    default = segment(image, mask, n_clusters="auto", random_state=0)
    assert np.array_equal(segment_with(image, AutoConfig(), mask=mask, n_clusters="auto", random_state=0), default)
    with pytest.raises(AttributeError):
        AutoConfig().notch_ratio = 0.0  # frozen: a run's thresholds cannot change under it


def test_auto_records_parameters_and_validates_sensitivity():
    image, mask, _ = four_circles()
    result = run_to_end(iter_segment(image, mask, n_clusters="auto", random_state=0))
    assert result.parameters["n_clusters"] == "auto"
    assert 0 < result.parameters["sensitivity"] <= 1
    # Stricter sensitivity 0 never splits: one segment per component.
    assert segment(image, mask, n_clusters="auto", sensitivity=0.0, random_state=0).max() == 1
    with pytest.raises(ValueError, match="sensitivity"):
        segment(image, mask, n_clusters="auto", sensitivity=1.5)
    with pytest.raises(ValueError, match="sensitivity"):
        segment(image, mask, n_clusters=4, sensitivity=0.5)
    with pytest.raises(ValueError, match="auto"):
        segment(image, mask, n_clusters="many")


def test_sigma_smooths_and_validates():
    image, mask, _ = four_circles(size=40)
    # A sigma of 0 is a no-op; a real one changes the result.
    a = segment(image, mask, n_clusters=4, random_state=0, sigma=0)
    b = segment(image, mask, n_clusters=4, random_state=0)
    assert np.array_equal(a, b)
    result = run_to_end(iter_segment(image, threshold=1.5, n_clusters=4, random_state=0, sigma=(1.0, 2.0)))
    assert result.labels.max() == 4 and result.parameters["sigma"] == [1.0, 2.0]
    # Smoothing before the threshold removes the noise speckles of the mask.
    speckled = segment(image, threshold=1.5, n_clusters=1, min_size=0, random_state=0).max()
    assert speckled > result.labels.max()
    for bad in (-1.0, float("nan"), float("inf"), (1.0, -2.0)):
        with pytest.raises(ValueError, match="sigma") as err:
            segment(image, mask, sigma=bad)
        assert "sigma=1.0" in str(err.value) or "pass one number" in str(err.value)
    with pytest.raises(ValueError, match="sigma"):
        segment(image, mask, sigma=(1.0, 1.0, 1.0))


def test_sigma_follows_spacing():
    from napari_spectral_seg.core.smooth import check_sigma, smooth_image

    impulse = np.zeros((21, 21, 21))
    impulse[10, 10, 10] = 1.0
    out = smooth_image(impulse, check_sigma(2.0, 3), spacing=(4.0, 1.0, 1.0))
    # z pixels are 4x larger, so the z blur is 0.5 px: much narrower than y, x.
    assert out[11, 10, 10] < out[10, 11, 10]
    rgb = np.zeros((9, 9, 3))
    rgb[4, 4, 0] = 1.0
    smooth = smooth_image(rgb, check_sigma(1.0, 2), multichannel=True)
    assert smooth[..., 1].max() == 0  # never across channels


def test_segment_frames_equals_per_frame_segment():
    stack = np.stack([touching_blobs((48, 48), 4, radius_range=(5, 8), seed=s)[0] for s in range(2)])
    kwargs = dict(threshold="otsu", n_clusters="auto", sigma=1.0, min_size=20, random_state=7)
    labels = segment_frames(stack, spatial_ndim=2, **kwargs)
    assert labels.shape == stack.shape and labels.dtype == np.int32
    for t in range(len(stack)):
        assert np.array_equal(labels[t], segment(stack[t], **kwargs))


def test_segment_frames_channels_and_4d():
    rng = np.random.default_rng(0)
    image, mask, _ = four_circles(size=40)
    # t, c, y, x with two channels
    stack = np.stack([np.stack([image, 0.5 * image]) for _ in range(2)])
    labels = segment_frames(stack, spatial_ndim=2, channel_axis=1, threshold=1.5, n_clusters=4, random_state=1)
    assert labels.shape == (2, 40, 40)
    # t, z, y, x with 3D frames, one mask for all frames
    vol = rng.random((2, 4, 12, 12))
    vmask = np.zeros((4, 12, 12), bool)
    vmask[1:3, 2:10, 2:10] = True
    labels = segment_frames(vol, vmask, spatial_ndim=3, n_clusters=2, random_state=1)
    assert labels.shape == vol.shape
    assert np.all(labels[:, ~vmask] == 0) and labels.max() == 2
    with pytest.raises(ValueError, match="spatial_ndim"):
        segment_frames(vol, spatial_ndim=4)


def test_segment_frames_cancel_between_frames():
    stack = np.stack([four_circles(size=40, seed=s)[0] for s in range(4)])
    seen = []

    def progress(update):
        seen.append(update.message)
        if update.message.startswith("frame (1,)"):
            raise SegmentationCancelled

    with pytest.raises(SegmentationCancelled):
        segment_frames(stack, spatial_ndim=2, threshold=1.5, n_clusters=2, random_state=0, progress=progress)
    assert any(m.startswith("frame (0,)") for m in seen)
    assert not any(m.startswith("frame (2,)") for m in seen)


def test_auto_3d_touching_spheres_and_anisotropic_spacing():
    zz, yy, xx = np.indices((20, 30, 44))
    a = (zz - 10) ** 2 + (yy - 15) ** 2 + (xx - 14) ** 2 < 9**2
    b = (zz - 10) ** 2 + (yy - 15) ** 2 + (xx - 29) ** 2 < 8**2
    image = 1.0 + (a | b)
    labels = segment(image, a | b, n_clusters="auto", random_state=0)
    assert labels.max() == 2 and labels[10, 15, 14] != labels[10, 15, 29]
    assert segment(image, a, n_clusters="auto", random_state=0).max() == 1
    # Every other z plane, declared as a z step of 2: same decision.
    coarse = segment(image[::2], (a | b)[::2], n_clusters="auto", spacing=(2.0, 1.0, 1.0), random_state=0)
    assert coarse.max() == 2


def test_auto_otsu_mask_with_noise_holes_and_determinism():
    image, _, truth = four_circles()
    # An unsmoothed Otsu mask has noise holes and specks: holes are not
    # necks (distance to the outer boundary) and specks go with min_size.
    labels = segment(image, threshold="otsu", n_clusters="auto", min_size=20, random_state=0)
    assert labels.max() == 4
    assert f1_at_iou50(truth, labels) == 1.0
    again = segment(image, threshold="otsu", n_clusters="auto", min_size=20, random_state=0)
    assert np.array_equal(labels, again)


def test_frames_with_an_empty_mask_are_zero_not_an_error():
    from napari_spectral_seg.core.frames import segment_frames
    from napari_spectral_seg.data import four_circles

    volume, mask, _ = four_circles(size=30, ndim=3, seed=0)
    labels = segment_frames(volume, mask, spatial_ndim=2, n_clusters=4, random_state=0)
    assert np.all(labels[0] == 0) and not mask[0].any()
    np.testing.assert_array_equal(labels[15], segment(volume[15], mask[15], n_clusters=4, random_state=0))


def _shoulder_scene(seed):
    """A dim small nucleus deep in a bright large one (no neck) beside three single textured domes.

    Rendered like :func:`touching_blobs`: dome profile, 15% smooth texture,
    blur 1, noise 0.05; each pixel belongs to the object it lies deepest in.
    """
    shape = (80, 150)
    grid = np.indices(shape, dtype=float)
    objects = [
        ((40, 30), 11, 1.0),
        ((40, 42), 8, 0.55),
        ((20, 100), 10, 0.8),
        ((58, 95), 10.5, 0.6),
        ((35, 128), 9.5, 0.9),
    ]
    best = np.full(shape, np.inf)
    truth = np.zeros(shape, dtype=np.int64)
    for i, (centre, radius, _) in enumerate(objects, start=1):
        rho = np.hypot(grid[0] - centre[0], grid[1] - centre[1]) / radius
        closer = (rho < 1) & (rho < best)
        truth[closer] = i
        best = np.where(closer, rho, best)
    rng = np.random.default_rng(seed)
    level = np.r_[0.0, [o[2] for o in objects]][truth]
    texture = ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
    texture /= texture.std()
    dome = np.where(truth > 0, 1 - 0.35 * np.minimum(best, 1) ** 2, 0.0)
    image = ndi.gaussian_filter(level * dome * (1 + 0.15 * texture), 1.0) + 0.1 + 0.05 * rng.standard_normal(shape)
    return image, truth


@pytest.mark.parametrize(
    "seed",
    [
        0,
        pytest.param(
            1,
            marks=pytest.mark.xfail(
                strict=True,
                reason="a known loss: here only the intensity step shows the seam, and the step cut earned no "
                "pooled F1 in the ablation on unseen data and was removed",
            ),
        ),
    ],
)
def test_auto_splits_bright_dim_pair_without_neck_at_its_notches(seed):
    # The pair's union has no neck and the dim object is a terrace, not a
    # hill, so the pass/hill rule keeps it whole; the slight dent of the
    # pair's outline on each side makes a notch pair. The single textured
    # domes beside it must stay whole.
    image, truth = _shoulder_scene(seed)
    kwargs = AUTO_OTSU
    labels = segment(image, **kwargs)
    assert labels.max() == 5
    assert f1_at_iou50(truth, labels) == 1.0
    # Without the notch cut the pair stays merged: the test exercises it.
    assert segment_with(image, AutoConfig(notch_ratio=0.0), **kwargs).max() == 4


def _voxel_graph(mask):
    from napari_spectral_seg.core.auto import pixel_edges

    node = np.full(mask.shape, -1, dtype=np.int64)
    node[mask] = np.arange(int(mask.sum()))
    heads, tails, _ = pixel_edges(node)
    return np.argwhere(mask), heads, tails


def _clipped_ellipse_scene(seed):
    # A large ellipse (2.5 typical sizes) cut in half by the left image
    # border, beside eight typical discs; mild smooth texture and noise.
    shape = (100, 150)
    yy, xx = np.indices(shape).astype(float)
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, dtype=np.int64)
    truth[((yy - 50) / 21) ** 2 + (xx / 17) ** 2 < 1] = 1
    centres = [(20, 60), (50, 70), (80, 60), (20, 100), (50, 110), (80, 100), (25, 135), (75, 135)]
    for k, (cy, cx) in enumerate(centres, start=2):
        truth[((yy - cy) ** 2 + (xx - cx) ** 2 < 64) & (truth == 0)] = k
    texture = 1 + 0.45 * ndi.gaussian_filter(rng.standard_normal(shape), 3)
    image = ndi.gaussian_filter((truth > 0) * texture, 1.0) + 0.1 + 0.03 * rng.standard_normal(shape)
    return image, truth


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_border_clipped_large_ellipse_stays_whole(seed):
    # A big ellipse clipped by the border, 2.5 typical sizes, has no pass:
    # it stays one object beside the typical discs.
    image, truth = _clipped_ellipse_scene(seed)
    labels = segment(image, **AUTO_OTSU)
    assert labels.max() == 9
    assert f1_at_iou50(truth, labels) == 1.0


def test_typical_size_is_the_median_piece_without_specks():
    from napari_spectral_seg.core.auto.pieces import typical_size

    # Specks under min_part (30) do not count; a clump is one piece among them.
    pieces = [np.repeat(np.arange(8), [100, 200, 300, 400, 500, 2500, 5, 12])]
    assert typical_size(pieces, 30) == 350.0
    assert typical_size([np.repeat(np.arange(2), [5, 12])], 30) == 8.5  # only specks: their median
    assert typical_size([], 30) == 0.0


def test_notch_cut_separates_lobes_and_leaves_ellipses_whole():
    from napari_spectral_seg.core.auto import pixel_edges, rules
    from napari_spectral_seg.core.auto.shape import notch_cut
    from napari_spectral_seg.core.graph import index_pixels

    config = AutoConfig()

    shape = (64, 64)
    centres = [(22, 20), (22, 43), (42, 31)]  # centre distance 23 = 0.82 x (2 r)
    discs = [disk(shape, c, 14) for c in centres]
    clump = np.any(discs, axis=0)
    # Truth: each pixel to its nearest centre (the union's natural seams).
    yy, xx = np.indices(shape)
    nearest = np.argmin([(yy - c[0]) ** 2 + (xx - c[1]) ** 2 for c in centres], axis=0) + 1
    truth = np.where(clump, nearest, 0)
    typical = float(discs[0].sum())

    index = index_pixels(clump)
    heads, tails, _ = pixel_edges(index.node_of_pixel)
    coords = np.stack(np.unravel_index(index.pixel_of_node, shape), axis=1)
    zeros = np.zeros(index.n_nodes, dtype=np.int64)
    pieces = rules.split_notches(zeros, heads, tails, coords, typical, spacing=None, min_part=20, config=config)
    assert pieces.max() + 1 == 3
    labels = np.zeros(shape, dtype=np.int64)
    labels[tuple(coords.T)] = pieces + 1
    assert f1_at_iou50(truth, labels) == 1.0

    # One ellipse, whole or clipped by the image border (row 0), and a disc
    # with two dark holes inside (holes are not notches) have no notch pair.
    ellipse = ((yy - 32) / 20.0) ** 2 + ((xx - 32) / 12.0) ** 2 < 1
    clipped = ((yy - 8) / 20.0) ** 2 + ((xx - 32) / 12.0) ** 2 < 1
    holed = disk(shape, (32, 32), 28)
    holed[20:23, 30:33] = holed[40:43, 30:33] = False
    for region in (ellipse, clipped, holed):
        ratio, seam, side = notch_cut(np.argwhere(region), smallest=50, config=config)
        assert side is None or ratio < config.notch_ratio


def test_giant_single_ellipsoid_stays_one_object():
    # A giant ellipsoid among normal balls has no pass, and no rule cuts a
    # piece for its size alone: it stays one object.
    zz, yy, xx = np.indices((30, 44, 44))
    giant = ((zz - 15) / 13.0) ** 2 + ((yy - 22) / 19.0) ** 2 + ((xx - 22) / 17.0) ** 2 < 1
    volume = np.zeros((30, 96, 96))
    volume[:, 26:70, 26:70] = giant
    z, y, x = np.indices(volume.shape)
    for cy, cx in ((12, 12), (12, 84), (84, 12), (84, 84), (12, 48)):
        volume[(z - 15) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 < 64] = 1.0
    rng = np.random.default_rng(3)
    image = ndi.gaussian_filter(volume, 1.0) + 0.1 + 0.03 * rng.standard_normal(volume.shape)
    kw = AUTO_OTSU
    labels = segment(image, **kw)
    centre = labels[15, 48, 48]
    assert labels.max() == 6
    assert np.count_nonzero(labels == centre) > 0.9 * giant.sum()
