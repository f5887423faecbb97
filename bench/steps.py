"""Where a run's CPU time goes, step by step: four circles at one size, in this process.

Run: `.venv/bin/python bench/steps.py --size 8192 [--repeats 1]`

One warm-up call on a tiny image, then ``iter_segment`` on
``four_circles(size, noise=0.2, seed=0)`` with its mask and 4 segments (the
``bench/run.py`` case). The CPU time (``time.process_time``) is noted at
every progress update and summed per part of the run: the checks and the
corrections and smoothing before the mask (each reports when it ends), the
mask, the graph, the eigenvectors (each component and solver level) and the
labels. Prints one line per part (CPU time, of it the kernel's, and the
page faults: on a virtual machine a fresh page costs more than the
arithmetic done on it), the total, ARI and the peak memory; for a
before/after comparison run it on both versions in the same session
(``PYTHONPATH=<other>/src``).
"""

from __future__ import annotations

import argparse
import resource
import sys

try:
    import numpy as np

    from napari_spectral_seg.core.pipeline import iter_segment
    from napari_spectral_seg.data import four_circles
except ImportError as _err:
    from _bench_support import exit_missing

    exit_missing(_err, __file__)


def _part(update) -> str:
    """The part of the run an update closes: the message before the mask, else the step."""
    return f"mask: {update.message}" if update.step == "mask" else update.step


def _usage() -> np.ndarray:
    """This process's (CPU seconds, of them in the kernel, minor page faults) so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return np.array([usage.ru_utime + usage.ru_stime, usage.ru_stime, usage.ru_minflt])


def trace(image, mask) -> tuple[dict, np.ndarray]:
    """(CPU seconds, system seconds, page faults) per part of one run, and its labels."""
    parts, steps = {}, iter_segment(image, mask, n_clusters=4, random_state=0)
    last, previous = _usage(), "start"
    while True:
        try:
            update = next(steps)
        except StopIteration as stop:
            parts[previous] = parts.get(previous, 0.0) + _usage() - last
            return parts, stop.value.labels
        now = _usage()
        parts[previous] = parts.get(previous, 0.0) + now - last
        last, previous = now, _part(update)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1600)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    from sklearn.metrics import adjusted_rand_score

    small, small_mask, _ = four_circles(40, noise=0.2, seed=0)
    trace(small, small_mask)
    image, mask, truth = four_circles(args.size, noise=0.2, seed=0)
    inside = truth > 0
    for repeat in range(args.repeats):
        parts, labels = trace(image, mask)
        print(f"run {repeat + 1}: four circles {args.size}², {int(mask.sum())} masked pixels")
        for name, (seconds, system, faults) in parts.items():
            print(
                f"  {seconds:7.2f} s ({system:5.2f} s system, {faults / 1e3:6.0f}k faults)  from '{name}' to the next update"
            )
        ari = adjusted_rand_score(truth[inside], labels[inside])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        seconds, system, faults = sum(parts.values())
        print(
            f"  {seconds:7.2f} s CPU in all ({system:.2f} s system, {faults / 1e6:.2f}M page faults), "
            f"ARI {ari:.4f}, peak {peak:.2f} GiB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
