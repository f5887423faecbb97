"""Property-based tests of :func:`segment` over random shapes, dtypes, masks and parameters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.ndimage as ndi

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from napari_spectral_seg import segment as segment_with_defaults  # noqa: E402

DTYPES = ["bool", "uint8", "uint16", "int8", "int64", "float16", "float32", "float64"]


def segment(image, mask=None, **kwargs):
    """``segment`` on the whole image (or the mask) unless a threshold is given: these tests are about the graph."""
    kwargs.setdefault("threshold", None)
    return segment_with_defaults(image, mask, **kwargs)


SETTINGS = dict(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _elements(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return st.integers(max(int(info.min), -(10**6)), min(int(info.max), 10**6))
    width = 8 * dtype.itemsize
    return st.floats(-1e3, 1e3, width=width, allow_nan=False, allow_infinity=False)


shapes = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=20),
    hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=6),
)


@st.composite
def problems(draw):
    """An image, an optional mask, and keyword arguments for segment."""
    shape = draw(shapes)
    dtype = draw(st.sampled_from(DTYPES))
    # Either arbitrary values (often constant or few-valued) or a smooth-ish
    # random image from a seed, which hypothesis cannot shrink but covers the
    # usual case quickly.
    if draw(st.booleans()):
        image = draw(hnp.arrays(dtype, shape, elements=_elements(dtype)))
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        image = (rng.random(shape) * 200).astype(dtype)
    mask = draw(st.one_of(st.none(), hnp.arrays(np.bool_, shape)))
    layout = draw(st.sampled_from(["c", "fortran", "strided", "readonly"]))
    if layout == "fortran":
        image = np.asfortranarray(image)
    elif layout == "strided":
        # A non-contiguous view with the same shape.
        big = np.repeat(image, 2, axis=-1)
        image = big[..., ::2]
    elif layout == "readonly":
        image = image.copy()
        image.setflags(write=False)
    kwargs = dict(
        n_clusters=draw(st.integers(1, 5)),
        beta=draw(st.floats(0.05, 50.0)),
        assign_labels=draw(st.sampled_from(["kmeans", "cluster_qr"])),
        eigen_solver=draw(st.sampled_from(["auto", "arpack", "lobpcg", "amg"])),
        random_state=draw(st.integers(0, 2**31 - 1)),
    )
    return image, mask, kwargs


def _segment(image, mask, kwargs):
    with warnings.catch_warnings():
        # constant images warn; k-means may warn about duplicate points
        warnings.simplefilter("ignore")
        return segment(image, mask, **kwargs)


@settings(**SETTINGS)
@given(problems())
def test_labels_are_valid(problem):
    image, mask, kwargs = problem
    image_before = image.copy()
    mask_before = None if mask is None else mask.copy()
    inside = np.ones(image.shape, bool) if mask is None else mask
    n_masked = int(inside.sum())

    try:
        labels = _segment(image, mask, kwargs)
    except ValueError as err:
        # The only legitimate refusals for these inputs.
        if n_masked == 0:
            assert "mask is empty" in str(err)
        else:
            assert kwargs["n_clusters"] > n_masked
            assert f"n_clusters={kwargs['n_clusters']} is larger than" in str(err)
        return
    assert n_masked >= kwargs["n_clusters"]

    # input never modified
    np.testing.assert_array_equal(image, image_before)
    if mask is not None:
        np.testing.assert_array_equal(mask, mask_before)

    # output shape equals input shape; zero exactly outside the mask
    assert labels.shape == image.shape
    assert labels.dtype == np.int32
    assert np.all(labels[~inside] == 0)
    assert np.all(labels[inside] > 0)

    # labels consecutive from 1
    present = np.unique(labels[inside])
    np.testing.assert_array_equal(present, np.arange(1, len(present) + 1))

    # each segment lies in one connected component; each component gets at least one
    components, n_components = ndi.label(inside)
    assert len(present) >= n_components
    assert len(present) <= max(n_components, kwargs["n_clusters"])
    pairs = np.unique(np.stack([labels[inside], components[inside]]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1]  # no label in two components


@settings(**SETTINGS)
@given(problems())
def test_same_seed_same_labels(problem):
    image, mask, kwargs = problem
    inside = np.ones(image.shape, bool) if mask is None else mask
    if not 1 <= kwargs["n_clusters"] <= inside.sum():
        return
    first = _segment(image, mask, kwargs)
    second = _segment(image, mask, kwargs)
    np.testing.assert_array_equal(first, second)
