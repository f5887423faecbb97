"""Checks of the image and mask, with messages that name the input and say what to change.

Also the few guards the pipeline needs against numerical faults: a memory
estimate checked before allocating, rescaling of extreme intensities and a
floor on edge weights. Parameter checks live in :mod:`.params`, the
eigen-solver fallback in :mod:`.solve`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from .memory import check_image_memory
from .params import is_integer

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = [
    "MIN_PIXELS_PER_SEGMENT",
    "as_array",
    "as_float_image",
    "check_mask",
    "check_segment_count",
    "floor_edge_weights",
    "masked_pixels",
    "read_masked_arrays",
    "scale_for_graph",
    "warn_if_constant",
]


def as_array(value, name: str) -> np.ndarray:
    """``np.asarray(value)``, with a ragged nested list refused by ``name`` (numpy's own message names neither)."""
    try:
        return np.asarray(value)
    except ValueError:
        raise ValueError(
            f"{name} is a list of rows of different lengths; pass a rectangular array "
            "(every row as long as the others), e.g. a numpy array."
        ) from None


def masked_pixels(image, channel_axis=None):
    """``image``'s data, and for a numpy masked array the pixels masked in any channel (else None).

    ``channel_axis`` must be a valid axis of ``image`` or None.
    """
    if not isinstance(image, np.ma.MaskedArray):
        return image, None
    hidden = np.ma.getmaskarray(image)
    return np.ma.getdata(image), hidden if channel_axis is None else hidden.any(axis=int(channel_axis))


def read_masked_arrays(image, mask, channel_axis=None):
    """``image`` and ``mask`` with numpy masked arrays read as their masks say.

    ``np.asarray`` drops a ``np.ma.MaskedArray``'s mask and reads the hidden
    values as if they were data. Here a masked pixel of ``mask`` is outside
    the mask; a masked pixel of ``image`` (in any channel) is left out of
    the given ``mask`` and its value never read (it is filled like a NaN
    outside the mask). A masked image without a ``mask`` is refused: whether
    its masked pixels' values or a threshold should decide is the caller's
    choice, and the message says how to give either.

    Returns
    -------
    image, mask
        Plain arrays where masked arrays were given (the inputs otherwise,
        unchanged and not copied).
    """
    if isinstance(mask, np.ma.MaskedArray):
        mask = np.ma.filled(mask, 0)
    if not isinstance(image, np.ma.MaskedArray):
        return image, mask
    data = np.ma.getdata(image)
    if not np.ma.getmaskarray(image).any():
        return data, mask
    if data.dtype.kind not in "biuf" or (channel_axis is not None and not is_integer(channel_axis)):
        return data, mask  # as_float_image names what is wrong
    if channel_axis is not None and not -data.ndim <= int(channel_axis) < data.ndim:
        channel_axis = None  # as_float_image names the axis
    _, hidden = masked_pixels(image, channel_axis)
    n_hidden = int(np.count_nonzero(hidden))
    if mask is None:
        raise ValueError(
            f"image is a numpy masked array with {n_hidden} masked pixel(s) and no mask is given; pass "
            "mask=~np.ma.getmaskarray(image) to leave them out (with threshold='otsu' for Otsu's threshold "
            "inside it), or image.filled(value) to segment them."
        )
    mask = as_array(mask, "mask")
    if mask.shape != hidden.shape:
        return data, mask  # check_mask names the shapes
    data = data.astype(np.float64, copy=True)
    data[np.ma.getmaskarray(image)] = np.nan  # every masked value, in any channel: outside the mask, never read
    return data, np.where(hidden, 0, mask)


def _peek(image):
    """Shape and dtype of ``image`` without computing a lazy (e.g. dask) array."""
    try:
        shape = tuple(int(s) for s in image.shape)  # dask: NaN for unknown chunks -> ValueError
        dtype = np.dtype(image.dtype)
        return shape, dtype, image
    except (AttributeError, TypeError, ValueError):
        array = as_array(image, "image")
        return array.shape, array.dtype, array


def as_float_image(image, channel_axis=None, mask=None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Validate an image and return it as float64 with any channel axis last.

    Parameters
    ----------
    image : array_like
        2D or 3D real-valued array (numpy, dask, or anything ``np.asarray`` takes),
        plus one channel axis if ``channel_axis`` is given. Dask arrays are
        computed, after the shape, dtype and memory checks.
    channel_axis : int, optional
        Axis that holds channels (e.g. -1 for RGB).
    mask : array_like, spatial shape, optional
        The pixels to segment (nonzero): NaN or infinite pixels outside it
        are accepted and replaced by the nearest pixel that is finite in
        every channel (so smoothing and Otsu's threshold see no NaN).

    Returns
    -------
    image : ndarray of float64, shape S or S + (C,)
        A new array, or a read-only view of a C-contiguous float64 image
        without NaN or infinite pixels: the caller's array is never modified.
    spatial_shape : tuple of int
        ``S``.

    Raises
    ------
    TypeError
        Complex or non-numeric dtype, non-integer ``channel_axis``.
    ValueError
        Wrong number of axes, empty image, NaN or infinite pixels (inside
        ``mask`` when one is given).
    InsufficientMemoryError
        The float64 copy alone would not fit in the available memory.
    """
    shape, dtype, source = _peek(image)
    if dtype.kind == "c":
        raise TypeError("image is complex; pass a real image, e.g. np.abs(image) for the magnitude.")
    if dtype.kind not in "biuf":
        raise TypeError(f"image has dtype {dtype}; pass a numeric (bool, integer or float) array.")
    ndim = len(shape)
    if channel_axis is not None:
        if not is_integer(channel_axis):
            raise TypeError(f"channel_axis={channel_axis!r} must be an integer axis index (e.g. -1) or None.")
        channel_axis = int(channel_axis)
        if not -ndim <= channel_axis < ndim:
            raise ValueError(f"channel_axis={channel_axis} is out of range for an image with {ndim} axes.")
        spatial_shape = tuple(s for i, s in enumerate(shape) if i != channel_axis % ndim)
        n_channels = shape[channel_axis]
    else:
        spatial_shape = tuple(shape)
        n_channels = 1
    if len(spatial_shape) not in (2, 3):
        raise ValueError(
            f"image has {len(spatial_shape)} spatial axes (shape {tuple(shape)}); segment takes "
            "2D or 3D images. Select one frame (image[t]) for time series, or pass channel_axis "
            "for a channel axis."
        )
    if min(spatial_shape) < 1 or n_channels < 1:
        raise ValueError(f"image is empty (shape {tuple(shape)}); pass an image with at least one pixel.")
    n_pixels = int(np.prod(spatial_shape, dtype=np.int64))
    # Only the copies made before the mask is known; the pipeline checks the
    # graph and eigenvectors once it knows how many pixels are masked.
    check_image_memory(n_pixels, n_channels, ndim=len(spatial_shape))
    array = np.asarray(source)
    if channel_axis is not None:
        array = np.moveaxis(array, channel_axis, -1)
    if array.dtype == np.float64 and array.flags.c_contiguous:
        # Nothing downstream writes into the image: a read-only view spares
        # a copy of it (512 MB at 8192 x 8192) and keeps the caller's array safe.
        out = array.view()
        out.flags.writeable = False
    else:
        out = array.astype(np.float64, copy=True)
    # A NaN makes the minimum NaN, an infinity the minimum or maximum: two passes, no boolean image.
    if not (np.isfinite(out.min()) and np.isfinite(out.max())):
        out = out if out.flags.writeable else out.copy()
        _fill_outside_mask(out, tuple(spatial_shape), mask)
    return out, tuple(spatial_shape)


def _fill_outside_mask(out: np.ndarray, spatial_shape: tuple, mask) -> None:
    """Replace non-finite pixels outside ``mask`` by the nearest finite pixel, in place; refuse any inside."""
    bad = ~np.isfinite(out)
    if bad.ndim > len(spatial_shape):
        bad = bad.any(axis=-1)
    n_bad = int(np.count_nonzero(bad))
    if mask is None:
        raise ValueError(
            f"image has {n_bad} NaN or infinite pixel(s); replace them first, "
            "e.g. np.nan_to_num(image), or leave them out with a mask (mask=, segment's --mask, a mask layer)."
        )
    inside = check_mask(mask, spatial_shape)
    n_inside = int(np.count_nonzero(bad & inside))
    if n_inside:
        raise ValueError(
            f"image has {n_inside} NaN or infinite pixel(s) inside the mask; replace them first, "
            "e.g. np.nan_to_num(image), or leave them out of the mask."
        )
    if n_bad == bad.size:
        out[...] = 0.0  # nothing finite: the mask is empty, and says so later
        return
    import scipy.ndimage as ndi

    nearest = ndi.distance_transform_edt(bad, return_distances=False, return_indices=True)
    out[bad] = out[tuple(index[bad] for index in nearest)]


def check_mask(mask, spatial_shape) -> np.ndarray | None:
    """Validate a mask's shape and dtype; returns it as a boolean array (or None)."""
    if mask is None:
        return None
    mask = as_array(mask, "mask")
    if mask.shape != tuple(spatial_shape):
        raise ValueError(
            f"mask has shape {mask.shape} but the image's spatial shape is {tuple(spatial_shape)}; "
            "pass a mask drawn on this image."
        )
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"mask has dtype {mask.dtype}; pass a boolean (or 0/1 integer) array.")
    if mask.dtype.kind == "f" and not np.all(np.isfinite(mask)):
        raise ValueError("mask has NaN or infinite values; pass a boolean array, e.g. mask=labels > 0.")
    return mask != 0


# Above this many segments, each must have this many pixels of the mask on
# average: a segment of one or two pixels has no edges to cut along, and the
# k-dependent work (eigenvectors n x k, k-means n x k^2, the boundary
# refinement's k^3) is what made n_clusters=900 on 30 x 30 take 30 s and 5.7 GB.
MIN_PIXELS_PER_SEGMENT = 4
_FEW_SEGMENTS = 64


def check_segment_count(n_clusters: int, n_masked: int) -> None:
    """Refuse more segments than the mask can hold: one pixel each at most, 4 pixels each above 64 segments."""
    if n_clusters > n_masked:
        raise ValueError(
            f"n_clusters={n_clusters} is larger than the {n_masked} pixel(s) in the mask; "
            "lower n_clusters or enlarge the mask."
        )
    most = max(_FEW_SEGMENTS, n_masked // MIN_PIXELS_PER_SEGMENT)
    if n_clusters > most:
        raise ValueError(
            f"n_clusters={n_clusters} asks for segments of {n_masked / n_clusters:.1f} pixel(s) each on average "
            f"in a mask of {n_masked} pixels; use at most {most} (one per {MIN_PIXELS_PER_SEGMENT} pixels), "
            "or enlarge the mask."
        )


# ---------------------------------------------------------------- numerical guards

# Edge weights are float32; gradients and the squares in their standard
# deviation must stay finite. Power-of-two scaling is exact and the weights
# exp(-beta * gradient / std) do not depend on the image's scale.
_MAX_ABS = 2.0**60
_MIN_ABS = 2.0**-60


def scale_for_graph(data: np.ndarray) -> np.ndarray:
    """``data`` times a power of two if its magnitude would overflow or underflow float32.

    The edge weights are invariant to the scale of the image, so this only
    avoids ``inf`` gradients (values near 1e300) or all-zero ones (near 1e-300).
    Returns ``data`` itself when no scaling is needed.
    """
    if data.size == 0:
        return data
    peak = max(abs(float(data.max())), abs(float(data.min())))  # no full-size temporary
    if peak == 0.0 or _MIN_ABS <= peak <= _MAX_ABS:
        return data
    exponent = -int(np.frexp(peak)[1])  # peak * 2**exponent in [0.5, 1)
    return np.ldexp(data, exponent)


def floor_edge_weights(graph: sp.csr_array) -> sp.csr_array:
    """Raise underflowed (zero) edge weights to the smallest normal float, in place.

    A very large ``beta`` or a single bright pixel in a large dark image can
    make ``exp(-beta * gradient / std)`` underflow to 0, leaving nodes with
    zero degree inside a connected component, which the normalised Laplacian
    cannot handle (division by zero, then NaNs in the eigen-solver). The floor
    keeps them attached by a negligible weight, so they come out as their own
    segment, which is what the limit of ever-weaker edges gives.
    """
    if graph.nnz:
        tiny = np.finfo(graph.dtype).tiny
        data = graph.data
        if not (data.min() >= tiny):  # also true for NaN
            np.fmax(data, tiny, out=data)
    return graph


def warn_if_constant(data: np.ndarray, mask: np.ndarray) -> bool:
    """Warn if the image is constant inside the mask; returns whether it is.

    A constant image is segmented (every edge weight is 1, so the segments are
    the spectral partition of the pixel grid itself: geometric pieces of the
    mask, not objects), but that is rarely what the user wants.
    """
    values = data[mask]
    if values.size > 1 and np.all(values == values.reshape(len(values), -1)[0]):
        warnings.warn(
            "image is constant inside the mask (zero gradient everywhere): all edge weights are "
            "equal, so the segments are an arbitrary geometric split of the mask, not objects. "
            "Check the image, channel_axis and threshold.",
            UserWarning,
            stacklevel=2,
        )
        return True
    return False
