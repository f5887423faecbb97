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
    "segment_frames",
]
