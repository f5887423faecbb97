"""Blockwise segmentation of images larger than memory, on a dask cluster, OME-Zarr in and out.

``segment_blockwise(input, output, block_size=..., **parameters)`` (and
``napari-spectral-seg segment INPUT -o OUT.zarr --block-size N``) cuts the
image into blocks; workers read each block with an overlap around it from
the input store, segment it with the core pipeline and keep the connected
pieces of the mask the block owns; the labels are written as an OME-Zarr
labels image. Decisions the in-memory pipeline takes from the whole image
(Otsu's threshold, the typical object size, the edges' background, and from
a recorded central sample the smoothing and the smallest piece) are taken
once and passed to every block as fixed numbers, so the
labels equal those of :func:`napari_spectral_seg.segment` object for object.

Modules: :mod:`.source` (the input), :mod:`.grid` (blocks, cores, regions),
:mod:`.decide` (the workers' side of the whole-image decisions),
:mod:`.whole` (the client's side), :mod:`.typical` (auto mode's typical
size from the whole image), :mod:`.block` (one block on a worker),
:mod:`.assemble` (chunks and the OME-Zarr labels image), :mod:`.cancel`
(waits the widget's Cancel interrupts), :mod:`.run`
(:func:`segment_blockwise`). Needs the ``[batch]`` extra (dask.distributed,
zarr, ome-zarr); importing this package imports none of them.
"""

from .cancel import BlockwiseCancelled
from .run import BlockwiseError, segment_blockwise
from .source import SourceError, open_source

__all__ = ["BlockwiseCancelled", "BlockwiseError", "SourceError", "open_source", "segment_blockwise"]
