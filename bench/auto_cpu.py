"""CPU time of auto mode against Voronoi-Otsu (and another checkout), the calls alternating in one process.

Usage::

    .venv/bin/python bench/auto_cpu.py                          # DSB, 512² textured, stack, 1024² mosaic
    .venv/bin/python bench/auto_cpu.py --against ../main/src    # and the code of another checkout, alongside
    .venv/bin/python bench/auto_cpu.py --cases mosaic-3072 --repeats 3 --out /tmp/cpu.json

On a machine shared with other jobs wall time says little; this script times
each call by the process's CPU time (``time.process_time``) and takes the
median of ``--repeats`` calls (default 3) after one untimed call of each
method. The methods alternate call by call, so a change of load hits them
alike: ``ratio`` (auto over Voronoi-Otsu) and ``speed-up`` (the other
checkout over this one) are the figures to compare. Auto is ``segment(image,
n_clusters="auto")`` (``spacing=`` for the stack), Voronoi-Otsu is nsbatwm's
``voronoi_otsu_labeling(image, 2, 2)``, as in ``bench/auto_speed.py``, whose
cases (and the 512² ``textured-512``) these are.

``--against SRC`` copies ``SRC/napari_spectral_seg`` to a temporary folder
under another name and imports it beside this checkout's code (the package
imports itself relatively), so both run in the same process on the same
images; ``same`` says whether their labels are identical.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from _bench_support import exit_missing, write_atomic

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
CASES = ("dsb2018-512", "textured-512", "stack-40x112x112", "mosaic-1024", "mosaic-3072")
DEFAULT_CASES = CASES[:4]
OTHER = "napari_spectral_seg_against"

sys.path.insert(0, SRC)
try:  # the project first: without it, that is what the one line names
    import napari_spectral_seg
    from napari_spectral_seg.data import textured_nuclei
except ImportError as err:
    exit_missing(err, __file__)
try:
    import numpy as np
    from auto_speed import make_case
    from napari_segment_blobs_and_things_with_membranes import voronoi_otsu_labeling
except ImportError as err:
    exit_missing(err, __file__)


def _case(name):
    if name == "textured-512":
        image, _ = textured_nuclei((512, 512), 125, seed=0)
        return image, None
    image, _, spacing, _ = make_case(name)
    return image, spacing


def _cpu(fn):
    start = time.process_time()
    fn()
    return time.process_time() - start


def _import_against(src: str, folder: str):
    """The package of checkout ``src``, copied into ``folder`` as :data:`OTHER` and imported."""
    package = os.path.join(src, "napari_spectral_seg")
    if not os.path.isfile(os.path.join(package, "__init__.py")):
        raise SystemExit(f"--against {src}: no napari_spectral_seg package there; give a checkout's src folder.")
    shutil.copytree(package, os.path.join(folder, OTHER), ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, folder)
    return importlib.import_module(OTHER)


def time_case(name: str, repeats: int, against=None) -> dict:
    """Median CPU seconds of each method on case ``name``, the calls alternating."""
    image, spacing = _case(name)
    extra = {} if spacing is None else {"spacing": spacing}
    methods = {"auto": lambda: napari_spectral_seg.segment(image, n_clusters="auto", **extra)}
    if against is not None:
        methods["against"] = lambda: against.segment(image, n_clusters="auto", **extra)
    methods["voronoi"] = lambda: np.asarray(voronoi_otsu_labeling(image, spot_sigma=2.0, outline_sigma=2.0))
    first = {key: np.asarray(fn()) for key, fn in methods.items()}  # untimed: first-call imports and caches
    seconds = {key: [] for key in methods}
    for _ in range(repeats):
        for key, fn in methods.items():
            seconds[key].append(_cpu(fn))
    row = {"case": name, "shape": list(image.shape), "n_labels": int(first["auto"].max())}
    for key, values in seconds.items():
        row[f"{key}_cpu_s"], row[f"{key}_all_s"] = statistics.median(values), values
    row["ratio"] = row["auto_cpu_s"] / max(row["voronoi_cpu_s"], 1e-9)
    row["mpix_s_cpu"] = image.size / row["auto_cpu_s"] / 1e6
    if against is not None:
        row["against_ratio"] = row["against_cpu_s"] / max(row["voronoi_cpu_s"], 1e-9)
        row["speed_up"] = row["against_cpu_s"] / max(row["auto_cpu_s"], 1e-9)
        row["same"] = bool(np.array_equal(first["auto"], first["against"]))
    return row


def _line(row) -> str:
    text = f"{row['case']:<18} {row['auto_cpu_s']:>8.3f} {row['voronoi_cpu_s']:>8.3f} {row['ratio']:>6.1f}"
    text += f" {row['mpix_s_cpu']:>6.2f} {row['n_labels']:>6}"
    if "against_cpu_s" in row:
        text += f" {row['against_cpu_s']:>8.3f} {row['against_ratio']:>6.1f} {row['speed_up']:>6.2f} {row['same']!s:>5}"
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help=f"comma-separated, of: {', '.join(CASES)} (default: the first four)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each method (default 3)")
    parser.add_argument("--against", metavar="SRC", help="also time the napari_spectral_seg of this src folder")
    parser.add_argument("--out", help="write the rows to this JSON file")
    args = parser.parse_args(argv)
    names = [c.strip() for c in args.cases.split(",")] if args.cases else list(DEFAULT_CASES)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    with tempfile.TemporaryDirectory(prefix="auto_cpu-") as folder:
        against = None if args.against is None else _import_against(os.path.abspath(args.against), folder)
        print(f"CPU seconds, medians of {args.repeats}; auto = {os.path.dirname(napari_spectral_seg.__file__)}")
        header = f"{'case':<18} {'auto':>8} {'VO':>8} {'ratio':>6} {'MP/s':>6} {'labels':>6}"
        if against is not None:
            header += f" {'against':>8} {'ratio':>6} {'speed':>6} {'same':>5}   (against = {args.against})"
        print(header)
        rows = []
        for name in names:
            rows.append(time_case(name, args.repeats, against))
            print(_line(rows[-1]), flush=True)
    if args.out:
        result = {"against": args.against, "repeats": args.repeats, "load_average": os.getloadavg(), "rows": rows}
        write_atomic(args.out, json.dumps(result, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
