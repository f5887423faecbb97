"""Glass blocks: blocks a coarse pyramid level shows to be far below the threshold, never read at full resolution.

A slide is mostly glass, and every whole-image pass (the range of the
smoothed image, the edges' background) would read all of it at full
resolution. With an OME-Zarr input, a fixed numeric threshold and a flat
background (given, or decided so; dark objects are read inverted, the coarse
level too, with the image's maximum), a coarser level of the pyramid (the finest with at most :data:`MAX_COARSE_PIXELS` pixels,
subsampled at most :data:`MAX_FACTOR` times per axis) is read once, on a
worker. A block is *glass* when every coarse pixel over its core, grown by
the smoothing's reach and one coarse pixel, lies below the *cut*: the
coarse minimum plus half its distance to the threshold. A glass block holds
no foreground (it is not segmented, as before), and in the whole-image
passes its coarse pixels stand in for its pixels, each counted as the
``f_0 x f_1 ...`` pixels it covers. An image with foreground in every block
has no glass block, and its results are unchanged.

Not with Otsu's threshold: the cut needs the threshold, and Otsu's is made
of the histogram of every full-resolution pixel, whose bins are set by the
exact range; coarse stand-ins would move both (unless the glass is exactly
constant). There the range pass reads every block, and a block it finds of
one value is not read again (:mod:`.passes`): exact, and on glass that is
exactly 0 the same saving in every later pass.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GlassPlan", "find_glass", "weighted"]

MAX_COARSE_PIXELS = 4 * 1024**2
MAX_FACTOR = 16
# The cut lies this far from the coarse minimum towards the threshold.
CUT_FRACTION = 0.5


class GlassPlan:
    """The coarse level, the factors, and each glass block's box in coarse pixels.

    Attributes
    ----------
    coarse : Source
        The coarse level.
    factors : tuple of int
        Full-resolution pixels per coarse pixel, per axis.
    boxes : dict
        Block key -> its core in coarse pixels (the coarse grid tiled without overlap).
    cut : float
    level : int
        The coarse level's index in the OME-Zarr.
    """

    def __init__(self, coarse, factors, boxes: dict, cut: float, level: int):
        self.coarse, self.factors, self.boxes, self.cut = coarse, tuple(factors), boxes, float(cut)
        self.level = int(level)

    @property
    def weight(self) -> int:
        return int(np.prod(self.factors))

    def record(self) -> dict:
        return dict(level=self.level, factors=list(self.factors), cut=self.cut, blocks=len(self.boxes))


def _coarse_level(source):
    """The finest level of ``source``'s OME-Zarr small enough to read whole, with its factors; or None."""
    import zarr

    from .source import multiscales_of, open_source

    if source.kind != "ome-zarr":
        return None
    datasets = multiscales_of(dict(zarr.open_group(source.path, mode="r").attrs))[0]["datasets"]
    for level in range(source.level + 1, len(datasets)):
        coarse = open_source(source.path, level)
        factors = [round(n / m) for n, m in zip(source.shape, coarse.shape)]
        if max(factors) > MAX_FACTOR:
            return None
        if int(np.prod(coarse.shape)) <= MAX_COARSE_PIXELS:
            return coarse, factors
    return None


def _coarse_box(core, factors, shape) -> tuple:
    """A core in coarse pixels: coarse pixel ``i`` belongs to the block holding pixel ``i * f``."""
    return tuple((min(math.ceil(a / f), m), min(math.ceil(b / f), m)) for (a, b), f, m in zip(core, factors, shape))


def glass_keys(coarse, cores: dict, factors, reach, threshold: float):
    """Worker task: the coarse level read once; the keys of the glass blocks and the cut."""
    data = coarse.read(tuple((0, n) for n in coarse.shape)).astype(np.float64)
    low = float(data.min())
    cut = low + CUT_FRACTION * (float(threshold) - low)
    keys = []
    for key, core in cores.items():
        footprint = tuple(
            (max((a - r) // f - 1, 0), min(-(-(b + r) // f) + 1, n))
            for (a, b), r, f, n in zip(core, reach, factors, coarse.shape)
        )
        if data[tuple(slice(a, b) for a, b in footprint)].max() < cut:
            keys.append(key)
    return keys, cut


def find_glass(client, source, blocks, params, reach) -> GlassPlan | None:
    """The glass blocks of a run (None: no coarse level, or a run they cannot be skipped in).

    ``source`` is what the blocks read: the image, or the image corrected
    (dark objects inverted with the image's maximum, see :mod:`.corrected`),
    the correction decided before this. The coarse level is read corrected
    the same way; a subtracted background (a surface over full-resolution
    pixels) and Otsu's threshold (needed for the cut, made of every pixel)
    leave no glass.
    """
    from .corrected import CorrectedSource

    if isinstance(params.threshold, str):
        return None
    raw, top = source, None
    if isinstance(source, CorrectedSource):
        if source.surface is not None:
            return None
        raw, top = source.raw, source.top
    found = _coarse_level(raw)
    if found is None:
        return None
    coarse, factors = found
    level = coarse.level
    if top is not None:
        coarse = CorrectedSource(coarse, top)
    cores = {block.key: block.core for block in blocks}
    future = client.submit(glass_keys, coarse, cores, factors, [int(r) for r in reach], _cut_level(params), pure=False)
    keys, cut = client.gather(future)
    boxes = {key: _coarse_box(cores[key], factors, coarse.shape) for key in keys}
    return GlassPlan(coarse, factors, {k: b for k, b in boxes.items() if all(b1 > b0 for b0, b1 in b)}, cut, level)


def _cut_level(params) -> float:
    """What a block must reach not to be glass: the threshold, or a given low threshold below it (dim objects)."""
    low = params.low_threshold if params.applies("low_threshold") else None
    if isinstance(low, (int, float)) and not isinstance(low, bool):
        return min(float(params.threshold), float(low))
    return float(params.threshold)


def weighted(function, weight: int):
    """``function`` (a pass of :mod:`.decide` on the coarse level) with its counts multiplied by ``weight``."""
    return _Weighted(function, weight)


class _Weighted:
    """Picklable: the pass's counts (arrays of counts, or per window ``(below, distinct, counts)``) times the weight."""

    def __init__(self, function, weight: int):
        self.function, self.weight = function, int(weight)

    def __call__(self, *args):
        return _times(self.function(*args), self.weight)


def _times(result, weight: int):
    """The counts of a pass's answer times ``weight`` (its values, if any, as they are)."""
    if result is None:
        return None
    if isinstance(result, list):  # windows: (count below, distinct values, their counts)
        return [(below * weight, distinct, counts * weight) for below, distinct, counts in result]
    if isinstance(result, tuple):  # histograms of the two classes
        return tuple(_times(part, weight) for part in result)
    return np.asarray(result) * weight
