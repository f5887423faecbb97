"""What measuring a result costs next to segmenting it: `.venv/bin/python bench/measure.py`.

For each case, the segmentation (`segment`, as the widget's engine runs it)
and then `measure_labels` of its labels (what the engine adds to every run),
on the same image in the same run. Cases: the four circles scaled up (4
objects) and a grid of discs (many objects, each its own piece of the Otsu
mask). Prints medians of 3 runs and their ratio, writes bench/results/measure.json.

A missing dependency stops it with one line (exit code 2); a case that raises
is shown as FAILED and the run exits with code 1 without touching measure.json.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from _bench_support import error_text, exit_missing, save_results

try:
    import numpy as np

    from napari_spectral_seg import segment
    from napari_spectral_seg.core.measure import measure_labels
    from napari_spectral_seg.data import four_circles
except ImportError as _err:
    exit_missing(_err, __file__)


def disc_grid(size: int, step: int, seed: int = 0) -> np.ndarray:
    """Discs of radius step/3 on a grid of ``step`` pixels, with noise: (size/step)^2 objects."""
    yy, xx = np.mgrid[:size, :size]
    centre = step // 2
    inside = ((yy % step - centre) ** 2 + (xx % step - centre) ** 2) <= (step / 3) ** 2
    return inside + np.random.default_rng(seed).normal(0, 0.1, (size, size))


def cases(quick: bool):
    sizes = (400,) if quick else (400, 1024, 2048)
    for size in sizes:
        image, mask, _ = four_circles(size=size, seed=0)
        yield f"four circles {size}^2", image, dict(mask=mask, n_clusters=4)
    for size, step in ((512, 32),) if quick else ((512, 32), (1024, 24), (2048, 32)):
        yield f"disc grid {size}^2", disc_grid(size, step), dict(threshold="otsu", n_clusters=1)


def timed(function, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), value


def case(name: str, image, kwargs: dict, repeats: int) -> dict:
    segment_s, labels = timed(lambda: segment(image, random_state=0, **kwargs), repeats)
    measure_s, table = timed(lambda: measure_labels(labels, image, spacing=(0.5, 0.5)), repeats)
    return dict(
        case=name,
        objects=int(len(table["label"])),
        segment_s=round(segment_s, 3),
        measure_s=round(measure_s, 4),
        ratio=round(measure_s / segment_s, 3),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "measure.json")
    parser.add_argument("--quick", action="store_true", help="the smallest case of each kind, one run each")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 3
    rows = []
    for name, image, kwargs in cases(args.quick):
        try:
            rows.append(case(name, image, kwargs, repeats))
        except Exception as exc:  # reported, and the run fails at the end
            traceback.print_exc()
            rows.append(dict(case=name, error=error_text(exc)))
    print(f"{'case':<20} {'objects':>7} {'segment s':>9} {'measure s':>9} {'ratio':>6}")
    for row in rows:
        if "error" in row:
            print(f"{row['case']:<20} FAILED: {row['error']}")
        else:
            print(
                f"{row['case']:<20} {row['objects']:>7} {row['segment_s']:>9.3f} {row['measure_s']:>9.4f} "
                f"{row['ratio']:>6.3f}"
            )
    failures = [f"{r['case']}: {r['error']}" for r in rows if "error" in r]
    code = save_results([args.out], rows, failures, indent=2)
    if not code:
        print("wrote", args.out)
    return code


if __name__ == "__main__":
    sys.exit(main())
