"""The client's side of the polarity and background decisions: which pixels :class:`~.corrected.CorrectedSource` reads.

As in memory (``core.background.correct_intensity``), in this order:

1. **Polarity**: as given, or ``"auto"`` chosen by ``choose_polarity`` on a
   view of the image: every ``k``-th pixel along each axis, ``k`` the
   smallest stride that keeps the view within the sample size and
   :data:`MAX_VIEW_PIXELS` (``k`` = 1, the whole image, when it is that
   small: the in-memory decision). Dark
   objects are read as ``max - value``, with the image's exact maximum.
2. **Background** (``"auto"``): the object-to-background contrast (Otsu's
   split of the view and the two classes' medians); the typical radius
   ``rough_radius`` measures on the central sample; the cells' percentiles,
   from every pixel of the image (tasks of about a block each: exact); the
   smoothed cell grid and its surface's spread (95th - 5th percentile over
   the view's pixels) and minimum (exact). The surface is subtracted where
   its spread exceeds a fifth of the contrast, as in memory.

On an image no larger than the sample every number is the in-memory one,
so the labels equal ``segment()``'s; on a larger one the polarity, the
contrast, the radius and the spread are those of the view or the sample
(recorded, with the stride), and the cells and the subtracted surface are
still those of the whole image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.adapt import unit_spacing
from ..core.auto import AutoConfig
from . import corrected
from .corrected import BackgroundSurface, CorrectedSource
from .passes import gather
from .surface import cell_grid, cell_size
from .whole import SAMPLE_BLOCKS, central_sample

__all__ = ["corrected_source", "decide_correction", "view_stride"]

# The largest view of the image polarity and contrast are decided on (32 MiB of float64).
MAX_VIEW_PIXELS = 4 * 1024**2
_FLAT = dict(polarity_used="bright", background_used="flat", background_range=0.0)
# The in-memory rules' thresholds: the defaults, as the blocks run them (a blockwise run takes no auto_config).
_CONFIG = AutoConfig()


def view_stride(shape, pixels: int) -> int:
    """The smallest stride whose view (every ``k``-th pixel per axis) has at most ``pixels`` pixels."""
    stride = max(1, int((float(np.prod(shape)) / max(pixels, 1)) ** (1.0 / len(shape))))
    while np.prod([math.ceil(n / stride) for n in shape]) > pixels:
        stride += 1
    while stride > 1 and np.prod([math.ceil(n / (stride - 1)) for n in shape]) <= pixels:
        stride -= 1
    return stride


def _view(client, source, blocks, stride):
    """The strided view (None without ``stride``) and the image's maximum, from one pass over the blocks."""
    parts = gather(client, corrected.raw_piece, [block.core for block in blocks], source, stride)
    top = max(part[1] for part in parts)
    if stride is None:
        return None, top
    view = np.empty([math.ceil(n / stride) for n in source.shape])
    for block, (piece, _) in zip(blocks, parts):
        start = [math.ceil(a / stride) for a, _ in block.core]
        view[tuple(slice(s, s + n) for s, n in zip(start, piece.shape))] = piece
    return view, top


def decide_correction(client, source, blocks, params, spacing, scratch: Path, *, block_size, sample_pixels) -> dict:
    """Polarity and background over the whole image (see the module docstring); a JSON-able record.

    The record holds what was decided (``polarity_used``, ``background_used``,
    ``background_range``, as in memory) and what :func:`corrected_source`
    needs: the maximum, the surface's grid file, cells and minimum.
    """
    if params.polarity == "bright" and params.background == "flat":
        return dict(_FLAT)
    # The view lives on the client for a moment (8 bytes a pixel): at most MAX_VIEW_PIXELS.
    default = SAMPLE_BLOCKS * int(np.prod(np.broadcast_to(block_size, (source.ndim,))))
    pixels = min(sample_pixels if sample_pixels is not None else default, MAX_VIEW_PIXELS)
    needs_view = params.polarity == "auto" or params.background == "auto"
    stride = view_stride(source.shape, pixels) if needs_view else None
    view, top = _view(client, source, blocks, stride)
    decided = dict(polarity_used=params.polarity, contrast=None)
    if needs_view:
        view_future = client.scatter(view)
        decided = client.gather(
            client.submit(corrected.view_decisions, view_future, params.polarity, params.background, top, pure=False)
        )
        del view, view_future
    record = dict(_FLAT, polarity_used=decided["polarity_used"], view_stride=stride, contrast=decided["contrast"])
    record["top"] = top if record["polarity_used"] == "dark" else None
    contrast = decided["contrast"]
    if params.background != "auto" or contrast is None:
        return record
    inverted = CorrectedSource(source, record["top"])
    unit = unit_spacing(spacing, source.ndim)
    box = central_sample(source, block_size, sample_pixels)
    radius = client.gather(client.submit(corrected.sample_radius, inverted, box, params.threshold, unit, pure=False))
    surface = cell_grid(client, inverted, cell_size(source.shape, radius, unit), block_size, scratch)
    spread, minimum = client.gather(client.submit(corrected.surface_stats, surface, source.shape, stride, pure=False))
    record.update(background_range=round(spread, 6), radius=radius)
    if contrast > 0 and spread > _CONFIG.background_variation * contrast:
        record.update(
            background_used="subtracted",
            surface=dict(path=surface.path, cell=list(surface.cell), counts=list(surface.counts), offset=minimum),
        )
    return record


def corrected_source(source, record: dict):
    """The source as the decisions of ``record`` read it (``source`` itself when nothing changes)."""
    top, surface = record.get("top"), record.get("surface")
    if top is None and surface is None:
        return source
    if surface is not None:
        surface = BackgroundSurface(
            surface["path"], tuple(surface["cell"]), tuple(surface["counts"]), surface["offset"]
        )
    return CorrectedSource(source, top, surface)
