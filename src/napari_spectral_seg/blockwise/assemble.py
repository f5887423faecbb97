"""From block records to an OME-Zarr labels image.

Each output chunk (one block's core) is painted on a worker from the records
of the blocks whose kept pieces reach into it, their labels shifted by the
block's offset (the number of labels of the blocks before it), so labels are
unique over the image. The chunks form a dask array; its pyramid (nearest
neighbour, by 2 along y and x) is written by ome-zarr-py's
``write_multiscale_labels`` as ``labels/<name>`` of the output group, with
the image's axes, units and voxel sizes. Chunks are disjoint, so workers
never write the same chunk, and a chunk painted twice is painted the same.
"""

from __future__ import annotations

import json

import numpy as np

from .block import read_record

__all__ = ["chunk_entries", "labels_array", "write_labels_image"]

# Coarser levels stop when y or x would fall below this many pixels.
_SMALLEST_LEVEL = 64
_MAX_LEVELS = 6


def chunk_entries(blocks, summaries: dict, block_size, records) -> tuple[dict, int]:
    """Per output chunk (grid index), the records reaching into it: ``(path, origin, shape, offset)``.

    Returns the entries and the total number of labels.
    """
    sizes = np.broadcast_to(np.asarray(block_size, dtype=int), (len(blocks[0].core),))
    entries: dict = {}
    offset = 0
    for block in blocks:  # grid order: the offsets do not depend on completion order
        summary = summaries.get(block.key)
        if summary is None or summary["count"] == 0:
            continue
        origin, shape = np.asarray(summary["origin"]), np.asarray(summary["shape"])
        first = origin // sizes
        last = (origin + shape - 1) // sizes
        path = str(records / f"{block.key}.npz")
        for index in np.ndindex(*(last - first + 1)):
            chunk = tuple(int(v) for v in first + np.asarray(index))
            entries.setdefault(chunk, []).append((path, tuple(origin), tuple(shape), offset))
        offset += summary["count"]
    return entries, offset


class _Painter:
    """``map_blocks`` function: one chunk painted from its entries."""

    def __init__(self, entries: dict, block_size):
        self.entries = entries
        self.block_size = block_size

    def __call__(self, block_info=None):
        info = block_info[None]
        box = info["array-location"]
        chunk = tuple(info["chunk-location"])
        out = np.zeros(tuple(b - a for a, b in box), dtype=np.int32)
        for path, origin, shape, offset in self.entries.get(chunk, []):
            labels = read_record(path)["labels"]
            lo = [max(a, o) for (a, _), o in zip(box, origin)]
            hi = [min(b, o + n) for (_, b), o, n in zip(box, origin, shape)]
            if any(h <= low for low, h in zip(lo, hi)):
                continue
            source = labels[tuple(slice(low - o, h - o) for low, h, o in zip(lo, hi, origin))]
            target = tuple(slice(low - a, h - a) for low, h, (a, _) in zip(lo, hi, box))
            free = (source > 0) & (out[target] == 0)  # first block in grid order wins a disputed pixel
            out[target][free] = source[free] + offset
        return out


def labels_array(shape, block_size, entries: dict):
    """The full-resolution labels as a lazy dask array, one chunk per block core."""
    import dask.array as da

    sizes = np.broadcast_to(np.asarray(block_size, dtype=int), (len(shape),))
    chunks = tuple(tuple(min(s, n - a) for a in range(0, n, s)) for n, s in zip(shape, sizes))
    return da.map_blocks(_Painter(entries, tuple(int(s) for s in sizes)), chunks=chunks, dtype=np.int32)


def _pyramid(level0, chunk_shape):
    """Full resolution, then halved along y and x (nearest neighbour) while both stay large enough."""
    levels, factors = [level0], [1]
    current = level0
    while len(levels) < _MAX_LEVELS and min(current.shape[-2:]) // 2 >= _SMALLEST_LEVEL:
        current = current[(slice(None),) * (current.ndim - 2) + (slice(None, None, 2), slice(None, None, 2))]
        current = current.rechunk(tuple(min(c, n) for c, n in zip(chunk_shape, current.shape)))
        levels.append(current)
        factors.append(factors[-1] * 2)
    return levels, factors


def _builtin(value):
    """numpy scalars and arrays as JSON takes them."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_labels_image(group, name: str, level0, source, spacing, block_size, attributes: dict, compute) -> list:
    """Write ``labels/<name>`` (a multiscale labels image) into the zarr ``group``; returns the level shapes.

    ``compute(jobs)`` computes the chunk writes (a list of dask delayed
    objects) and returns once they are all done: the caller's cluster, waited
    on the caller's way. The attributes are set after it returns.
    """
    from ome_zarr.writer import write_multiscale_labels

    ndim = level0.ndim
    chunk_shape = tuple(int(min(s, n)) for s, n in zip(np.broadcast_to(block_size, (ndim,)), level0.shape))
    levels, factors = _pyramid(level0, chunk_shape)
    voxel = list(source.scale) if source.scale else (list(spacing) if spacing else [1.0] * ndim)
    # Every level keeps the input level's translation: subsampling [::f]
    # keeps pixel 0 where it was.
    shift = [{"type": "translation", "translation": list(source.translation)}] if source.translation else []
    transforms = [
        [{"type": "scale", "scale": [v * (f if axis >= ndim - 2 else 1) for axis, v in enumerate(voxel)]}, *shift]
        for f in factors
    ]
    axes = list(source.axes)  # names: ome-zarr types z, y, x as space and adds the units
    units = {axis: unit for axis, unit in zip(source.axes, source.units or ()) if unit}
    jobs = write_multiscale_labels(
        levels,
        group,
        name,
        axes=axes,
        coordinate_transformations=transforms,
        storage_options={"chunks": chunk_shape},
        axes_units=units or None,
        compute=False,
    )
    compute(jobs)
    group["labels"][name].attrs["spectral_seg"] = json.loads(json.dumps(attributes, default=_builtin))
    return [list(level.shape) for level in levels]
