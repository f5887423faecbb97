"""The settings of auto mode: the tuned thresholds in one place, and the checks of its parameters.

Every rule of :mod:`napari_spectral_seg.core.auto` reads its thresholds from
an :class:`AutoConfig` passed down to it, so a study of one rule can change
one field without touching the code. How the defaults were chosen is
recorded in ``docs/auto_tuning.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..params import DEFAULT_SENSITIVITY

__all__ = ["DEFAULT_SENSITIVITY", "AutoConfig", "default_min_part"]

# The default sensitivity (declared with the parameters) is the split threshold
# on the pass/hill ratio: single objects score close to 1, touching pairs well below.


@dataclass(frozen=True)
class AutoConfig:
    """Thresholds of the automatic split (see :mod:`napari_spectral_seg.core.auto`).

    "Typical sizes" are area-equivalent multiples of the typical object size
    (volume ratios to the power 2/3 in 3D), except in ``moment_smallest``
    and ``notch_smallest``, which are plain fractions of its pixel count.

    Each rule after the first split can be turned off on its own, for an
    ablation study (``bench/ablation.py``): ``notch_ratio=0``,
    ``moment_ratio=0``, ``use_sliver_merge=False``. With every field at its
    default the labels are those of the full rule set.
    """

    # --- landscape and candidate cuts
    #: Added to every edge weight, so the pixel graph stays connected while boundary edges stay cheap.
    weight_floor: float = 1e-3
    #: Most candidate cuts tested per bisection (more only refine the cut position).
    max_candidates: int = 256
    #: Width (pixels) of the averaging of the intensity cue, so pixel noise makes no passes.
    cue_sigma: float = 1.0

    #: Skip the sweep of a part that provably has no cut below the threshold
    #: (:func:`~napari_spectral_seg.core.auto.bisection.no_pass_below`): the same labels,
    #: without the eigen-solve, but the skipped ratios are missing from ``split_ratios``.
    skip_clear_parts: bool = True

    # --- shape moments (3D)
    #: A piece whose 2-means split leaves less than this fraction of its second moment is two objects (0: off).
    moment_ratio: float = 0.6
    #: Only pieces of at least this many typical sizes are tested for two clusters.
    moment_min_size: float = 0.9
    #: Each half of such a split holds at least this many typical sizes (a plain fraction of its voxel count).
    moment_smallest: float = 0.4

    # --- slivers
    #: Pieces cut off inside a component below this many typical sizes rejoin a neighbour.
    sliver: float = 0.25
    #: Whether such slivers rejoin a neighbour at all.
    use_sliver_merge: bool = True

    # --- notches (2D)
    #: A notch of the outline counts when it reaches at least this many pixels inside the convex hull.
    notch_min_depth: float = 1.5
    #: A notch cut needs the two notches' summed depth to be at least this times the cut's length (0: off).
    notch_ratio: float = 0.3
    #: ...and the cut at most this many times the smaller side's equivalent diameter.
    notch_seam: float = 1.1
    #: Only pieces of at least this many typical sizes are tried for a notch cut.
    notch_min_size: float = 1.2
    #: Each side of a notch cut holds at least this many typical sizes.
    notch_smallest: float = 0.35


def default_min_part(min_size: int, n_spatial: int) -> int:
    """Smallest piece a split may cut off: ``min_size``, at least 10 px (2D) or 30 voxels (3D)."""
    return max(int(min_size), 10 if n_spatial == 2 else 30)
