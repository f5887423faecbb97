"""Whole-image passes over the blocks (client side), and the exact medians made of two of them.

A pass runs one function of :mod:`.decide` on the core of every block on the
cluster; its answers are summed or merged, never kept per block. Two kinds of
block are not read at full resolution:

- **glass blocks** (:mod:`.glass`): their coarse pixels stand in, each
  counted as the pixels it covers;
- **constant blocks**: a block whose smoothed values, over its core grown by
  the edges' reach, are all one value (the range pass shows it: its minimum
  is its maximum), e.g. glass that is exactly 0. One pixel of that value
  stands in, counted as the core's pixels: exactly what reading it gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import decide
from .glass import weighted
from .grid import grow

__all__ = ["ConstantSource", "ImagePasses", "gather", "split_medians"]


def gather(client, function, boxes, *args):
    """``function(source, box, *args)`` for every box on the cluster, results in box order."""
    futures = [client.submit(function, *args[:1], box, *args[1:], pure=False) for box in boxes]
    return client.gather(futures)


@dataclass(frozen=True)
class ConstantSource:
    """A source of one pixel of ``value`` (the stand-in of a constant block)."""

    value: float
    ndim: int

    @property
    def shape(self) -> tuple:
        return (1,) * self.ndim

    def read(self, box) -> np.ndarray:
        return np.full(self.shape, self.value, dtype=np.float64)


@dataclass
class ImagePasses:
    """The passes of one run: the cluster, the (corrected) source, its blocks, smoothing and stand-ins.

    Attributes
    ----------
    constant : dict
        Block key -> its one smoothed value; filled from the range pass
        (:meth:`note_ranges`).
    """

    client: object
    source: object
    blocks: list
    sigma: object
    spacing: object
    glass: object = None
    constant: dict = field(default_factory=dict)

    def note_ranges(self, ranges: dict) -> None:
        """Blocks whose range (key -> (min, max)) is one value are not read again."""
        self.constant = {key: lo for key, (lo, hi) in ranges.items() if lo == hi}

    def read_blocks(self) -> list:
        """The blocks read at full resolution: neither glass nor constant."""
        skipped = set(self.glass.boxes) if self.glass is not None else set()
        return [b for b in self.blocks if b.key not in skipped and b.key not in self.constant]

    def over_image(self, function, *rest, margin: int = 0) -> list:
        """``function(source, box, sigma, spacing, *rest)`` over the image, stand-ins included.

        ``margin`` grows each core (for the range: the smallest and largest
        values do not mind overlaps). The answers of the read blocks come
        first, in block order.
        """
        source = self.source
        boxes = [grow(b.core, margin, source.shape) for b in self.read_blocks()]
        results = gather(self.client, function, boxes, source, self.sigma, self.spacing, *rest)
        ranged = function is decide.block_range  # extremes are not counts: not weighted
        glass = self.glass
        if glass is not None and glass.boxes:
            stand_in = function if ranged else weighted(function, glass.weight)
            results += gather(self.client, stand_in, list(glass.boxes.values()), glass.coarse, None, None, *rest)
        one = tuple((0, 1) for _ in range(source.ndim))
        for block in self.blocks:
            if block.key in self.constant:
                pixels = int(np.prod([b - a for a, b in block.core]))
                stand_in = function if ranged else weighted(function, pixels)
                results.append(stand_in(ConstantSource(self.constant[block.key], source.ndim), one, None, None, *rest))
        return results


def split_medians(passes: ImagePasses, lo: float, split: float, hi: float, wanted) -> dict:
    """Exact medians of the smoothed image: ``below`` (values at or below ``split``), ``above``, ``all``.

    Two passes: fine histograms of the two classes over ``[lo, split]`` and
    ``[split, hi]``, then the values of the bins that hold the median
    ranks. Sorted, the image's values are those below ``split`` followed
    by those above it, so a rank of ``all`` is a rank in one class.
    A median of an empty class is None.

    Parameters
    ----------
    passes : ImagePasses
    lo, hi : float
        The smallest and largest smoothed value.
    split : float
    wanted : iterable of str
        Among "below", "above", "all".
    """
    wanted = set(wanted)
    with_above = bool(wanted & {"above", "all"})
    parts = passes.over_image(decide.block_split_histograms, lo, split, hi if with_above else None)
    histograms = {"below": (np.sum([p[0] for p in parts], axis=0), lo, split)}
    if with_above:
        histograms["above"] = (np.sum([p[1] for p in parts], axis=0), split, hi)
    counts = {side: int(h[0].sum()) for side, h in histograms.items()}
    requests = _rank_requests(wanted, counts)
    window_of = {(side, rank): (side, *decide.rank_window(*histograms[side], rank)) for side, rank in _flat(requests)}
    windows = sorted(set(window_of.values()))
    # Every class empty: no window, and no pass over the image for nothing.
    found = _merged(passes.over_image(decide.block_window_values, split, windows), len(windows)) if windows else []
    medians = {}
    for name, ranks in requests.items():
        values = []
        for side, rank in ranks:
            window = windows.index(window_of[(side, rank)])
            value = decide.value_at_rank(*found[window], rank)
            # Cannot happen unless the bins misbehave; the window's middle is close.
            values.append(value if value is not None else sum(windows[window][1:]) / 2.0)
        medians[name] = float((values[0] + values[1]) / 2.0) if values else None
    return medians


def _rank_requests(wanted: set, counts: dict) -> dict:
    """Name -> the two ``(side, rank in side)`` of its median (empty: no values)."""
    requests = {}
    for side in ("below", "above"):
        if side in wanted:
            requests[side] = [(side, r) for r in decide.median_ranks(counts[side])] if counts[side] else []
    if "all" in wanted:
        n_below, total = counts["below"], counts["below"] + counts["above"]
        ranks = decide.median_ranks(total) if total else ()
        requests["all"] = [("below", r) if r < n_below else ("above", r - n_below) for r in ranks]
    return requests


def _flat(requests: dict) -> list:
    return [pair for ranks in requests.values() for pair in ranks]


def _merged(parts: list, n_windows: int) -> list:
    """Per window: the summed count below it and the blocks' values in it, sorted, with their counts."""
    merged = []
    for i in range(n_windows):
        below = sum(p[i][0] for p in parts)
        distinct = np.concatenate([p[i][1] for p in parts]) if parts else np.empty(0)
        counts = np.concatenate([p[i][2] for p in parts]) if parts else np.empty(0, int)
        order = np.argsort(distinct, kind="stable")
        merged.append((below, distinct[order], counts[order]))
    return merged
