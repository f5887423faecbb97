"""Benchmark: napari-spectral-seg vs the seed's scikit-learn pipeline, side by side.

Usage::

    .venv/bin/pip install -e ".[test,bench]"          # once; bench = matplotlib for the plot
    .venv/bin/python bench/run.py            # full: 2D 100..8192, 3D 64^3..256^3
    .venv/bin/python bench/run.py --quick    # < 2 minutes
    .venv/bin/python bench/run.py --cases "2D 1600" --repeats 3 --no-seeds
    .venv/bin/python bench/run.py --cases "2D 1600" --repeats 5 --no-seeds --cold

Every (case, method) runs in a fresh Python process (the script re-runs
itself with the hidden ``--worker`` flag), so each peak memory figure
(``ru_maxrss`` of that process) belongs to one case alone. Inside a worker
the imports and the test image are made before the clock starts; the wall
time is the median over repeats. With ``--cold`` nothing is warmed up: each
repeat is the first call of its own fresh process (the imports done before
the clock starts, and for ours :func:`napari_spectral_seg.core.warm.prepare`,
which the command line runs before it reads the image, timed apart as
``prepare_s``). CPU time (``time.process_time``) is
reported too: the machine this was written on is shared and noisy, so wall
times swing with other people's load while CPU time and same-run ratios are
steadier.

Methods
-------
ours
    ``napari_spectral_seg.segment(image, mask, n_clusters=4)`` (eigen_solver="auto").
sklearn-arpack, sklearn-amg
    The seed example: ``img_to_graph`` + ``exp(-g / g.std())`` +
    ``spectral_clustering(eigen_solver=...)``.

Data: ``four_circles(size, noise=0.2, seed)`` (2D circles or 3D spheres),
mask = the circles; ARI is scored on the pixels inside exactly one circle.
Results go to ``bench/results/<timestamp>.json``; a full run (no ``--quick``,
no ``--cases``) also replaces ``latest.json`` and draws the time-vs-pixels plot
``docs/performance.png`` when matplotlib is installed.
The workers import this checkout's ``src`` (put first on their ``PYTHONPATH``).

A missing dependency stops the run at once with one line (exit code 2). A case
that fails (its worker raised) is shown as FAILED; the run then goes on with
the other cases, exits with code 1 and leaves ``latest.json`` and the plot
alone: its rows go to ``bench/results/<timestamp>-FAILED.json.tmp``. Cases over
the size limits below, or past the worker timeout, are skipped, not failed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from _bench_support import INSTALL, exit_missing, save_results, write_atomic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (label, size, ndim)
FULL_CASES = [
    ("2D 100", 100, 2),
    ("2D 400", 400, 2),
    ("2D 800", 800, 2),
    ("2D 1600", 1600, 2),
    ("2D 2048", 2048, 2),
    ("2D 4096", 4096, 2),
    ("2D 8192", 8192, 2),
    ("3D 64", 64, 3),
    ("3D 128", 128, 3),
    ("3D 256", 256, 3),
]
QUICK_CASES = [("2D 100", 100, 2), ("2D 400", 400, 2), ("3D 64", 64, 3)]
METHODS = ("ours", "sklearn-arpack", "sklearn-amg")

# scikit-learn is skipped above these node counts (masked pixels), where it
# would take well over a minute or several GiB on a 2-core, 24 GiB machine
# (measured on this machine: arpack 694k nodes = 18 s / 1.7 GB; the sparse
# LU of a 3D grid fills in far faster than in 2D).
SKLEARN_LIMITS = {
    ("sklearn-arpack", 2): 1_200_000,
    ("sklearn-arpack", 3): 120_000,
    ("sklearn-amg", 2): 1_200_000,
    ("sklearn-amg", 3): 120_000,
}
WORKER_TIMEOUT = 600  # seconds per (case, method) process


def _peak_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _score(truth, labels):
    from sklearn.metrics import adjusted_rand_score

    inside = truth > 0
    return float(adjusted_rand_score(truth[inside], labels[inside]))


def worker(spec: dict) -> dict:
    """Run one (case, method) ``repeats`` times in this process; return the figures."""
    import numpy as np

    from napari_spectral_seg.data import four_circles

    method, size, ndim = spec["method"], spec["size"], spec["ndim"]
    seeds = spec.get("seeds", [spec.get("seed", 0)])
    prepare_s = None
    if method == "ours":
        from napari_spectral_seg import segment

        if spec.get("cold"):  # what the command line does before the first call, timed apart
            from napari_spectral_seg.core.warm import prepare

            started = time.perf_counter()
            prepare()
            prepare_s = time.perf_counter() - started

        def run(image, mask):
            return segment(image, mask, n_clusters=4, random_state=0)

    else:
        from sklearn.cluster import spectral_clustering
        from sklearn.feature_extraction import image as skimage

        solver = method.split("-", 1)[1]

        def run(image, mask):
            graph = skimage.img_to_graph(image, mask=mask)
            graph.data = np.exp(-graph.data / graph.data.std())
            labels = spectral_clustering(graph, n_clusters=4, eigen_solver=solver, random_state=0)
            out = np.zeros(mask.shape, dtype=np.int32)
            out[mask] = labels + 1
            return out

    # Warm-up on a tiny image: lazy imports and first-call setup inside
    # scikit-learn / scipy are not what is being timed.
    if not spec.get("cold"):
        small, small_mask, _ = four_circles(40, noise=0.2, seed=0, ndim=2)
        run(small, small_mask)

    walls, cpus, aris = [], [], []
    rss_before = None
    for seed in seeds:
        image, mask, truth = four_circles(size, noise=0.2, seed=seed, ndim=ndim)
        if rss_before is None:
            rss_before = _peak_rss_bytes()
        for _ in range(spec["repeats"]):
            t0, c0 = time.perf_counter(), time.process_time()
            labels = run(image, mask)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            aris.append(_score(truth, labels))
    return {
        "wall_s": float(np.median(walls)),
        "wall_all_s": walls,
        "cpu_s": float(np.median(cpus)),
        "ari_min": float(min(aris)),
        "ari_all": aris,
        "peak_rss_bytes": _peak_rss_bytes(),
        "rss_after_setup_bytes": rss_before,
        "n_nodes": int(mask.sum()),
        "n_pixels": int(mask.size),
        "cold": bool(spec.get("cold")),
        "prepare_s": prepare_s,
    }


def run_worker(spec: dict) -> dict:
    """Run :func:`worker` in a fresh interpreter (fresh peak-RSS counter)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")]))
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {WORKER_TIMEOUT} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return {"error": tail[0]}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": f"the worker printed no result: {proc.stdout.strip()[-200:]!r}"}


def _cold_rows(spec: dict) -> dict:
    """``spec["repeats"]`` fresh processes of one timed first call each, as one row.

    Wall and CPU time are medians over the processes, ARI the worst, peak memory the largest.
    """
    import statistics

    runs = [run_worker({**spec, "repeats": 1, "cold": True}) for _ in range(spec["repeats"])]
    failed = next((r for r in runs if "wall_s" not in r), None)
    if failed is not None:
        return failed
    row = dict(runs[0])
    row.update(
        wall_s=statistics.median(r["wall_s"] for r in runs),
        wall_all_s=[r["wall_s"] for r in runs],
        cpu_s=statistics.median(r["cpu_s"] for r in runs),
        ari_min=min(r["ari_min"] for r in runs),
        ari_all=[r["ari_min"] for r in runs],
        peak_rss_bytes=max(r["peak_rss_bytes"] for r in runs),
    )
    if runs[0].get("prepare_s") is not None:
        row["prepare_s"] = statistics.median(r["prepare_s"] for r in runs)
    return row


def _repeats(method: str, n_nodes: int, quick: bool) -> int:
    if method == "ours":
        return 3 if n_nodes < 2_000_000 else 2
    return 1 if (quick or n_nodes > 100_000) else 3


def _approx_nodes(size: int, ndim: int) -> int:
    # Fraction of the image inside the circles / spheres (from four_circles).
    return int(size**ndim * (0.268 if ndim == 2 else 0.0541))


def _fmt_bytes(b):
    return "-" if b is None else f"{b / 2**30:.2f}"


# What the workers import. Checked in this process only: a worker imports just what its
# method needs, and its peak memory counts what it imported.
WORKER_IMPORTS = (
    "napari_spectral_seg",
    "napari_spectral_seg.data",
    "numpy",
    "sklearn.cluster",
    "sklearn.feature_extraction.image",
    "sklearn.metrics",
)


def _check_imports():
    """Exit with one line if something a worker imports is missing (every case would fail)."""
    for name in WORKER_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError as err:
            exit_missing(err, __file__)


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small cases only (< 2 minutes)")
    parser.add_argument("--cases", help="comma-separated case labels to run, e.g. '2D 1600,3D 128'")
    parser.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn pipelines")
    parser.add_argument("--no-seeds", action="store_true", help="skip the seed-example check (size 100, seeds 0..9)")
    parser.add_argument(
        "--repeats",
        type=int,
        help="timed runs per (case, method), all methods (default: 3 for ours, 1-3 for scikit-learn)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=HERE / "results",
        help="where <timestamp>.json and latest.json go (default: bench/results)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not draw docs/performance.png")
    parser.add_argument(
        "--cold", action="store_true", help="no warm-up: each repeat is the first call of a fresh process"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cases:
        known = {c[0] for c in FULL_CASES}
        unknown = sorted({c.strip() for c in args.cases.split(",")} - known)
        if unknown:
            parser.error(
                f"unknown case(s) {', '.join(map(repr, unknown))}; known: {', '.join(c[0] for c in FULL_CASES)}"
            )
    return args


def _report(row):
    ratio = row.get("speedup_vs_arpack")
    if "wall_s" in row:
        print(
            f"{row['case']:<9}{row['n_nodes']:>10}  {row['method']:<15}{row['wall_s']:>8.2f}{row['cpu_s']:>8.2f}"
            f"{_fmt_bytes(row['peak_rss_bytes']):>9}{row['ari_min']:>8.4f}"
            f"{(f'{ratio:.1f}' if ratio else '-'):>9}",
            flush=True,
        )
    elif "error" in row:
        print(f"{row['case']:<9}{row['n_nodes']:>10}  {row['method']:<15}  FAILED: {row['error']}", flush=True)
    else:
        print(f"{row['case']:<9}{row['n_nodes']:>10}  {row['method']:<15}  skipped: {row['skipped']}", flush=True)


def _seed_rows(no_sklearn: bool) -> list:
    """The seed example itself: size 100, noise seeds 0..9."""
    results = []
    for method in ("ours",) if no_sklearn else ("ours", "sklearn-arpack"):
        spec = {"method": method, "size": 100, "ndim": 2, "repeats": 1, "seeds": list(range(10))}
        row = {"case": "seed 0-9", "method": method, **run_worker(spec)}
        row.setdefault("n_nodes", 2678)
        results.append(row)
    arpack_row = results[-1] if not no_sklearn else None
    for row in results:
        if arpack_row and "wall_s" in row and "wall_s" in arpack_row:
            row["speedup_vs_arpack"] = arpack_row["wall_s"] / row["wall_s"]
        _report(row)
    return results


def _case_rows(label, size, ndim, methods, args) -> list:
    """Every method on one case, in fresh processes; the rows, also printed."""
    n_est = _approx_nodes(size, ndim)
    rows = []
    for method in methods:
        row = {"case": label, "size": size, "ndim": ndim, "method": method}
        limit = SKLEARN_LIMITS.get((method, ndim))
        if limit is not None and n_est > limit:
            row.update(
                skipped=f"~{n_est:,} nodes > {limit:,}: would take > ~60 s or several GiB",
                n_nodes=n_est,
            )
        else:
            spec = {
                "method": method,
                "size": size,
                "ndim": ndim,
                "seed": 0,
                "repeats": args.repeats or _repeats(method, n_est, args.quick),
            }
            row.update(_cold_rows(spec) if args.cold else run_worker(spec))
            row.setdefault("n_nodes", n_est)
        rows.append(row)
    arpack = next((r for r in rows if r["method"] == "sklearn-arpack" and "wall_s" in r), None)
    for row in rows:
        if arpack is not None and "wall_s" in row:
            row["speedup_vs_arpack"] = arpack["wall_s"] / row["wall_s"]
            row["memory_vs_arpack"] = row["peak_rss_bytes"] / arpack["peak_rss_bytes"]
        _report(row)
    return rows


def _save(results, args, total) -> int:
    """Write the results (only if no case failed) and the plot; return the exit code."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    payload = {
        "when": stamp,
        "quick": bool(args.quick),
        "cold": bool(args.cold),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
        },
        "benchmark_seconds": total,
        "results": results,
    }
    out = args.out_dir / f"{stamp}{'-quick' if args.quick else ''}{'-cold' if args.cold else ''}.json"
    failures = [f"{r['case']} {r['method']}: {r['error']}" for r in results if "error" in r]
    # A quick or partial run is not the full benchmark: it never replaces latest.json or the plot.
    full = not args.quick and not args.cases and not args.cold
    code = save_results([out, args.out_dir / "latest.json"] if full else [out], payload, failures, indent=1)
    if code:
        return code
    print(f"wrote {out}")
    if full and not args.no_plot:
        _plot(results)
    return 0


def main(argv=None):
    args = _parse(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    _check_imports()

    cases = QUICK_CASES if args.quick else FULL_CASES
    if args.cases:
        wanted = {c.strip() for c in args.cases.split(",")}
        cases = [c for c in FULL_CASES if c[0] in wanted]
    methods = ("ours",) if args.no_sklearn else METHODS
    if args.quick:
        methods = tuple(m for m in methods if m != "sklearn-amg")  # stay under 2 minutes

    started = time.perf_counter()
    header = (
        f"{'case':<9}{'nodes':>10}  {'method':<15}{'wall s':>8}{'cpu s':>8}{'peak GiB':>9}{'ARI':>8}{'x arpack':>9}"
    )
    print(header)
    print("-" * len(header), flush=True)
    results = [] if args.no_seeds else _seed_rows(args.no_sklearn)
    for label, size, ndim in cases:
        results.extend(_case_rows(label, size, ndim, methods, args))

    total = time.perf_counter() - started
    print(f"\nbenchmark took {total:.0f} s; wall = median over repeats, cpu = median process CPU time,")
    print("peak = max RSS of a fresh process (includes Python, imports and the test image),")
    print("x arpack = sklearn-arpack wall time / this wall time, same run.")
    return _save(results, args, total)


def _plot(results):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib not installed: no plot (it is in the bench extra: {INSTALL})")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, marker in zip(METHODS, "osd"):
        for ndim, fill in ((2, "full"), (3, "none")):
            rows = [r for r in results if r["method"] == method and r.get("ndim") == ndim and "wall_s" in r]
            if not rows:
                continue
            rows.sort(key=lambda r: r["n_nodes"])
            ax.plot(
                [r["n_nodes"] for r in rows],
                [r["wall_s"] for r in rows],
                marker=marker,
                fillstyle=fill,
                label=f"{method} ({ndim}D)",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pixels in the mask (graph nodes)")
    ax.set_ylabel("wall time, s (median)")
    ax.set_title("four circles / spheres, 4 segments")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out = ROOT / "docs" / "performance.png"
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    write_atomic(out, png.getvalue())
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
