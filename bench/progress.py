"""Does the progress fraction follow the clock? A run's fractions against its share of the time.

Run: `.venv/bin/python bench/progress.py [--quick]`

For each case (the four circles at 1600² with 4 segments: one multilevel
component; 300 touching blobs at 1024², 200 segments: 126 small exact
components; the same blobs in auto mode) one warm run through
``iter_segment`` notes, at every update, the fraction and the share of the
run's wall and CPU time so far. It prints the worst gap between the fraction
and the CPU share over every update, and how much of the CPU time had
passed when the first update above 0 came (``first_report_share``: the
checks and smoothing before the mask reported 0 for 20-30 % of a run before
they had their own shares), and writes bench/results/progress.json.
``--repeats N`` runs each case N times and records every run's worst gap
and their median (the machine's load moves a single run's gap by 0.05).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _bench_support import error_text, exit_missing, save_results

try:
    from napari_spectral_seg.core.pipeline import iter_segment
    from napari_spectral_seg.core.warm import warm_up
    from napari_spectral_seg.data import four_circles, touching_blobs
except ImportError as _err:
    exit_missing(_err, __file__)


def cases(quick: bool):
    """(name, image, mask, keyword arguments) of each case."""
    size, blobs = (800, 512) if quick else (1600, 1024)
    image, mask, _ = four_circles(size, noise=0.2, seed=0)
    yield f"four circles {size}², 4 segments", image, mask, dict(n_clusters=4)
    image, _ = touching_blobs((blobs, blobs), n_objects=300 if not quick else 80, seed=0)
    yield f"touching blobs {blobs}², 200 segments", image, None, dict(threshold="otsu", n_clusters=200)
    yield f"touching blobs {blobs}², auto", image, None, dict(n_clusters="auto")


def trace_run(image, mask, keywords) -> dict:
    """Every update of one run: fraction, share of the wall and of the CPU time, step and message."""
    wall0, cpu0, rows = time.perf_counter(), time.process_time(), []
    steps = iter_segment(image, mask, random_state=0, **keywords)
    while True:
        try:
            update = next(steps)
        except StopIteration:
            break
        rows.append([time.perf_counter() - wall0, time.process_time() - cpu0, update.fraction, update.message])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    updates = [dict(wall_share=w / wall, cpu_share=c / cpu, fraction=f, message=m) for w, c, f, m in rows]
    first = next((i for i, u in enumerate(updates) if u["fraction"] > 0), len(updates))
    gaps = [abs(u["fraction"] - u["cpu_share"]) for u in updates]
    return dict(
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3),
        first_report_share=round(updates[first]["cpu_share"], 3) if first < len(updates) else None,
        worst_gap=round(max(gaps, default=0.0), 3),
        monotone=all(a["fraction"] <= b["fraction"] for a, b in zip(updates, updates[1:])),
        updates=updates,
    )


def _repeated(image, mask, keywords, repeats: int) -> dict:
    """The last of ``repeats`` traced runs, with every run's worst gap and their median."""
    rows = [trace_run(image, mask, keywords) for _ in range(repeats)]
    if repeats == 1:
        return rows[0]
    gaps = [row["worst_gap"] for row in rows]
    return dict(rows[-1], worst_gaps=gaps, median_worst_gap=round(statistics.median(gaps), 3))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller images")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each case (the median worst gap is kept)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "progress.json")
    args = parser.parse_args(argv)
    warm_up()
    results, failures = {}, []
    for name, image, mask, keywords in cases(args.quick):
        try:
            row = _repeated(image, mask, keywords, max(args.repeats, 1))
        except Exception as exc:  # reported, and the run fails
            row = dict(error=error_text(exc))
            failures.append(f"{name}: {row['error']}")
        results[name] = row
        brief = {key: value for key, value in row.items() if key != "updates"}
        print(f"{name}: {brief}")
    return save_results([args.out], results, failures, indent=1)


if __name__ == "__main__":
    sys.exit(main())
