"""Spectral segmentation engine: numpy, scipy and scikit-learn only (no Qt, no napari)."""

from .edit import merge_labels, split_label
from .eigen import EIGEN_SOLVERS, laplacian_eigenvectors, normalized_laplacian
from .frames import iter_segment_frames, segment_frames
from .graph import build_pixel_graph, index_pixels
from .labels import cluster_embedding, relabel_by_first_pixel
from .mask import otsu_threshold, resolve_mask
from .memory import available_memory, check_memory, estimate_peak_bytes
from .multilevel import multilevel_eigenvectors
from .params import SegmentationParams
from .pipeline import SegmentationResult, iter_segment, segment
from .progress import STEPS, Progress, SegmentationCancelled, run_to_end

__all__ = [
    "EIGEN_SOLVERS",
    "STEPS",
    "available_memory",
    "check_memory",
    "estimate_peak_bytes",
    "multilevel_eigenvectors",
    "Progress",
    "SegmentationCancelled",
    "SegmentationParams",
    "SegmentationResult",
    "build_pixel_graph",
    "cluster_embedding",
    "index_pixels",
    "iter_segment",
    "iter_segment_frames",
    "laplacian_eigenvectors",
    "merge_labels",
    "split_label",
    "normalized_laplacian",
    "otsu_threshold",
    "relabel_by_first_pixel",
    "resolve_mask",
    "run_to_end",
    "segment",
    "segment_frames",
]
