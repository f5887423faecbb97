"""The client's side of the whole-image decisions: submit the passes of :mod:`.decide`, combine their answers.

:func:`decide` returns a :class:`Decisions` of plain numbers (recorded with
the result and in the resume state): the smoothing and smallest piece, the
threshold, the edges' background, the typical object size, the overlap and
which blocks hold foreground.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..core.mask import otsu_from_histogram
from . import decide
from .glass import find_glass, weighted
from .grid import EDGE_REACH, grow, smoothing_reach

__all__ = ["Decisions", "decide_whole_image"]

# A sample for sigma and min_size holds at most this many blocks' worth of pixels.
SAMPLE_BLOCKS = 4
# The typical size's sample is cut into this many tiles, measured at once on
# as many workers: a fixed number, so the labels do not depend on the size of
# the cluster. Only while every tile keeps MIN_TILE_PIXELS (hundreds of
# nuclei): a smaller sample (so every small image) is measured whole, as in memory.
TYPICAL_TILES = 2
MIN_TILE_PIXELS = 512 * 512


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
    typical_box: list | None
    seconds: dict
    # The tiles of the sample the typical size was measured on: box, size, mask pixels.
    typical_tiles: list | None = None
    # Polarity and background (see .correction): what was decided and what the blocks read.
    correction: dict | None = None
    # Glass blocks (see .glass): the coarse level, its factors, the cut and how many.
    glass: dict | None = None

    def as_json(self) -> dict:
        values = asdict(self)
        values["sigma"] = list(self.sigma) if self.sigma is not None else None
        return values

    @classmethod
    def from_json(cls, values: dict) -> Decisions:
        values = dict(values)
        values["object_size"] = as_typical_size(values.get("object_size"))
        sigma = values["sigma"]
        if sigma is not None:
            values["sigma"] = ("scalar", float(sigma[1])) if sigma[0] == "scalar" else tuple(map(float, sigma))
        return cls(**values)


def as_typical_size(value) -> float | None:
    """One typical size; a resume state of earlier versions holds a list of one per size pass (the last counts)."""
    if isinstance(value, list):
        return float(value[-1]) if value else None
    return None if value is None else float(value)


class _Clock:
    """Seconds per decision, for the record."""

    def __init__(self):
        self.seconds = {}
        self.last = time.perf_counter()

    def tick(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now


def _gather(client, function, boxes, *args):
    """``function(source, box, *args)`` for every box on the cluster, results in box order."""
    futures = [client.submit(function, *args[:1], box, *args[1:], pure=False) for box in boxes]
    return client.gather(futures)


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
    """The central box the image-chosen settings are measured on (``sample_pixels``, default four blocks)."""
    if sample_pixels is None:
        sample_pixels = SAMPLE_BLOCKS * int(np.prod(np.broadcast_to(block_size, (source.ndim,))))
    return decide.central_box(source.shape, sample_pixels)


def _over_image(client, function, blocks, glass, source, *args, margin=0):
    """``function`` over the image: the cores of the blocks read at full resolution, then the glass blocks' stand-ins.

    ``margin`` grows each core (for the range: the smallest and largest
    values do not mind overlaps). A glass block's stand-in is its box of the
    coarse level, unsmoothed, its counts weighted by the pixels each coarse
    pixel covers (:mod:`.glass`).
    """
    read = [grow(b.core, margin, source.shape) for b in blocks if glass is None or b.key not in glass.boxes]
    sigma, spacing, rest = args[0], args[1], args[2:]
    results = _gather(client, function, read, source, sigma, spacing, *rest)
    if glass is not None and glass.boxes:
        stand_in = function if function is decide.block_range else weighted(function, glass.weight)
        results += _gather(client, stand_in, list(glass.boxes.values()), glass.coarse, None, None, *rest)
    return results


def _threshold(client, source, blocks, params, sigma, spacing, glass=None):
    """The threshold, the range of the smoothed image, and the largest value near each block's core (glass: -inf).

    Near: within the edges' reach, where an object's edge may grow into the
    core; a block with nothing above the threshold there owns no piece.
    """
    ranges = _over_image(client, decide.block_range, blocks, glass, source, sigma, spacing, margin=EDGE_REACH)
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if isinstance(params.threshold, str):  # never with glass blocks (a fixed threshold finds them)
        counts = _over_image(client, decide.block_histogram, blocks, glass, source, sigma, spacing, lo, hi)
        threshold = otsu_from_histogram(np.sum(counts, axis=0), lo, hi)
    else:
        threshold = float(params.threshold)
    tops = iter(r[1] for r in ranges)
    core_max = [-np.inf if glass is not None and block.key in glass.boxes else next(tops) for block in blocks]
    return threshold, [lo, hi], core_max


def _edge_background(client, source, blocks, sigma, spacing, lo, threshold, glass=None):
    """The exact median of the smoothed values at or below the threshold (None: there are none)."""
    histograms = _over_image(client, decide.block_dark_histogram, blocks, glass, source, sigma, spacing, lo, threshold)
    located = decide.dark_median(np.sum(histograms, axis=0), lo, threshold)
    if located is None:
        return None
    (a, b), ranks = located
    parts = _over_image(client, decide.block_dark_values, blocks, glass, source, sigma, spacing, threshold, a, b)
    below = sum(p[0] for p in parts)
    distinct = np.concatenate([p[1] for p in parts])
    counts = np.concatenate([p[2] for p in parts])
    order = np.argsort(distinct, kind="stable")
    median = decide.median_from_window(below, distinct[order], counts[order], ranks)
    if median is None:  # cannot happen unless the bins misbehave; the middle of the window is close
        median = (a + b) / 2.0
    return median


def _typical_size(client, source, box, sigma, spacing, threshold, min_size, params):
    """The typical size, measured on ``box`` cut into tiles measured in parallel; and the tiles.

    :data:`TYPICAL_TILES` tiles, as long as each keeps :data:`MIN_TILE_PIXELS`;
    a sample measured whole (one tile) gives the size of the sample itself.
    """
    pixels = int(np.prod([b - a for a, b in box]))
    n_tiles = max(1, min(TYPICAL_TILES, pixels // MIN_TILE_PIXELS))
    tiles = decide.split_box(box, n_tiles)
    args = (sigma, spacing, threshold, min_size, params)
    parts = _gather(client, decide.sample_typical_size, tiles, source, *args)
    merged = decide.merge_typical_sizes(parts) if len(parts) > 1 else parts[0][0]
    record = [dict(box=[list(t) for t in tile], size=size, pixels=n) for tile, (size, n) in zip(tiles, parts)]
    return merged, record


def _overlap(source, sigma, spacing, object_size, given):
    """The overlap: as given, else six typical object sides plus the smoothing's reach."""
    if given is not None:
        return int(given)
    reach = int(smoothing_reach(decide.sigma_per_axis(sigma, spacing, source.ndim)).max()) + 4
    if not object_size:
        return 32 + reach
    side = float(object_size) ** (1.0 / source.ndim)
    return max(16, int(math.ceil(6.0 * side))) + reach


def decide_whole_image(client, source, blocks, params, spacing, *, block_size, overlap, sample_pixels) -> Decisions:
    """Every whole-image decision, computed on the cluster; see the module docstring."""
    clock = _Clock()
    sigma, sigma_used, min_size, scales, sample_box = _settings(
        client, source, params, spacing, block_size, sample_pixels
    )
    clock.tick("settings")
    reach = smoothing_reach(decide.sigma_per_axis(sigma, spacing, source.ndim))
    glass = find_glass(client, source, blocks, params, reach + EDGE_REACH)
    clock.tick("glass")
    threshold, value_range, core_max = _threshold(client, source, blocks, params, sigma, spacing, glass)
    clock.tick("threshold")
    auto = params.n_clusters == "auto"
    edge_level = params.used_edge_level() if auto else None
    background = None
    if edge_level is not None:
        background = _edge_background(client, source, blocks, sigma, spacing, value_range[0], threshold, glass)
        if background is None:
            edge_level = None  # nothing at or below the threshold, as in memory
    clock.tick("edge_background")
    object_size, typical_box, tiles = None, None, None
    if auto:
        box = central_sample(source, block_size, sample_pixels)
        object_size, tiles = _typical_size(client, source, box, sigma, spacing, threshold, min_size, params)
        typical_box = [list(b) for b in box]
    clock.tick("object_size")
    return Decisions(
        sigma=sigma,
        sigma_used=sigma_used,
        min_size=int(min_size),
        threshold=float(threshold),
        edge_background=background,
        edge_level_used=edge_level,
        object_size=object_size,
        overlap=_overlap(source, sigma, spacing, object_size, overlap),
        foreground=[block.key for block, top in zip(blocks, core_max) if top > threshold],
        range=value_range,
        scales=scales,
        sample_box=sample_box,
        typical_box=typical_box,
        seconds=clock.seconds,
        typical_tiles=tiles,
        glass=glass.record() if glass is not None else None,
    )
