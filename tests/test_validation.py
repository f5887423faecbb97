"""Bad input gives a ValueError/TypeError naming the parameter; odd but valid input works."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_spectral_seg import segment as segment_with_defaults
from napari_spectral_seg.core import memory
from napari_spectral_seg.core.memory import InsufficientMemoryError
from napari_spectral_seg.core.validation import floor_edge_weights, scale_for_graph


def segment(image, mask=None, **kwargs):
    """``segment`` on the whole image (or the mask) unless a threshold is given: these tests are about the graph."""
    kwargs.setdefault("threshold", None)
    return segment_with_defaults(image, mask, **kwargs)


def _image(shape=(12, 12), seed=0):
    return np.random.default_rng(seed).random(shape)


def assert_valid_labels(labels, shape, mask=None):
    assert labels.shape == tuple(shape)
    assert labels.dtype == np.int32
    inside = np.ones(shape, bool) if mask is None else np.asarray(mask, bool)
    assert np.all(labels[~inside] == 0)
    assert np.all(labels[inside] > 0)
    present = np.unique(labels[inside])
    np.testing.assert_array_equal(present, np.arange(1, len(present) + 1))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_pixels(bad):
    image = _image()
    image[3, 4] = bad
    with pytest.raises(ValueError, match=r"image has 1 NaN or infinite pixel\(s\).*nan_to_num"):
        segment(image, random_state=0)


def test_nan_pixels_float16():
    image = _image().astype(np.float16)
    image[0, 0] = np.nan
    with pytest.raises(ValueError, match="image has 1 NaN"):
        segment(image, random_state=0)


def test_empty_mask():
    image = _image()
    with pytest.raises(ValueError, match="mask is empty"):
        segment(image, np.zeros(image.shape, bool), random_state=0)


@pytest.mark.parametrize("threshold", ["otsu", 0.5])
def test_an_empty_mask_with_a_threshold_blames_the_mask(threshold):
    # It said "lower the threshold", which cannot help an empty mask.
    image = _image()
    with pytest.raises(ValueError, match="mask is empty: no pixel to segment; draw or pass a mask") as caught:
        segment(image, np.zeros(image.shape, bool), threshold=threshold)
    assert "threshold" not in str(caught.value)


def test_one_pixel_mask_with_several_clusters():
    image = _image()
    mask = np.zeros(image.shape, bool)
    mask[5, 5] = True
    with pytest.raises(ValueError, match=r"n_clusters=4 is larger than the 1 pixel\(s\) in the mask"):
        segment(image, mask, n_clusters=4, random_state=0)


def test_one_pixel_mask_with_one_cluster_works():
    image = _image()
    mask = np.zeros(image.shape, bool)
    mask[5, 5] = True
    labels = segment(image, mask, n_clusters=1, random_state=0)
    assert_valid_labels(labels, image.shape, mask)
    assert labels[5, 5] == 1


@pytest.mark.parametrize("shape", [(5, 5), (12, 13), (12, 12, 1), (12,)])
def test_mask_of_another_shape(shape):
    with pytest.raises(ValueError, match=r"mask has shape .* spatial shape is \(12, 12\)"):
        segment(_image(), np.ones(shape, bool), random_state=0)


def test_mask_with_nan():
    with pytest.raises(ValueError, match="mask has NaN"):
        segment(_image(), np.full((12, 12), np.nan), random_state=0)


def test_mask_of_strings():
    with pytest.raises(TypeError, match="mask has dtype"):
        segment(_image(), np.full((12, 12), "x"), random_state=0)


@pytest.mark.parametrize("n", [0, -3])
def test_n_clusters_below_one(n):
    with pytest.raises(ValueError, match=rf"n_clusters={n} must be at least 1"):
        segment(_image(), n_clusters=n)


@pytest.mark.parametrize("n", [2.5, 2.0, None, True, np.float64(3)])
def test_n_clusters_not_integer(n):
    with pytest.raises(TypeError, match="n_clusters=.* must be a whole number"):
        segment(_image(), n_clusters=n)


@pytest.mark.parametrize("n", ["3", "Auto", "many"])
def test_n_clusters_string_other_than_auto(n):
    with pytest.raises(ValueError, match="pass a whole number or 'auto'"):
        segment(_image(), n_clusters=n)


def test_n_clusters_numpy_integer_works():
    labels = segment(_image(), n_clusters=np.int64(3), random_state=0)
    assert_valid_labels(labels, (12, 12))


def test_n_clusters_larger_than_masked_pixels():
    with pytest.raises(ValueError, match=r"n_clusters=200 is larger than the 144 pixel\(s\)"):
        segment(_image(), n_clusters=200, random_state=0)


def test_threshold_above_maximum():
    with pytest.raises(ValueError, match=r"mask is empty.*lower the threshold \(it is 5"):
        segment(_image(), threshold=5.0, random_state=0)


def test_otsu_on_constant_image():
    with pytest.raises(ValueError, match="threshold='otsu' keeps nothing"):
        segment(np.ones((6, 6)), threshold="otsu", random_state=0)


@pytest.mark.parametrize("threshold", [np.nan, np.inf, "median", [1.0], True])
def test_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold="):
        segment(_image(), threshold=threshold, random_state=0)


@pytest.mark.parametrize("beta", [0, 0.0, -1.0, np.nan, np.inf, "1", None, True])
def test_bad_beta(beta):
    with pytest.raises(ValueError, match=r"beta=.* must be a positive finite number"):
        segment(_image(), beta=beta, random_state=0)


@pytest.mark.parametrize("solver", ["foo", "ARPACK", "", None, 1])
def test_unknown_solver(solver):
    with pytest.raises(ValueError, match=r"eigen_solver=.* is unknown; use one of auto, arpack"):
        segment(_image(), eigen_solver=solver, random_state=0)


@pytest.mark.parametrize("method", ["discretize", None])
def test_unknown_assign_labels(method):
    with pytest.raises(ValueError, match="assign_labels=.* is unknown"):
        segment(_image(), assign_labels=method, random_state=0)


@pytest.mark.parametrize("min_size", [-1, 1.5, "3"])
def test_bad_min_size(min_size):
    with pytest.raises(ValueError, match="min_size="):
        segment(_image(), min_size=min_size, random_state=0)


def test_min_size_larger_than_every_piece():
    with pytest.raises(ValueError, match="smaller than min_size=1000"):
        segment(_image(), min_size=1000, random_state=0)


@pytest.mark.parametrize("seed", [1.5, "1"])
def test_random_state_not_integer(seed):
    with pytest.raises(TypeError, match="random_state=.* must be an integer seed"):
        segment(_image(), random_state=seed)


def test_random_state_negative():
    with pytest.raises(ValueError, match="random_state=-1 must be a non-negative"):
        segment(_image(), random_state=-1)


@pytest.mark.parametrize("spacing", ["ab", (1.0,), (1.0, 2.0, 3.0), (0.0, 1.0), (1.0, np.nan), (1.0, None)])
def test_bad_spacing(spacing):
    with pytest.raises(ValueError, match="spacing=.* must be 2 positive numbers"):
        segment(_image(), spacing=spacing, random_state=0)


@pytest.mark.parametrize("axis", [1.5, "x", True])
def test_channel_axis_not_integer(axis):
    with pytest.raises(TypeError, match="channel_axis=.* must be an integer"):
        segment(_image((6, 6, 3)), channel_axis=axis, random_state=0)


def test_channel_axis_out_of_range():
    with pytest.raises(ValueError, match="channel_axis=5 is out of range"):
        segment(_image((6, 6, 3)), channel_axis=5, random_state=0)


def test_complex_image():
    with pytest.raises(TypeError, match=r"image is complex.*np\.abs"):
        segment(_image().astype(np.complex128), random_state=0)


@pytest.mark.parametrize("image", [np.full((4, 4), "a"), np.empty((4, 4), dtype=object)])
def test_non_numeric_image(image):
    with pytest.raises(TypeError, match="image has dtype"):
        segment(image, random_state=0)


@pytest.mark.parametrize("shape", [(), (10,), (2, 2, 2, 2), (2, 2, 2, 2, 2)])
def test_wrong_number_of_axes(shape):
    with pytest.raises(ValueError, match=r"image has \d spatial axes.*2D or 3D"):
        segment(np.zeros(shape), random_state=0)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0, 3)])
def test_empty_image(shape):
    with pytest.raises(ValueError, match="image is empty"):
        segment(np.zeros(shape), random_state=0)


def test_image_too_large_is_refused_before_allocating():
    # A view of one float32: 4 bytes of data, 4e10 bytes if anything were copied.
    image = np.broadcast_to(np.float32(0), (100_000, 100_000))
    with pytest.raises(InsufficientMemoryError, match="needs about .* GiB .* available; crop or downsample"):
        segment(image)
    with pytest.raises(MemoryError):
        segment(image)


def test_large_dask_array_is_refused_before_computing():
    da = pytest.importorskip("dask.array")
    image = da.zeros((100_000, 100_000), chunks=(10_000, 10_000))
    with pytest.raises(ValueError, match="needs about"):
        segment(image)


def test_check_image_memory(monkeypatch):
    # The preparation's peak (the distance transform of the automatic scales) is the larger in 2D.
    assert memory.check_image_memory(100, available=10**9) == 100 * (40 + 2 * 20)
    assert memory.check_image_memory(100, n_channels=8, available=10**9) == 100 * (8 * 8 + 40)
    with pytest.raises(InsufficientMemoryError, match="image of 1,000,000 pixels needs about"):
        memory.check_image_memory(10**6, available=10**6)
    # Unknown available memory (no psutil, no /proc/meminfo): no refusal.
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    assert memory.check_image_memory(10**12) > 0


def test_check_memory_refuses_after_masking(monkeypatch):
    # The image copy fits, the graph of the masked pixels does not.
    image = _image((50, 50))
    budget = memory.check_image_memory(image.size, available=10**12) + 10
    monkeypatch.setattr(memory, "available_memory", lambda: budget)
    with pytest.raises(InsufficientMemoryError, match="segmenting 2,500 pixels"):
        segment(image, random_state=0)


# ---------------------------------------------------- faults deep in the pipeline


@pytest.mark.parametrize("solver", ["auto", "arpack", "lobpcg", "amg"])
def test_single_row_of_identical_pixels(solver):
    image = np.ones((1, 30))
    with pytest.warns(UserWarning, match="image is constant"):
        labels = segment(image, n_clusters=3, eigen_solver=solver, random_state=0)
    assert_valid_labels(labels, image.shape)


@pytest.mark.parametrize("n_clusters", [2, 3, 5, 6])
def test_components_of_two_pixels(n_clusters):
    image = _image((6, 6))
    mask = np.zeros((6, 6), bool)
    mask[0, 0:2] = mask[3, 3:5] = mask[5, 0:2] = True
    labels = segment(image, mask, n_clusters=n_clusters, random_state=0)
    assert_valid_labels(labels, image.shape, mask)
    assert labels.max() == max(3, n_clusters)


def test_two_identical_pixels_two_clusters():
    with pytest.warns(UserWarning, match="constant"):
        labels = segment(np.ones((1, 2)), n_clusters=2, random_state=0)
    np.testing.assert_array_equal(labels, [[1, 2]])


@pytest.mark.parametrize("beta", [1e4, 1e6, 1e300])
def test_huge_beta_underflowing_weights(beta):
    image = np.zeros((10, 10))
    image[:, 5:] = 1.0
    image[4, 2] = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no NaN weights from 0 * -inf
        labels = segment(image, n_clusters=2, beta=beta, random_state=0)
    assert_valid_labels(labels, image.shape)
    # Every edge of the odd pixel crosses a step, so it is the cheapest cut;
    # the flat halves stay joined by their weight-1 edges.
    others = np.delete(labels.ravel(), 4 * 10 + 2)
    assert len(np.unique(others)) == 1 and labels[4, 2] != others[0]


def test_floor_edge_weights():
    import scipy.sparse as sp

    graph = sp.csr_array(np.array([[0, 0.0, 1], [0.0, 0, 2], [1, 2, 0]], dtype=np.float32))
    graph.data[graph.data == 2] = 0.0  # an explicitly stored underflowed weight
    floor_edge_weights(graph)
    assert graph.data.min() == np.finfo(np.float32).tiny


@pytest.mark.parametrize("scale", [2.0**900, 2.0**-900, 1e300, 1e-300])
def test_extreme_intensities(scale):
    image = _image((10, 10))
    reference = segment(image, random_state=0)
    labels = segment(image * scale, random_state=0)
    assert_valid_labels(labels, image.shape)
    if np.log2(scale).is_integer():
        # power-of-two scaling is exact and the weights do not depend on scale
        np.testing.assert_array_equal(labels, reference)


def test_scale_for_graph_leaves_ordinary_images_alone():
    image = _image()
    assert scale_for_graph(image) is image
    assert scale_for_graph(np.zeros((3, 3))).max() == 0
    assert 0.5 <= np.abs(scale_for_graph(image * 1e200)).max() < 1


def test_int64_extremes():
    info = np.iinfo(np.int64)
    image = np.tile(np.array([info.min, info.max], dtype=np.int64), (4, 3))
    labels = segment(image, n_clusters=2, random_state=0)
    assert_valid_labels(labels, image.shape)


# ------------------------------------------------------- odd but valid input


def test_constant_image_gives_valid_labels_and_warns():
    with pytest.warns(UserWarning, match="image is constant inside the mask"):
        labels = segment(np.full((8, 9), 3.0), n_clusters=3, random_state=0)
    assert_valid_labels(labels, (8, 9))
    assert labels.max() == 3


def test_constant_3d_image():
    with pytest.warns(UserWarning, match="constant"):
        labels = segment(np.zeros((3, 4, 5)), n_clusters=2, random_state=0)
    assert_valid_labels(labels, (3, 4, 5))


def test_constant_inside_mask_only_warns():
    image = _image()
    mask = np.zeros(image.shape, bool)
    mask[2:6, 2:6] = True
    image[mask] = 0.25
    with pytest.warns(UserWarning, match="constant"):
        labels = segment(image, mask, n_clusters=2, random_state=0)
    assert_valid_labels(labels, image.shape, mask)


def test_varying_image_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        segment(_image(), random_state=0)


@pytest.mark.parametrize(
    "dtype", [bool, np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64]
)
def test_dtypes(dtype):
    rng = np.random.default_rng(1)
    if dtype is bool:
        image = rng.random((10, 11)) > 0.5
    elif np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        image = rng.integers(max(info.min, -1000), min(info.max, 60000), (10, 11), endpoint=True).astype(dtype)
    else:
        image = (rng.random((10, 11)) * 100).astype(dtype)
    before = image.copy()
    labels = segment(image, n_clusters=3, random_state=0)
    assert_valid_labels(labels, image.shape)
    np.testing.assert_array_equal(image, before)


def test_non_contiguous():
    big = _image((24, 36))
    view = big[::2, ::3]
    assert not view.flags.c_contiguous
    labels = segment(view, random_state=0)
    assert_valid_labels(labels, view.shape)
    np.testing.assert_array_equal(labels, segment(np.ascontiguousarray(view), random_state=0))


def test_fortran_order_and_transposed():
    image = _image((9, 14))
    reference = segment(image, random_state=0)
    np.testing.assert_array_equal(segment(np.asfortranarray(image), random_state=0), reference)
    assert_valid_labels(segment(image.T, random_state=0), (14, 9))


def test_read_only():
    image = _image()
    image.setflags(write=False)
    mask = image > 0.2
    mask.setflags(write=False)
    labels = segment(image, mask, random_state=0)
    assert_valid_labels(labels, image.shape, mask)


def test_dask_array():
    da = pytest.importorskip("dask.array")
    image = _image((12, 12))
    lazy = da.from_array(image, chunks=(5, 7))
    labels = segment(lazy, lazy > 0.3, random_state=0)
    assert isinstance(labels, np.ndarray)
    np.testing.assert_array_equal(labels, segment(image, image > 0.3, random_state=0))


def test_dask_array_with_unknown_chunks():
    da = pytest.importorskip("dask.array")
    values = da.from_array(_image((5, 8)), chunks=(2, 8))
    image = values[values[:, 0] >= 0]  # shape (nan, 8) until computed
    assert np.isnan(image.shape[0])
    labels = segment(image, n_clusters=2, random_state=0)
    assert_valid_labels(labels, (5, 8))


@pytest.mark.parametrize("shape", [(1, 20), (20, 1), (1, 1, 12), (1, 6, 6)])
def test_thin_images(shape):
    labels = segment(_image(shape), n_clusters=3, random_state=0)
    assert_valid_labels(labels, shape)


def test_one_pixel_image():
    labels = segment(np.ones((1, 1)), n_clusters=1, random_state=0)
    np.testing.assert_array_equal(labels, [[1]])


def test_list_input():
    labels = segment([[0, 0, 5], [0, 0, 5]], n_clusters=2, random_state=0)
    np.testing.assert_array_equal(labels, [[1, 1, 2], [1, 1, 2]])


def test_channel_axis_image():
    image = _image((8, 8, 3))
    labels = segment(image, channel_axis=-1, n_clusters=2, random_state=0)
    assert_valid_labels(labels, (8, 8))
    np.testing.assert_array_equal(
        labels, segment(np.moveaxis(image, -1, 0), channel_axis=0, n_clusters=2, random_state=0)
    )


def test_ragged_lists_as_image_or_mask_are_refused_by_name():
    # issue 17: numpy's "setting an array element with a sequence ... inhomogeneous shape" leaked.
    image = np.ones((4, 4))
    with pytest.raises(ValueError, match=r"^image is a list of rows of different lengths; pass a rectangular"):
        segment_with_defaults([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"^mask is a list of rows of different lengths; pass a rectangular"):
        segment_with_defaults(image, mask=[[1, 0], [1]])
    from napari_spectral_seg import segment_frames

    with pytest.raises(ValueError, match=r"^mask is a list of rows of different lengths"):
        segment_frames(np.ones((2, 4, 4)), mask=[[1, 0], [1]], spatial_ndim=2)


def _half_hidden(size=60):
    from napari_spectral_seg import four_circles

    image, mask, truth = four_circles(size=size, noise=0.2, seed=0)
    hidden = np.zeros_like(mask)
    hidden[:, : size // 2] = True
    return image, mask, truth, hidden


def test_a_masked_array_as_mask_leaves_its_masked_pixels_out():
    # Issue 17: np.asarray dropped a MaskedArray's mask, so its hidden pixels were segmented.
    from napari_spectral_seg import segment

    image, mask, truth, hidden = _half_hidden()
    labels = segment(image, np.ma.MaskedArray(mask, mask=hidden), n_clusters=2, random_state=0)
    assert not labels[hidden].any() and labels[~hidden & mask].all()
    regions = segment(image, np.ma.MaskedArray(truth, mask=hidden), n_clusters=2, random_state=0)
    assert not regions[hidden].any() and regions[~hidden & (truth > 0)].all()


@pytest.mark.parametrize("channels", [False, True])
def test_a_masked_image_with_a_mask_never_reads_its_masked_pixels(channels):
    from napari_spectral_seg import segment

    image, mask, _, hidden = _half_hidden()
    garbage = image.copy()
    garbage[hidden] = -1e6  # what a masked array may hold under its mask
    if channels:
        garbage = np.stack([garbage, image, image], axis=0)
        cover = np.zeros(garbage.shape, bool)
        cover[0] = hidden  # one channel masked is enough
        given = np.ma.MaskedArray(garbage, mask=cover)
        kwargs = {"channel_axis": 0}
    else:
        given, kwargs = np.ma.MaskedArray(garbage, mask=hidden), {}
    labels = segment(given, mask, n_clusters=2, random_state=0, **kwargs)
    reference = segment(
        np.stack([image] * 3) if channels else image, mask & ~hidden, n_clusters=2, random_state=0, **kwargs
    )
    np.testing.assert_array_equal(labels, reference)
    assert not given.mask.all() and given.data.min() == -1e6  # the caller's array is not modified


def test_a_masked_image_without_a_mask_is_refused_with_the_fix():
    from napari_spectral_seg import segment, segment_frames

    image, _, _, hidden = _half_hidden()
    with pytest.raises(ValueError) as info:
        segment(np.ma.MaskedArray(image, mask=hidden), n_clusters=2)
    message = str(info.value)
    assert message.startswith("image is a numpy masked array with 1800 masked pixel(s) and no mask is given")
    assert "mask=~np.ma.getmaskarray(image)" in message and "image.filled(value)" in message
    with pytest.raises(ValueError, match="image is a numpy masked array"):
        segment_frames(np.ma.MaskedArray(np.stack([image] * 2), mask=np.stack([hidden] * 2)), spatial_ndim=2)
    # Nothing masked: read as its data.
    plain = segment(np.ma.MaskedArray(image), threshold="otsu", n_clusters=2, random_state=0)
    np.testing.assert_array_equal(plain, segment(image, threshold="otsu", n_clusters=2, random_state=0))


def test_split_label_refuses_masked_pixels_inside_the_segment():
    from napari_spectral_seg import segment
    from napari_spectral_seg.core import split_label

    image, mask, _, hidden = _half_hidden()
    labels = segment(image, mask, n_clusters=4, random_state=0)
    left = int(np.bincount(labels[hidden])[1:].argmax() + 1)
    with pytest.raises(ValueError, match=rf"masked pixel\(s\) inside label {left}; fill them first"):
        split_label(np.ma.MaskedArray(image, mask=hidden), labels, left)
    right = next(v for v in np.unique(labels) if v and not (labels[hidden] == v).any())
    indices, values = split_label(np.ma.MaskedArray(image, mask=hidden), labels, int(right))
    assert set(np.unique(values)) <= {int(right), int(labels.max()) + 1}
