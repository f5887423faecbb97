"""napari-spectral-seg: segment microscopy images by spectral clustering of the pixel graph."""

from .core import (
    Progress,
    SegmentationCancelled,
    SegmentationParams,
    SegmentationResult,
    build_pixel_graph,
    iter_segment,
    iter_segment_frames,
    segment,
    segment_frames,
)
from .data import four_circles, textured_nuclei, touching_blobs

__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use: the blockwise engine's needs (dask, zarr,
    # ome-zarr) stay out of `import napari_spectral_seg`.
    if name == "segment_blockwise":
        from .blockwise import segment_blockwise

        return segment_blockwise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Progress",
    "SegmentationCancelled",
    "SegmentationParams",
    "SegmentationResult",
    "build_pixel_graph",
    "four_circles",
    "textured_nuclei",
    "touching_blobs",
    "iter_segment",
    "iter_segment_frames",
    "segment",
    "segment_blockwise",
    "segment_frames",
]
