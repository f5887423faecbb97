"""The time guard's estimate against the CPU time runs take: eigen-solve and k-means, per case.

Run: `PYTHONPATH=src .venv/bin/python bench/costs.py [--cases "circles 2048 50,noise 100 470"] [--repeats 1]`

Each case segments an image in this process with ``time_limit=None`` (so
nothing is refused) and one BLAS thread (as the solvers run anyway), after
one warm-up call on a tiny image:

* ``circles SIZE K [SOLVER]``: ``four_circles(SIZE, noise=0.2, seed=0)``
  with its mask (one piece of about 27 % of the pixels), ``K`` segments;
* ``noise SIZE K [SOLVER]``: uniform noise, no threshold (one piece of
  ``SIZE**2`` pixels), ``K`` segments.

``SOLVER`` defaults to ``auto``. The CPU time (``time.process_time``, all
threads) is read at the progress updates: the eigenvectors step runs from
its first update to the first update of the labels step, the labels step
(k-means, boundary refinement) from there to the end. The guard's estimate
is the :class:`~napari_spectral_seg.core.memory.RunEstimate` the run's own
check computed (``core/costs.py``). Prints a markdown table (median of the
repeats) and writes ``bench/results/costs.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

try:
    import numpy as np
    from threadpoolctl import threadpool_limits

    from napari_spectral_seg.core import pipeline
    from napari_spectral_seg.core.pipeline import iter_segment, run_to_end
    from napari_spectral_seg.data import four_circles
except ImportError as _err:
    from _bench_support import exit_missing

    exit_missing(_err, __file__)

from _bench_support import save_results

HERE = Path(__file__).resolve().parent
DEFAULT_CASES = (
    "noise 100 100,noise 100 250,noise 100 470,noise 200 100,noise 300 100,"
    "circles 1024 20,circles 1024 50,circles 1024 100,"
    "circles 2048 20,circles 2048 50,circles 2896 50,circles 4096 20,circles 4096 50,"
    "noise 150 20 lobpcg,noise 150 20 amg"
)


def make_case(kind: str, size: int):
    """The image and mask of a case."""
    if kind == "circles":
        image, mask, _ = four_circles(size=size, noise=0.2, seed=0)
        return image, mask
    if kind == "noise":
        return np.random.default_rng(0).random((size, size)), None
    raise SystemExit(f"unknown case kind {kind!r}; use circles or noise")


class _Estimates:
    """Keeps the estimate the pipeline's own check computed."""

    def __init__(self):
        self.last = None
        self._check = pipeline.check_run

    def __call__(self, *args, **kwargs):
        self.last = self._check(*args, **kwargs)
        return self.last


def measure(image, mask, n_clusters: int, solver: str) -> dict:
    """CPU seconds of one run's eigenvectors and labels steps."""
    marks = {}

    def note(update):
        marks.setdefault(update.step, time.process_time())

    start = time.process_time()
    with threadpool_limits(1, user_api="blas"):
        run_to_end(
            iter_segment(
                image,
                mask,
                n_clusters=n_clusters,
                eigen_solver=solver,
                threshold=None,
                sigma=None,
                random_state=0,
                time_limit=None,
            ),
            note,
        )
    end = time.process_time()
    return {
        "solve": marks["labels"] - marks["eigenvectors"],
        "labels": end - marks["labels"],
        "run": end - start,
    }


def run_case(text: str, repeats: int, estimates: _Estimates) -> dict:
    parts = text.split()
    kind, size, n_clusters = parts[0], int(parts[1]), int(parts[2])
    solver = parts[3] if len(parts) > 3 else "auto"
    image, mask = make_case(kind, size)
    runs = [measure(image, mask, n_clusters, solver) for _ in range(repeats)]
    estimate = estimates.last
    row = {
        "case": text,
        "largest_piece": int(estimate.piece_size),
        "solver": estimate.piece_solver,
        "estimate_solve": estimate.solve_seconds,
        "estimate_labels": estimate.labels_seconds,
        "estimate": estimate.seconds,
    }
    for key in ("solve", "labels", "run"):
        row[key] = statistics.median(r[key] for r in runs)
    row["ratio"] = row["estimate"] / (row["solve"] + row["labels"])
    return row


def table(rows) -> str:
    lines = [
        "| case | pieces' solver | solve CPU s (est.) | labels CPU s (est.) | solve + labels (est.) | estimate / CPU | whole run CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['solver']} | {r['solve']:.2f} ({r['estimate_solve']:.2f}) | "
            f"{r['labels']:.2f} ({r['estimate_labels']:.2f}) | {r['solve'] + r['labels']:.2f} ({r['estimate']:.2f}) | "
            f"{r['ratio']:.2f} | {r['run']:.2f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=DEFAULT_CASES, help="comma-separated 'KIND SIZE K [SOLVER]'")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "costs.json"))
    args = parser.parse_args(argv)
    estimates = _Estimates()
    pipeline.check_run = estimates
    measure(*make_case("circles", 60), 4, "auto")  # warm-up: imports, caches
    rows = []
    for text in [c.strip() for c in args.cases.split(",") if c.strip()]:
        rows.append(run_case(text, args.repeats, estimates))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    return save_results([Path(args.out)], {"cases": rows, "repeats": args.repeats}, [], indent=1)


if __name__ == "__main__":
    raise SystemExit(main())
