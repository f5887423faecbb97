"""Frame-by-frame segmentation of stacks with leading axes (t, y, x / t, z, y, x / ...).

Spectral segmentation is defined on one 2D image or 3D volume; a time series
is segmented one frame at a time, every frame on its own (labels restart at
1 in each frame; no tracking). :func:`iter_segment_frames` is a generator
like :func:`napari_spectral_seg.core.pipeline.iter_segment`, so the napari
worker can drive and cancel it the same way; :func:`segment_frames` runs it
to the end.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Generator

import numpy as np

from .params import SegmentationParams, check_random_state
from .pipeline import EmptyMaskError, Progress, iter_segment
from .progress import relay, run_to_end
from .validation import as_array

__all__ = ["iter_segment_frames", "segment_frames"]


def _frame_layout(shape, spatial_ndim, channel_axis):
    """Normalise the axes: returns (channel_axis >= 0 or None, leading shape, spatial shape)."""
    if isinstance(spatial_ndim, bool) or not isinstance(spatial_ndim, numbers.Integral) or spatial_ndim not in (2, 3):
        raise ValueError(f"spatial_ndim={spatial_ndim!r} must be 2 (y, x frames) or 3 (z, y, x frames).")
    ndim = len(shape)
    if channel_axis is not None:
        if (
            isinstance(channel_axis, bool)
            or not isinstance(channel_axis, numbers.Integral)
            or not (-ndim <= channel_axis < ndim)
        ):
            raise ValueError(f"channel_axis={channel_axis!r} is out of range for an image with {ndim} axes.")
        channel_axis = int(channel_axis) % ndim
        non_channel = tuple(s for i, s in enumerate(shape) if i != channel_axis)
    else:
        non_channel = tuple(shape)
    if len(non_channel) < spatial_ndim:
        raise ValueError(
            f"image has {len(non_channel)} non-channel axes (shape {tuple(shape)}) but spatial_ndim={spatial_ndim}; "
            f"lower spatial_ndim or pass an image with at least {spatial_ndim} spatial axes."
        )
    return channel_axis, non_channel[: len(non_channel) - spatial_ndim], non_channel[len(non_channel) - spatial_ndim :]


def iter_segment_frames(
    image,
    mask=None,
    *,
    spatial_ndim: int,
    channel_axis: int | None = None,
    random_state: int | None = None,
    **kwargs,
) -> Generator[Progress, None, np.ndarray]:
    """Segment every frame of a stack independently, step by step.

    Parameters
    ----------
    image : array_like, shape L + S, plus a channel axis anywhere if ``channel_axis``
        ``S`` are the last ``spatial_ndim`` non-channel axes; the leading
        axes ``L`` (time, positions, ...) index the frames. numpy or dask
        (frames are read one at a time).
    mask : array_like of bool, shape L + S or S, optional
        Per-frame masks, or one mask used for every frame.
    spatial_ndim : {2, 3}
        Number of spatial axes of one frame.
    channel_axis : int, optional
        Axis of ``image`` holding channels.
    random_state : int, optional
        The same seed is used for every frame, so a frame's labels equal
        ``segment(image[t], random_state=seed, ...)``. ``None`` draws one.
    **kwargs
        Any other parameter of :func:`napari_spectral_seg.segment`
        (``threshold``, ``n_clusters``, ``sigma``, ``spacing``, ...). A
        threshold of "otsu" is computed per frame.

    Yields
    ------
    Progress
        ``fraction`` covers the whole stack; ``message`` names the frame.
        Closing the generator cancels the run between (or within) frames.

    Returns
    -------
    ndarray of int32, shape L + S
        Each frame labelled ``1..M_t`` on its own, 0 background. A frame
        with nothing to segment (empty mask) is all 0.
    """
    shape = tuple(np.shape(image if hasattr(image, "shape") else as_array(image, "image")))
    channel_axis, leading, spatial = _frame_layout(shape, spatial_ndim, channel_axis)
    if channel_axis is not None:
        # Channels last so a frame is image[index] for an index over L.
        # np.moveaxis dispatches to dask's own (NEP 18), so nothing is loaded here.
        image = (
            np.moveaxis(image, channel_axis, -1)
            if hasattr(image, "__array_function__")
            else np.moveaxis(np.asarray(image), channel_axis, -1)
        )
    if mask is not None:
        mask = as_array(np.ma.filled(mask, 0) if isinstance(mask, np.ma.MaskedArray) else mask, "mask")
        if mask.shape not in (leading + spatial, spatial):
            raise ValueError(
                f"mask has shape {mask.shape}; pass one of shape {leading + spatial} (per frame) "
                f"or {spatial} (the same for every frame)."
            )
    # One seed for every frame (drawn once if None), so frame t equals segment(image[t]);
    # the parameters are checked once, before the first frame.
    params = SegmentationParams(
        channel_axis=-1 if channel_axis is not None else None,
        random_state=check_random_state(random_state),
        **kwargs,
    )
    labels = np.zeros(leading + spatial, dtype=np.int32)
    frames = list(np.ndindex(*leading)) if leading else [()]
    n = len(frames)
    for i, index in enumerate(frames):
        frame_mask = None if mask is None else (mask if mask.shape == spatial else mask[index])
        name = f"frame {index}" if leading else "image"

        def in_stack(update, i=i, name=name):
            return Progress(update.step, (i + update.fraction) / n, f"{name} ({i + 1} of {n}): {update.message}")

        steps = iter_segment(image[index] if index else image, frame_mask, params)
        try:
            result = yield from relay(steps, in_stack)
        except EmptyMaskError:
            continue  # nothing in this frame (e.g. before the cells appear): labels stay 0
        labels[index] = result.labels
    return labels


def segment_frames(
    image,
    mask=None,
    *,
    spatial_ndim: int,
    channel_axis: int | None = None,
    progress: Callable[[Progress], object] | None = None,
    **kwargs,
) -> np.ndarray:
    """Segment every frame of a stack independently.

    See :func:`iter_segment_frames` for the parameters. ``progress`` is
    called with a :class:`Progress` between steps; raising
    :class:`napari_spectral_seg.SegmentationCancelled` from it stops the run.

    Returns
    -------
    ndarray of int32, the image's shape without the channel axis
    """
    steps = iter_segment_frames(image, mask, spatial_ndim=spatial_ndim, channel_axis=channel_axis, **kwargs)
    return run_to_end(steps, progress)
