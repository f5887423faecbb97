"""How fast a click-to-split answers: `python bench/split.py`.

Merges two touching circles of the four-circles image into one segment, then
times `split_label` (what the widget's split mode runs on a click) for
segments of about 10k, 25k and 50k pixels. Prints medians of 5 runs and
writes bench/results/split.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from napari_spectral_seg.core import split_label
from napari_spectral_seg.data import four_circles


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


def main():
    rows = [case(size) for size in (300, 480, 680)]
    print(f"{'segment px':>10} {'median s':>9} {'ARI':>7}")
    for row in rows:
        print(f"{row['segment_pixels']:>10} {row['median_s']:>9.3f} {row['ari']:>7.4f}")
    out = Path(__file__).parent / "results" / "split.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print("wrote", out)


if __name__ == "__main__":
    main()
