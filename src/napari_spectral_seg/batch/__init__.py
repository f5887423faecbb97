"""Batch segmentation of many images and time-series frames on a dask cluster.

``napari-spectral-seg batch INPUT... --out DIR`` expands the inputs (files
or glob patterns), cuts every input into frames, and submits one
:mod:`dask.distributed` task per frame. Each task reads its own frame from
the file (by path and index), runs the same pipeline as
:func:`napari_spectral_seg.segment` and returns the labels, so a batch result
is identical to calling ``segment`` on every frame with the same parameters.

Parameters
    Resolved once, before any cluster starts, into one
    :class:`~napari_spectral_seg.core.params.SegmentationParams`: the tool
    defaults, overridden by a parameter file, overridden by flags
    (:func:`resolve_parameters`). That object is what every task receives.

Frames
    An input with more axes than a frame is a time series over its leading
    axes. A frame has ``spatial_ndim`` axes, plus one if a channel axis is
    used. ``spatial_ndim`` is ``--spatial-ndim`` if given, else the length
    of ``spacing`` if given, else 2; so a ``(T, Y, X)`` TIFF is T frames of
    2D by default and one volume with ``--spatial-ndim 3``. ``channel_axis``
    counts within the frame; PNG/JPEG files are 2D and, like RGB(A) TIFFs,
    use their colour channels, whatever the parameters say.

Outputs
    ``DIR/<input stem>_labels.tif`` (int32, the parameters as JSON in the
    TIFF description) for ``.tif``, ``.png``, ``.jpg`` and ``.npy`` inputs; a
    time series gives one TIFF of shape ``leading axes + spatial shape``,
    written once all its frames are done. ``.zarr`` inputs give
    ``DIR/<input stem>_labels.zarr``, chunked one frame per chunk and written
    by the workers directly, so neither the input nor the labels of a long
    series pass through the client; the parameters are in its attributes
    under ``"spectral_seg"``. Labels are numbered 1..M within each frame
    (frames are segmented independently, there is no tracking). Next to
    each output, ``DIR/<input stem>_labels.csv`` is its measurement table
    (:mod:`napari_spectral_seg.core.measure`, measured by the workers; a
    ``frame`` column for a series), written after the labels, which record
    its hash.

Safety
    TIFFs are written under a temporary name and renamed
    (:func:`napari_spectral_seg.io.write_labels`); a zarr output is built in
    ``DIR/.<name>.partial.zarr``, which records the frames already done so
    an interrupted run resumes frame by frame, and is renamed when complete.
    One run at a time writes into ``DIR``: it holds ``DIR/.napari-spectral-seg.lock``
    (:mod:`.lock`), and a second run refuses. A re-run skips inputs whose
    output exists with the same parameters and was made from the same
    content (size and BLAKE2b hash, stored with the output) and whose
    measurement table is there unchanged; a changed input
    is redone, an output made with other parameters is refused, and so is a
    file at an output's path that this package did not write; ``--overwrite``
    redoes or replaces them. A glob leaves out what a batch wrote: our
    ``*_labels.*`` outputs and files inside ``--out``. A scheduler must answer
    within seconds, a cluster left without workers fails the inputs still
    running (:mod:`.cluster`).

Modules: :mod:`.recipe` (the parameters and how they are recorded),
:mod:`.plan` (inputs, frames, what to skip or redo), :mod:`.task` (the
worker's task), :mod:`.store` (outputs and resume records), :mod:`.lock` (one
run per output directory), :mod:`.cluster` (the client, a scheduler checked,
workers watched), :mod:`.run` (submission, results, summary).
"""

from ..io import InputError, ParameterFileError, load_parameters
from .plan import BatchError, InputItem, expand_inputs, frame_indices, output_path
from .recipe import recorded_parameters, resolve_parameters
from .run import BatchInterrupted, run_batch
from .task import segment_frame

__all__ = [
    "BatchError",
    "BatchInterrupted",
    "InputError",
    "InputItem",
    "ParameterFileError",
    "expand_inputs",
    "frame_indices",
    "load_parameters",
    "output_path",
    "recorded_parameters",
    "resolve_parameters",
    "run_batch",
    "segment_frame",
]
