"""GUI-thread time of a run landing on the result layer: as one undo step, and as before (``layer.data = ...``).

Run: `.venv/bin/python bench/undo_step.py [--sizes 512 1024 2048] [--repeats 5]`

For each size, a result of four discs is re-labelled on a fraction of its
pixels (a re-run that moves boundaries, and one that renumbers every object),
then written into a Labels layer three ways, side by side in one process:
``assign`` (the anchor: what the widget did before, which left the undo
history to mix two runs), ``step`` (``write_run``: ``data_setitem`` inside
``block_history``, one undo step) and, above ``MAX_STEP_PIXELS`` changed
pixels, what ``write_run`` does instead (replace and clear the history).
Medians of ``--repeats`` runs, in ms. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _bench_support import exit_missing

try:
    import numpy as np

    from napari_spectral_seg._widget import undo
except ImportError as _err:
    exit_missing(_err, __file__)
try:
    from napari.layers import Labels
except ImportError as _err:
    exit_missing(_err, __file__)


def discs(size: int, shift: int = 0) -> np.ndarray:
    """Four labelled discs on a ``size`` x ``size`` grid, moved right by ``shift`` pixels."""
    y, x = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    for i, (cy, cx) in enumerate([(0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7)]):
        inside = (y - cy * size) ** 2 + (x - cx * size - shift) ** 2 < (0.18 * size) ** 2
        labels[inside] = i + 1
    return labels


def timed(write, first: np.ndarray, second: np.ndarray, repeats: int) -> float:
    """Median ms of ``write(layer, second)`` on a fresh layer holding ``first``."""
    times = []
    for _ in range(repeats):
        layer = Labels(first.copy())
        labels = second.copy()
        started = time.perf_counter()
        write(layer, labels)
        times.append(1e3 * (time.perf_counter() - started))
    return statistics.median(times)


def assign(layer, labels):
    layer.data = labels


def as_step(limit: int):
    def write(layer, labels):
        undo.MAX_STEP_PIXELS = limit
        undo.write_run(layer, labels, "spectral_seg", {})

    return write


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    limit = undo.MAX_STEP_PIXELS
    print(f"{'size':>6} {'re-run':>10} {'changed px':>11} {'assign ms':>10} {'step ms':>8} {'clear ms':>9}")
    for size in args.sizes:
        first = discs(size)
        for name, second in (("boundaries", discs(size, shift=max(1, size // 100))), ("renumber", (5 - first) % 5)):
            changed = int(np.count_nonzero(first != second))
            anchor = timed(assign, first, second, args.repeats)
            step = timed(as_step(sys.maxsize), first, second, args.repeats)
            cleared = timed(as_step(0), first, second, args.repeats)
            print(f"{size:>6} {name:>10} {changed:>11} {anchor:>10.1f} {step:>8.1f} {cleared:>9.1f}")
    undo.MAX_STEP_PIXELS = limit
    print(f"write_run makes a step up to MAX_STEP_PIXELS = {limit} changed pixels, and clears the history above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
