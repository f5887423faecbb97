"""The task each dask worker runs: read one frame, segment it, return or store its labels."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

from ..core import iter_segment
from ..core.measure import measure_labels
from ..core.params import SegmentationParams
from ..core.progress import run_to_end
from ..io import read_frame
from .warning_capture import capture_warnings

if TYPE_CHECKING:
    import numpy as np

__all__ = ["run_frame", "segment_frame", "segmentation_steps"]


def segmentation_steps(image, mask, params: SegmentationParams) -> Generator:
    """The pipeline's progress generator for one image with ``params``.

    The one place the command line and batch call
    :func:`napari_spectral_seg.core.iter_segment`.
    """
    return iter_segment(image, mask, params)


def segment_frame(
    path: str, kind: str, index: tuple[int, ...], params: SegmentationParams, out_zarr: str | None = None
) -> tuple[np.ndarray | None, dict]:
    """Segment one frame of one input: the task each dask worker runs.

    Parameters
    ----------
    path, kind : str
        The input file and its kind ("npy", "tif", "png" or "zarr"; see
        :func:`napari_spectral_seg.io.input_kind`).
    index : tuple of int
        The frame's index along the leading axes (``()`` for a single image).
    params : SegmentationParams
        The batch's parameters, as resolved once on the client.
    out_zarr : str, optional
        A zarr array to write the labels into at ``index`` (then not returned).

    Returns
    -------
    labels : ndarray of int32 or None
        None when written to ``out_zarr``.
    info : dict
        ``index``, ``n_segments``, ``threshold_used``, ``random_state`` (used),
        ``seconds``, ``measurements`` (the frame's table,
        :func:`~napari_spectral_seg.core.measure.measure_labels`) and
        ``warnings`` (the pipeline's warnings, each message once).
    """
    try:
        frame = read_frame(path, kind, index)
    except FileNotFoundError as exc:
        raise OSError(
            "it was removed (or moved) while the batch ran; put it back and run the same command again"
        ) from exc
    except Exception as exc:
        raise OSError(f"cannot read it as an image ({type(exc).__name__}: {exc})") from exc
    with capture_warnings() as caught:  # said by the client, once per input, not in worker logs
        result = run_to_end(segmentation_steps(frame, None, params))
    info = dict(
        warnings=caught,
        index=list(index),
        n_segments=int(result.labels.max()),
        threshold_used=result.parameters["threshold_used"],
        random_state=result.parameters["random_state"],
        seconds=round(result.seconds["total"], 4),
        # Measured here, where the frame is: the client only collects the tables.
        measurements=measure_labels(result.labels, frame, spacing=params.spacing, channel_axis=params.channel_axis),
    )
    if out_zarr is None:
        return result.labels, info
    import zarr

    target = zarr.open_array(out_zarr, mode="r+")
    # One frame is one chunk, so concurrent workers never write the same chunk.
    target[index if index else ...] = result.labels
    return None, info


def run_frame(
    path: str, kind: str, index: tuple[int, ...], params: SegmentationParams, out_zarr: str | None = None
) -> tuple[np.ndarray | None, dict]:
    """The task ``batch`` submits: :func:`segment_frame`, with a failure returned rather than raised.

    A frame that cannot be segmented (an unreadable file, an empty mask...)
    returns ``(None, {"index": [...], "error": message})``: the batch
    reports it as one line, and no worker logs a traceback for it.
    """
    try:
        return segment_frame(path, kind, index, params, out_zarr)
    except Exception as exc:  # the input's failure, reported by the client
        return None, {"index": list(index), "error": str(exc) or type(exc).__name__}
