"""Speed of auto mode at its defaults against nsbatwm's Voronoi-Otsu labeling, side by side.

Usage::

    .venv/bin/python bench/auto_speed.py                # every case; writes bench/results/auto_speed.json
    .venv/bin/python bench/auto_speed.py --quick        # < 1 minute: DSB and the 3D stack, 1 warm run
    .venv/bin/python bench/auto_speed.py --cases dsb2018-512,mosaic-1024 --repeats 5
    .venv/bin/python bench/auto_speed.py --config skip_clear_parts=true --out /tmp/skip.json

Methods
-------
auto
    ``segment(image, n_clusters="auto")``, with ``spacing=`` for the
    anisotropic stack: every other parameter at its default (threshold,
    sigma, min_size, polarity and background "auto"). ``random_state`` is left at its default. It
    runs as ``run_to_end(iter_segment(..., auto_config=AutoConfig(...)))``,
    which is what ``segment`` does; ``--config FIELD=VALUE`` changes a field
    of that AutoConfig (a study, never written to the default result file).
voronoi-otsu
    The published ``voronoi_otsu_labeling(image, spot_sigma=2,
    outline_sigma=2)`` of napari-segment-blobs-and-things-with-membranes, at
    its documented defaults (sigmas in pixels; it has no ``spacing``).

Cases
-----
dsb2018-512
    The DSB 2018 nuclei image (512 x 512, uint16, 125 nuclei) from the
    ``stardist`` wheel, as in ``bench/quality.py``; skipped (and said so)
    when stardist is not installed.
stack-40x112x112
    ``textured_nuclei((40, 112, 112), 20, spacing=(2.5, 1, 1), seed=0)``.
mosaic-1024, mosaic-3072
    4 x 4 and 12 x 12 tiles of ``touching_blobs((256, 256), 80,
    radius_range=(4, 7), seed=50 + k)``: about 1,300 and 11,500 small
    nuclei, many touching.

Every (case, method) runs in a fresh Python process (the script re-runs
itself with the hidden ``--worker`` flag), so its peak memory (``ru_maxrss``)
is its own. In that process the imports are timed (``import_s``), the image
is loaded, then the method runs once (``cold_s``: the first call, with the
lazy imports and first-call setup it triggers) and ``--repeats`` more times
(``warm_s``: their median). ``ratio`` is auto's time over Voronoi-Otsu's, cold
to cold and warm to warm; ``mpix_s`` is the image's pixels (voxels) over
auto's warm time; ``cpu s`` is the median process CPU time of the warm runs
(steadier than wall time on a shared machine). F1 at IoU > 0.5 against the truth (``bench/_scoring.py``)
is of the first call. The images are made once per run in the parent and
handed to the workers as ``.npy`` files.

Only a full run (no ``--quick``, no ``--cases``) writes
``bench/results/auto_speed.json``; a partial run prints only, unless ``--out``
is given. A missing dependency stops the run with one line (exit code 2); a
case that fails is shown as FAILED, the others still run, and the run exits
with code 1 leaving the result file alone (its rows go to
``<out>-FAILED.json.tmp``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

from _bench_support import error_text, exit_missing, save_results

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(HERE, "results", "auto_speed.json")
AUTO_CALL = 'segment(image, n_clusters="auto"[, spacing=...])'
VORONOI_CALL = "voronoi_otsu_labeling(image, spot_sigma=2, outline_sigma=2)"
METHODS = ("auto", "voronoi-otsu")
CASES = ("dsb2018-512", "stack-40x112x112", "mosaic-1024", "mosaic-3072")
QUICK_CASES = ("dsb2018-512", "stack-40x112x112")
STACK_SPACING = (2.5, 1.0, 1.0)
TILE = 256
WORKER_TIMEOUT = 1800  # seconds per (case, method) process
# What the parent and the workers import, checked once here (every case would fail without them).
IMPORTS = ("numpy", "napari_spectral_seg", "napari_spectral_seg.data", "napari_segment_blobs_and_things_with_membranes")


def _check_imports():
    sys.path.insert(0, os.path.join(ROOT, "src"))
    try:
        for name in IMPORTS:
            importlib.import_module(name)
        import tifffile  # noqa: F401  (the DSB image)
    except ImportError as err:
        exit_missing(err, __file__)


# -------------------------------------------------------------------- cases
def _dsb():
    import numpy as np
    import tifffile

    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("stardist wheel not installed (.venv/bin/pip install --no-deps stardist==0.9.2)")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data", "images")
    image = tifffile.imread(os.path.join(folder, "img2d.tif"))
    truth = tifffile.imread(os.path.join(folder, "mask2d.tif"))
    return image, truth.astype(np.int32), None, "DSB 2018 (stardist/data/images/img2d.tif), uint16"


def _stack():
    from napari_spectral_seg.data import textured_nuclei

    image, truth = textured_nuclei((40, 112, 112), 20, spacing=STACK_SPACING, seed=0)
    return image, truth, STACK_SPACING, f"textured_nuclei((40, 112, 112), 20, spacing={STACK_SPACING}, seed=0), uint16"


def _mosaic(n):
    import numpy as np

    from napari_spectral_seg.data import touching_blobs

    images, truths, offset = [], [], 0
    for k in range(n * n):
        image, truth = touching_blobs((TILE, TILE), 80, radius_range=(4.0, 7.0), seed=50 + k)
        images.append(image)
        truths.append(np.where(truth > 0, truth + offset, 0))
        offset += int(truth.max())
    rows = range(n)
    image = np.block([[images[n * i + j] for j in rows] for i in rows])
    truth = np.block([[truths[n * i + j] for j in rows] for i in rows]).astype(np.int32)
    return image, truth, None, f"{n} x {n} tiles of touching_blobs((256, 256), 80, radius_range=(4, 7), seed=50+k)"


def make_case(name):
    """(image, truth, spacing, source) of case ``name``; OSError when its data is not installed."""
    if name == "dsb2018-512":
        return _dsb()
    if name == "stack-40x112x112":
        return _stack()
    return _mosaic(int(name.split("-")[1]) // TILE)


# ------------------------------------------------------------------- worker
def _peak_rss_bytes() -> int:
    """Peak resident memory of this process.

    On Linux ``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` keeps, across the
    ``exec`` of a worker, the peak of the parent that forked it (which holds the images).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def worker(spec: dict) -> dict:
    """Time one method on one image in this (fresh) process; return the figures."""
    t0 = time.perf_counter()
    import numpy as np
    from _scoring import score

    if spec["method"] == "auto":
        from napari_spectral_seg.core import iter_segment, run_to_end
        from napari_spectral_seg.core.auto import AutoConfig

        extra = {} if spec["spacing"] is None else {"spacing": tuple(spec["spacing"])}
        # segment() with the same arguments, when no AutoConfig field is changed.
        config = AutoConfig(**spec.get("auto_config", {}))

        def run(image):
            steps = iter_segment(image, n_clusters="auto", auto_config=config, **extra)
            return run_to_end(steps).labels

    else:
        from napari_segment_blobs_and_things_with_membranes import voronoi_otsu_labeling

        def run(image):
            return np.asarray(voronoi_otsu_labeling(image, spot_sigma=2.0, outline_sigma=2.0))

    import_s = time.perf_counter() - t0
    image = np.load(spec["image"])
    rss_loaded = _peak_rss_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    labels = run(image)
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    warm, warm_cpu = [], []
    for _ in range(spec["repeats"]):
        t0, c0 = time.perf_counter(), time.process_time()
        run(image)
        warm.append(time.perf_counter() - t0)
        warm_cpu.append(time.process_time() - c0)
    figures = {
        "import_s": import_s,
        "cold_s": cold,
        "warm_s": float(np.median(warm)) if warm else None,
        "warm_all_s": warm,
        # CPU time of the process: steadier than wall time on a shared machine.
        "cold_cpu_s": cold_cpu,
        "warm_cpu_s": float(np.median(warm_cpu)) if warm_cpu else None,
        "peak_rss_bytes": _peak_rss_bytes(),
        "rss_after_load_bytes": rss_loaded,
        "n_labels": int(labels.max()),
    }
    if spec.get("truth"):
        s = score(np.load(spec["truth"]), labels)
        figures["f1"] = round(2 * s["tp"] / max(s["n_true"] + s["n_pred"], 1), 4)
        figures["n_true"] = s["n_true"]
    return figures


def run_worker(spec: dict) -> dict:
    """:func:`worker` in a fresh interpreter that imports this checkout's ``src`` first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(ROOT, "src"), env.get("PYTHONPATH", "")]))
    try:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return {"error": tail[0]}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": f"the worker printed no result: {proc.stdout.strip()[-200:]!r}"}


# ---------------------------------------------------------------------- run
def run_case(name: str, repeats: int, folder: str, auto_config: dict | None = None) -> dict:
    """Both methods on case ``name``, each in a fresh process; the case's row."""
    import numpy as np

    image, truth, spacing, source = make_case(name)
    image_path, truth_path = os.path.join(folder, f"{name}.npy"), os.path.join(folder, f"{name}-truth.npy")
    np.save(image_path, image)
    np.save(truth_path, truth)
    row = {"case": name, "source": source, "shape": list(image.shape), "dtype": str(image.dtype)}
    row["spacing"] = None if spacing is None else list(spacing)
    row["n_true"] = int(len(np.unique(truth)) - (truth.min() == 0))
    row["methods"] = {}
    for method in METHODS:
        spec = {"method": method, "image": image_path, "truth": truth_path, "spacing": row["spacing"]}
        spec["auto_config"] = auto_config
        row["methods"][method] = run_worker({**spec, "repeats": repeats})
    auto, voronoi = row["methods"]["auto"], row["methods"]["voronoi-otsu"]
    if "error" not in auto and "error" not in voronoi:
        for key in ("cold_s", "warm_s", "warm_cpu_s"):
            if auto[key] is not None and voronoi[key] is not None:
                row[f"ratio_{key[:-2]}"] = auto[key] / max(voronoi[key], 1e-9)
        auto_s = auto["warm_s"] if auto["warm_s"] is not None else auto["cold_s"]
        row["mpix_s"] = image.size / auto_s / 1e6
    return row


def _print_row(row):
    if "skipped" in row:
        print(f"{row['case']:<18} skipped: {row['skipped']}", flush=True)
        return
    for method, m in row["methods"].items():
        if "error" in m:
            print(f"{row['case']:<18} {method:<13} FAILED: {m['error']}", flush=True)
            continue
        warm = "-" if m["warm_s"] is None else f"{m['warm_s']:.3f}"
        cpu = "-" if m["warm_cpu_s"] is None else f"{m['warm_cpu_s']:.3f}"
        ratio = row.get("ratio_warm", row.get("ratio_cold")) if method == "auto" else None
        ratio = "-" if ratio is None else f"{ratio:.1f}"
        mpix = f"{row['mpix_s']:.2f}" if method == "auto" and "mpix_s" in row else "-"
        print(
            f"{row['case']:<18} {method:<13} {m['cold_s']:>7.3f} {warm:>7} {cpu:>7} {ratio:>6} {mpix:>6} "
            f"{m['peak_rss_bytes'] / 2**20:>8.0f} {m.get('f1', float('nan')):>6.3f} {m['n_labels']:>6}",
            flush=True,
        )


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"cases {', '.join(QUICK_CASES)} with 1 warm run")
    parser.add_argument("--cases", help=f"comma-separated cases of: {', '.join(CASES)}")
    parser.add_argument("--repeats", type=int, help="warm runs per (case, method) after the cold one (default 3)")
    parser.add_argument("--out", help="result file (default: bench/results/auto_speed.json, full runs only)")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="an AutoConfig field for auto (e.g. skip_clear_parts=true); makes the run a partial one",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cases:
        unknown = sorted({c.strip() for c in args.cases.split(",")} - set(CASES))
        if unknown:
            parser.error(f"unknown case(s) {', '.join(map(repr, unknown))}; known: {', '.join(CASES)}")
    return args


def _auto_config(pairs) -> dict:
    """``FIELD=VALUE`` strings as AutoConfig keyword arguments (values as JSON, else text)."""
    config = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        try:
            config[name.strip()] = json.loads(text.strip().lower() if text.strip() in ("True", "False") else text)
        except ValueError:
            config[name.strip()] = text.strip()
    return config


def main(argv=None):
    """Run the cases, print the table, write the results; return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--worker" not in argv:
        _check_imports()  # before the arguments, so that even --help names a missing package
    args = _parse(argv)
    if args.worker:
        sys.path.insert(0, HERE)
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    names = [c.strip() for c in args.cases.split(",")] if args.cases else list(QUICK_CASES if args.quick else CASES)
    names = [c for c in CASES if c in names]
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    auto_config = _auto_config(args.config)
    full = not args.quick and not args.cases and not auto_config
    out = args.out or (DEFAULT_OUT if full else None)
    print(
        f"{'case':<18} {'method':<13} {'cold s':>7} {'warm s':>7} {'cpu s':>7} {'ratio':>6} {'MP/s':>6} {'peak MiB':>8} {'F1':>6} {'labels':>6}"
    )
    started, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="auto_speed-") as folder:
        for name in names:
            try:
                row = run_case(name, repeats, folder, auto_config)
            except OSError as exc:
                if name != "dsb2018-512":
                    raise
                row = {"case": name, "skipped": error_text(exc)}
            rows.append(row)
            _print_row(row)
    elapsed = time.perf_counter() - started
    print(f"\n{len(rows)} cases in {elapsed:.0f} s; ratio = auto / Voronoi-Otsu (warm, same run), MP/s = auto warm")
    result = {
        "auto": AUTO_CALL,
        "auto_config": auto_config,
        "voronoi_otsu": VORONOI_CALL,
        "repeats": repeats,
        "quick": args.quick,
        "seconds": round(elapsed, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "rows": rows,
    }
    failures = [f"{r['case']} {m}: {f['error']}" for r in rows for m, f in r.get("methods", {}).items() if "error" in f]
    code = save_results([out] if out else [], result, failures, indent=1, failed_to=out or DEFAULT_OUT)
    if not code:
        print(
            f"wrote {out}"
            if out
            else "partial run (--quick, --cases or --config): results not saved (give --out to save)"
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
