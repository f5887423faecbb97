"""What a segmentation gives back: :class:`SegmentationResult`, or :class:`EmptyMaskError` when nothing is left."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["EmptyMaskError", "SegmentationResult"]


class EmptyMaskError(ValueError):
    """Nothing to segment: the mask (after threshold and min_size) has no pixel.

    An error for one image; a time series treats such a frame as empty
    (all labels 0) and goes on.
    """


@dataclass
class SegmentationResult:
    """Labels and what was used to compute them.

    Attributes
    ----------
    labels : ndarray of int32, spatial shape of the image
        0 outside the mask (and in dropped components), 1..M inside.
    parameters : dict
        Every parameter of the run, with ``random_state`` resolved to the
        integer seed actually used and ``threshold_used`` the numeric threshold.
    n_components : int
        Connected components of the mask that were segmented.
    eigenvalues : list of ndarray
        Per component, the Laplacian eigenvalues computed.
    seconds : dict
        Wall time per step.
    measurements : dict or None
        Per-object table of the labels (:mod:`.measure`) when the caller
        measured them (the widget's engine does); None otherwise.
    """

    labels: np.ndarray
    parameters: dict
    n_components: int = 0
    eigenvalues: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    measurements: dict | None = None
