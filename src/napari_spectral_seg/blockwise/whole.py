"""The client's side of the whole-image decisions: submit the passes of :mod:`.decide`, combine their answers.

:func:`decide_whole_image` returns a :class:`Decisions` of plain numbers
(recorded with the result and in the resume state): the smoothing and
smallest piece (measured on a central sample), the threshold, the edges'
background, the typical object size (on the whole image, :mod:`.typical`),
the overlap and which blocks hold foreground.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..core.adapt import noise_threshold, smoothed_noise, split_contrast
from ..core.mask import otsu_from_histogram
from . import decide
from .dim import decide_dim
from .glass import find_glass
from .grid import EDGE_REACH, smoothing_reach
from .passes import ImagePasses, split_medians
from .surface import cell_grid
from .typical import whole_image_typical_size

__all__ = ["Decisions", "central_sample", "decide_whole_image"]

# A sample for sigma and min_size holds at most this many blocks' worth of pixels.
SAMPLE_BLOCKS = 4


@dataclass
class Decisions:
    """Whole-image numbers every block gets.

    ``sigma`` is the checked form (see ``core.params.check_sigma``), stored
    as a list in JSON; the others are numbers or None.
    """

    sigma: object
    sigma_used: object
    min_size: int
    threshold: float
    edge_background: float | None
    edge_level_used: float | None
    object_size: float | None
    overlap: int
    foreground: list
    range: list
    scales: dict
    sample_box: list | None
    seconds: dict
    # What auto mode's typical size was measured on (see .typical): measured_on "whole image",
    # components, pieces, missed_components and the blocks that missed some or read farther.
    typical: dict | None = None
    # Polarity and background (see .correction): what was decided and what the blocks read.
    correction: dict | None = None
    # Glass blocks (see .glass): the coarse level, its factors, the cut and how many.
    glass: dict | None = None
    # Auto mode's empty/sparse-field rule (core.adapt.check_foreground): foreground_contrast,
    # Otsu's threshold, and threshold_rule "noise" where it replaced it (None: the rule did not run).
    field_rule: dict | None = None
    # Blocks of one smoothed value, not read after the range pass (see .passes).
    constant_blocks: int = 0
    # The dim-object search's decisions (see .dim; None: no search): surface, offset, deviation, levels.
    dim: dict | None = None

    def as_json(self) -> dict:
        values = asdict(self)
        values["sigma"] = list(self.sigma) if self.sigma is not None else None
        return values

    @classmethod
    def from_json(cls, values: dict) -> Decisions:
        values = dict(values)
        sigma = values["sigma"]
        if sigma is not None:
            values["sigma"] = ("scalar", float(sigma[1])) if sigma[0] == "scalar" else tuple(map(float, sigma))
        return cls(**values)


class _Clock:
    """Seconds per decision, for the record."""

    def __init__(self):
        self.seconds = {}
        self.last = time.perf_counter()

    def tick(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now


def _settings(client, source, params, spacing, block_size, sample_pixels):
    """sigma (checked), sigma_used, min_size, the measured scales and the sample box."""
    if params.sigma != "auto" and params.min_size != "auto":
        sigma = decide.resolved_sigma(params, source.shape, spacing)
        return sigma, params.sigma, int(params.min_size), {}, None
    box = central_sample(source, block_size, sample_pixels)
    scales = client.gather(client.submit(decide.sample_scales, source, box, params, spacing, pure=False))
    sigma = scales.pop("sigma")
    min_size = scales.pop("min_size")
    return sigma, scales.get("sigma_used"), min_size, scales, [list(b) for b in box]


def central_sample(source, block_size, sample_pixels) -> tuple:
    """The central box the image-chosen settings are measured on (``sample_pixels``, default four blocks).

    ``sigma``, ``min_size``, the polarity and the background; not the
    typical object size, which is measured on the whole image.
    """
    if sample_pixels is None:
        sample_pixels = SAMPLE_BLOCKS * int(np.prod(np.broadcast_to(block_size, (source.ndim,))))
    return decide.central_box(source.shape, sample_pixels)


def _threshold(passes, params):
    """The threshold (as given, or Otsu's), the range of the smoothed image, and each read block's range.

    A block's range is over its core grown by the edges' reach, where an
    object's edge may grow into the core: a block with nothing above the
    threshold there owns no piece. Glass blocks have none.
    """
    read = passes.read_blocks()
    found = passes.over_image(decide.block_range, margin=EDGE_REACH)
    lo, hi = min(r[0] for r in found), max(r[1] for r in found)
    ranges = {block.key: r for block, r in zip(read, found)}
    passes.note_ranges(ranges)
    if isinstance(params.threshold, str):
        counts = passes.over_image(decide.block_histogram, lo, hi)
        threshold = otsu_from_histogram(np.sum(counts, axis=0), lo, hi)
    else:
        threshold = float(params.threshold)
    return threshold, [lo, hi], ranges


def _split_decisions(passes, params, scales, sigma_used, threshold, value_range):
    """The threshold after auto mode's field rule, the edges' background and level, and the rule's record.

    As ``core.pipeline`` (``core.adapt.check_foreground``): in auto mode with
    an automatic threshold, the pixels above Otsu's must stand out of the
    smoothed noise, else the threshold is the image's median plus a few
    noise deviations. The medians are exact (:func:`.passes.split_medians`);
    the noise is that of the sample (of the whole image when it fits).
    """
    auto = params.n_clusters == "auto"
    edge_level = params.used_edge_level() if auto else None
    noise_left = 0.0
    if auto and isinstance(params.threshold, str):
        noise_left = smoothed_noise(
            dict(noise=scales.get("noise"), sigma_used=sigma_used), passes.source.ndim, passes.spacing
        )
    wanted = ({"below"} if edge_level is not None else set()) | ({"below", "above", "all"} if noise_left else set())
    lo, hi = value_range
    medians = split_medians(passes, lo, threshold, hi, wanted) if wanted else {}
    rule = None
    if noise_left and medians["below"] is not None and medians["above"] is not None:
        contrast, holds = split_contrast(medians["above"], medians["below"], noise_left)
        rule = dict(foreground_contrast=round(contrast, 3), contrast=contrast, otsu_threshold=threshold)
        if not holds:
            threshold = noise_threshold(medians["all"], noise_left)
            rule["threshold_rule"] = "noise"
            if edge_level is not None:
                medians = split_medians(passes, lo, threshold, hi, {"below"})
    background = medians.get("below") if edge_level is not None else None
    if background is None:
        edge_level = None  # nothing at or below the threshold, as in memory
    return threshold, background, edge_level, rule


def _overlap(source, sigma, spacing, object_size, given):
    """The overlap: as given, else six typical object sides plus the smoothing's reach."""
    if given is not None:
        return int(given)
    reach = int(smoothing_reach(decide.sigma_per_axis(sigma, spacing, source.ndim)).max()) + 4
    if not object_size:
        return 32 + reach
    side = float(object_size) ** (1.0 / source.ndim)
    return max(16, int(math.ceil(6.0 * side))) + reach


def decide_whole_image(
    client, source, blocks, params, spacing, *, block_size, overlap, sample_pixels, scratch
) -> Decisions:
    """Every whole-image decision, computed on the cluster; see the module docstring.

    ``scratch``: the directory the dim-object search's background grid is saved in, for the workers.
    """
    clock = _Clock()
    sigma, sigma_used, min_size, scales, sample_box = _settings(
        client, source, params, spacing, block_size, sample_pixels
    )
    clock.tick("settings")
    reach = smoothing_reach(decide.sigma_per_axis(sigma, spacing, source.ndim))
    glass = find_glass(client, source, blocks, params, reach + EDGE_REACH)
    passes = ImagePasses(client, source, blocks, sigma, spacing, glass)
    clock.tick("glass")
    threshold, value_range, ranges = _threshold(passes, params)
    clock.tick("threshold")
    threshold, background, edge_level, rule = _split_decisions(
        passes, params, scales, sigma_used, threshold, value_range
    )
    clock.tick("edge_background")
    settings = dict(scales, sigma_used=sigma_used, threshold_used=threshold, range=value_range, **(rule or {}))
    dim = decide_dim(
        client, passes, params, settings, lambda view, cell: cell_grid(client, view, cell, block_size, scratch)
    )
    clock.tick("dim_search")
    object_size, typical = None, None
    if params.n_clusters == "auto":
        # Only a block with a pixel above the threshold in its core can own a component.
        holding = [block for block in blocks if block.key in ranges and ranges[block.key][1] > threshold]
        object_size, typical = whole_image_typical_size(
            client, source, holding, sigma, spacing, threshold, min_size, params, block_size
        )
    clock.tick("object_size")
    # A dim object's pixels lie above the low threshold, those of the others above the threshold.
    lowest = threshold if dim is None else min(threshold, dim["lowest"])
    return Decisions(
        sigma=sigma,
        sigma_used=sigma_used,
        min_size=int(min_size),
        threshold=float(threshold),
        edge_background=background,
        edge_level_used=edge_level,
        object_size=object_size,
        overlap=_overlap(source, sigma, spacing, object_size, overlap),
        # Glass blocks have no range: never foreground.
        foreground=[block.key for block in blocks if block.key in ranges and ranges[block.key][1] > lowest],
        range=value_range,
        scales=scales,
        sample_box=sample_box,
        seconds=clock.seconds,
        typical=typical,
        glass=glass.record() if glass is not None else None,
        field_rule=rule,
        constant_blocks=len(passes.constant),
        dim=dim,
    )
