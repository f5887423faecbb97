"""How fast a click-to-split answers: `.venv/bin/python bench/split.py`.

Merges two touching circles of the four-circles image into one segment, then
times `split_label` (what the widget's split mode runs on a click) for
segments of about 10k, 25k and 50k pixels. Prints medians of 5 runs and
writes bench/results/split.json.

A missing dependency stops it with one line (exit code 2). A size whose split
raises is shown as FAILED, the others still run, and the run exits with code 1
without touching split.json: its rows go to bench/results/split-FAILED.json.tmp.
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
    from sklearn.metrics import adjusted_rand_score

    from napari_spectral_seg.core import split_label
    from napari_spectral_seg.data import four_circles
except ImportError as _err:
    exit_missing(_err, __file__)

SIZES = (300, 480, 680)


def case(size: int, repeats: int = 5) -> dict:
    image, _, truth = four_circles(size=size, seed=0)
    # Circles 1 and 2 (they touch) as one segment, as after a wrong merge.
    labels = np.where((truth == 1) | (truth == 2), 1, 0).astype(np.int32)
    pixels = int((labels == 1).sum())
    split_label(image, labels, 1)  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        indices, values = split_label(image, labels, 1, random_state=0)
        times.append(time.perf_counter() - started)
    out = labels.copy()
    out[indices] = values
    inside = (truth == 1) | (truth == 2)
    return dict(
        size=size,
        segment_pixels=pixels,
        median_s=round(float(np.median(times)), 3),
        all_s=[round(t, 3) for t in times],
        ari=round(float(adjusted_rand_score(truth[inside], out[inside])), 4),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "split.json")
    args = parser.parse_args(argv)
    rows = []
    for size in SIZES:
        try:
            rows.append(case(size))
        except Exception as exc:  # reported, and the run fails at the end
            traceback.print_exc()
            rows.append(dict(size=size, error=error_text(exc)))
    print(f"{'segment px':>10} {'median s':>9} {'ARI':>7}")
    for row in rows:
        if "error" in row:
            print(f"size {row['size']}: FAILED: {row['error']}")
        else:
            print(f"{row['segment_pixels']:>10} {row['median_s']:>9.3f} {row['ari']:>7.4f}")
    failures = [f"size {r['size']}: {r['error']}" for r in rows if "error" in r]
    code = save_results([args.out], rows, failures, indent=2)
    if not code:
        print("wrote", args.out)
    return code


if __name__ == "__main__":
    sys.exit(main())
