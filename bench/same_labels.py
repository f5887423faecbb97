"""Auto mode's labels of this checkout against another one's, array by array, on 31 images.

Usage::

    .venv/bin/python bench/same_labels.py --against ../main/src
    .venv/bin/python bench/same_labels.py --against ../main/src --quick   # the small images only

A speed change of auto mode must not change what it returns. This script runs
``segment(image, n_clusters="auto")`` (``spacing=`` where the image has one)
with this checkout's code and with the code of ``--against`` (imported beside
it under another name, as ``bench/auto_cpu.py`` does) on: the blobs, textured
and dense generators of ``bench/quality.py`` in 2D (6 seeds each) and 3D
(3 seeds each), seeds outside every benchmark set; the DSB 2018 image; the
512² textured image, the 40×112×112 stack and the 1024² mosaic of
``bench/auto_cpu.py``. It compares the label arrays (shape, dtype and every
value) and exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

from _bench_support import exit_missing  # noqa: E402

try:
    import numpy as np
    from auto_cpu import _case, _import_against
    from quality import GENERATORS

    import napari_spectral_seg
except ImportError as err:
    exit_missing(err, __file__)

SEEDS_2D = range(7100, 7106)
SEEDS_3D = range(7100, 7103)
LARGE_CASES = ("dsb2018-512", "textured-512", "stack-40x112x112", "mosaic-1024")


def images(quick: bool = False):
    """(name, image, spacing) of every image compared."""
    for (generator, ndim), (_, make) in GENERATORS.items():
        seeds = SEEDS_2D if ndim == 2 else SEEDS_3D
        for seed in seeds:
            image, _, spacing = make(seed)
            yield f"{generator}-{ndim}d-seed{seed}", image, spacing
    if not quick:
        for name in LARGE_CASES:
            image, spacing = _case(name)
            yield name, image, spacing


def _run(package, image, spacing):
    extra = {} if spacing is None else {"spacing": spacing}
    start = time.process_time()
    result = package.segment(image, n_clusters="auto", **extra)
    return result, time.process_time() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, metavar="SRC", help="the src folder of the other checkout")
    parser.add_argument("--quick", action="store_true", help="the generated images only (no DSB, 512², stack, mosaic)")
    args = parser.parse_args(argv)
    differing = 0
    with tempfile.TemporaryDirectory(prefix="same_labels-") as folder:
        other = _import_against(os.path.abspath(args.against), folder)
        print(f"this = {os.path.dirname(napari_spectral_seg.__file__)}; against = {args.against}")
        print(f"{'image':<26} {'labels':>6} {'same':>5} {'cpu this':>9} {'cpu other':>9}")
        count = 0
        for name, image, spacing in images(args.quick):
            ours, t_ours = _run(napari_spectral_seg, image, spacing)
            theirs, t_theirs = _run(other, image, spacing)
            a, b = np.asarray(ours), np.asarray(theirs)
            same = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
            differing += not same
            count += 1
            print(f"{name:<26} {int(a.max()):>6} {same!s:>5} {t_ours:>9.3f} {t_theirs:>9.3f}", flush=True)
    print(f"{count} images, {differing} differing")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
