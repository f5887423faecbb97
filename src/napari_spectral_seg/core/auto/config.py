"""The settings of auto mode: the tuned thresholds in one place, and the checks of its parameters.

Every rule of :mod:`napari_spectral_seg.core.auto`, and every choice the
pipeline takes from the image itself (``sigma`` and ``min_size`` "auto",
the automatic threshold's check against noise, ``polarity`` and
``background`` "auto", the dim objects of ``low_threshold`` "auto", the
object edges), reads its thresholds from an :class:`AutoConfig` passed down
to it (``auto_config=``), so a study of one rule can change one field
without touching the code. How the defaults were chosen is recorded in
``docs/auto_tuning.md``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

from ..params import DEFAULT_SENSITIVITY

__all__ = ["DEFAULT_SENSITIVITY", "AutoConfig", "default_min_part", "resolve_config"]

# The default sensitivity (declared with the parameters) is the split threshold
# on the pass/hill ratio: single objects score close to 1, touching pairs well below.


@dataclass(frozen=True)
class AutoConfig:
    """Thresholds of the automatic split (see :mod:`napari_spectral_seg.core.auto`) and of the
    settings chosen from the image (:mod:`~napari_spectral_seg.core.adapt`,
    :mod:`~napari_spectral_seg.core.background`, :mod:`~napari_spectral_seg.core.dim`,
    :mod:`~napari_spectral_seg.core.edges`).

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

    # --- settings chosen from the image: sigma="auto", min_size="auto" (core/adapt.py)
    #: Smoothing widens until the smoothed noise is at most this fraction of the object-to-background contrast.
    noise_to_contrast: float = 1.0 / 8.0
    #: Smoothing is never wider than this fraction of the typical object radius.
    sigma_per_radius: float = 0.25
    #: Smoothing widens while the foreground holds more brightness peaks than this per typical object.
    peaks_per_object: int = 8
    #: ``min_size="auto"``: pieces smaller than this fraction of the typical object's area (volume) are specks.
    min_size_per_object: float = 0.1

    # --- the automatic threshold against noise (core/adapt.py, check_foreground)
    #: Otsu's split holds objects when the pixels above it are this many noise deviations brighter than the rest.
    foreground_to_noise: float = 3.0
    #: Where it split noise, objects are what lies this many noise deviations above the image's median.
    noise_threshold_deviations: float = 5.0

    # --- polarity="auto", background="auto" (core/background.py)
    #: Objects are dark only where the bright class of Otsu's split holds more than this share of the image...
    dark_share_of_image: float = 0.6
    #: ...and more than this share of the image's border.
    dark_share_of_border: float = 0.8
    #: Blocks per axis of the field's slow variation, taken out before the polarity is decided.
    polarity_blocks: int = 8
    #: A background that varies by less than this share of the object contrast is flat (left alone).
    background_variation: float = 0.2
    #: Width of the background's blocks, in typical object diameters.
    background_block_diameters: float = 2.0
    #: The background of a block: this percentile of its intensities.
    background_percentile: float = 10.0

    # --- dim objects below the threshold (core/dim.py)
    #: ``low_threshold="auto"`` is the background plus this many deviations; a dim object's peak stands
    #: as many above its highest saddle.
    dim_deviations: float = 5.0

    # --- object edges (core/edges.py)
    #: An object's bright level: this percentile of its intensities.
    bright_percentile: float = 95.0
    #: How far (pixels along the finest axis) an edge may move outwards: the blur of a widefield
    #: edge, not a search for missed objects.
    edge_reach: float = 3.0

    # --- smallest piece a split may cut off (with ``min_size``)
    #: Floor in 2D (pixels).
    min_part_2d: int = 10
    #: Floor in 3D (voxels).
    min_part_3d: int = 30

    def __post_init__(self):
        for field in fields(self):
            _check_field(field.name, field.type, getattr(self, field.name))


def _check_field(name: str, kind: str, value) -> None:
    """Refuse a field of the wrong type or out of range, naming it (a run would fail later, far from it)."""
    where = f"AutoConfig.{name}={value!r}"
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{where} must be True or False.")
        return
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(
                f"{where} must be a whole number >= 1, e.g. {AutoConfig.__dataclass_fields__[name].default}."
            )
        return
    default = AutoConfig.__dataclass_fields__[name].default
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be a finite number >= 0, e.g. {default:g}.")
    if name.endswith("_percentile") and value > 100:
        raise ValueError(f"{where} is a percentile: pass one in [0, 100], e.g. {default:g}.")


def resolve_config(config: AutoConfig | None) -> AutoConfig:
    """``config``, or the defaults when it is None."""
    return AutoConfig() if config is None else config


def default_min_part(min_size: int, n_spatial: int, config: AutoConfig | None = None) -> int:
    """Smallest piece a split may cut off: ``min_size``, at least the config's floor for 2D or 3D."""
    config = resolve_config(config)
    return max(int(min_size), config.min_part_2d if n_spatial == 2 else config.min_part_3d)
