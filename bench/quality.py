"""Instance-segmentation quality of ``n_clusters="auto"`` at its defaults, tuned, and against baselines.

Every set is scored for every method in the same run, on the same images.

Methods
-------
defaults
    ``segment(image, n_clusters="auto")`` and nothing else: threshold,
    smoothing, smallest piece, polarity and background all at their
    defaults ("auto": chosen from the image). ``spacing=`` is passed for the
    anisotropic 3D sets (a property of the data, not a setting).
old-defaults
    What the defaults were before they adapted to the image:
    ``threshold="otsu", sigma=None, min_size=0, polarity="bright",
    background="flat"`` (see :data:`OLD_DEFAULTS`), for comparison.
tuned
    The same with the settings chosen while developing:
    ``sigma=1, min_size=20, random_state=0`` (see :data:`TUNED`).
nsbatwm-defaults
    The published ``voronoi_otsu_labeling(image, spot_sigma, outline_sigma)``
    of napari-segment-blobs-and-things-with-membranes (nsbatwm), called as
    published, at its documented defaults ``spot_sigma=2, outline_sigma=2``
    (sigmas in pixels on every axis; it has no ``spacing``).
nsbatwm-best
    The same at its best ``spot_sigma`` of {1, 2, 3, 4} (``outline_sigma=2``)
    on each set, chosen on that set's own score: the baseline's best case,
    an optimistic figure for it. Every value's score is in the JSON.
otsu-cc
    Gaussian smoothing (sigma 1 pixel), Otsu threshold, connected
    components, pieces under 20 pixels dropped.
dt-watershed
    The mask of otsu-cc split by a distance-transform watershed
    (scikit-image): Euclidean distance transform of the mask (with
    ``sampling=spacing``), markers at ``peak_local_max(distance,
    min_distance=5, labels=<connected components>, exclude_border=False)``
    (``min_distance`` in pixels), ``watershed(-distance, markers, mask=mask)``.
    Settings picked once, not tuned.

Scores
------
A predicted object *matches* a true one when their intersection over union
exceeds 0.5 (such a match is unique). ``F1 = 2 TP / (n_true + n_pred)``,
pooled over the images of a set (TP, n_true and n_pred summed), so every
object weighs alike. Time is the median wall time of one call per image.
Error kinds, per image (``|A|`` is the pixel count of object A, ``A & B``
their overlap):

merge
    A predicted object P that covers at least half of each of two or more
    true objects (``|P & T| >= 0.5 |T|``). Counted once per such P;
    ``lost_to_merges`` counts the unmatched true objects covered by one.
split
    An unmatched true object T, not lost to a merge, with two or more
    *fragments* (predicted objects lying mostly inside it: ``|P & T| > 0.5
    |P|``) that together cover at least half of it.
miss
    An unmatched true object that is neither lost to a merge nor split
    (e.g. left out of the mask, or covered by one object that is too small
    or too large for IoU 0.5).
false positive
    A predicted object that matches no true object and is neither a merge
    nor a fragment of a split object. ``fp_background`` of them lie mostly
    on background; their sizes (pixels) are listed, and the table shows the
    count and the median size.

So ``n_true = TP + splits + lost_to_merges + misses`` on every set.

Data
----
Three generators, each in 2D and in 3D:

blobs
    :func:`napari_spectral_seg.data.touching_blobs`: 2D 128 x 128 with 14
    objects, 3D 40 x 64 x 64 with 12 (isotropic).
textured
    :func:`napari_spectral_seg.data.textured_nuclei` at its defaults
    (chromatin texture, 1-3 nucleoli, illumination gradient, seamless
    contact, 5x size range, Poisson counts, uint16): 2D 128 x 128 with 14
    nuclei, 3D 32 x 80 x 80 with 12 and ``spacing=(2.5, 1, 1)``.
dense
    :func:`napari_spectral_seg.data.touching_blobs` as a crowded field of
    small nuclei: 2D 256 x 256 with 80 objects of radius 4-7, 3D
    32 x 96 x 96 with 60 of radius 3-5 (the kind of field a 3072² slide
    region holds, which the 128² sets do not show).

Sets, named ``<generator>-<kind>-<2d|3d>``:

tuning (``blobs-tuning-2d`` ...)
    Seeds 0-19 (2D) and 0-5 (3D). Look at these while developing and tuning.
    The touching_blobs seeds 0-9 / 0-2 of the former ``synthetic-2d/3d``
    sets (where the auto mode's defaults were tuned) are part of them.
selection (``blobs-selection-2d`` ...)
    Seeds 2000-2039 (2D) and 2000-2011 (3D): the former report sets. The
    ablation (``bench/ablation.py``) chose the auto-mode rules on them, so
    they are selection data now, no longer a fresh test. The table marks
    them ``selection``.
old-report (``blobs-old-report-2d`` ...)
    Seeds 3000-3039 (2D) and 3000-3011 (3D): the report sets of the round
    that chose the auto-mode rules, run once then. A later choice (the
    smoothing floor) was made after their figures were known, so they are
    no longer a fresh test.
previous-report (``blobs-previous-report-2d`` ...)
    Seeds 4000-4039 (2D) and 4000-4011 (3D): the report sets of the round
    that removed the smoothing floor, run once then. The dim-object search
    (``low_threshold``) was built after their figures were known, so they
    are no longer a fresh test.
report (``blobs-report-2d`` ...)
    Seeds 5000-5039 (2D) and 5000-5011 (3D). **Run once after the last
    choice**: nobody tunes or selects on them, and a run that looked at them
    while choosing makes them selection sets. The table marks them ``REPORT``.
dsb2018-real
    A real fluorescence image of nuclei (512 x 512, uint16) with hand-made
    instance annotations from the 2018 Data Science Bowl (Caicedo et al.,
    Nature Methods 2019), as shipped inside the ``stardist`` wheel on PyPI
    (``stardist/data/images/img2d.tif`` / ``mask2d.tif``). Install it without
    its deep-learning dependencies: ``pip install --no-deps stardist``; the
    files are read with tifffile, stardist itself is never imported. Skipped
    (and said so) when absent. It was looked at while tuning.
legacy (only when named)
    The touching_blobs seed ranges the README's older figures cite, kept
    under their old meaning: ``blobs-heldout-*`` (100-109 / 100-102),
    ``blobs-fresh-*`` (300-319 / 300-305), ``blobs-unseen-*`` (500-539 /
    500-511), ``blobs-new-*`` (700-739 / 700-711), ``blobs-final-*``
    (900-939 / 900-911). All were looked at by now.

Usage::

    .venv/bin/python bench/quality.py                    # tuning + selection + report + real; writes quality.json
    .venv/bin/python bench/quality.py --sets tuning,real # while developing (prints only)
    .venv/bin/python bench/quality.py --quick            # smoke run: 3 2D + 1 3D image per tuning set
    .venv/bin/python bench/quality.py --sets blobs-final # a legacy set (both dimensions)

``--sets`` takes set names, a name without ``-2d``/``-3d`` for both, or the
groups ``tuning``, ``selection``, ``old-report``, ``previous-report``, ``report``, ``real``,
``legacy``, ``blobs``, ``textured``, ``dense``.
``--fresh``, ``--unseen``, ``--new`` and ``--final`` add those legacy sets to
the run. Only a full run (no ``--quick``, no ``--sets``) writes
``bench/results/quality.json``; a partial run prints only, unless ``--out``
is given. It imports this checkout's ``src`` first. A missing dependency
(nsbatwm and scikit-image included: there is no fallback) stops it with one
line (exit code 2); a set whose evaluation raises is shown as FAILED, the
others still run, and the run exits with code 1 without touching the
result file: its rows go to ``<out>-FAILED.json.tmp``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from typing import NamedTuple

from _bench_support import error_text, exit_missing, save_results
from _scoring import consecutive, pooled, score

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

try:
    import numpy as np
    import scipy.ndimage as ndi

    from napari_spectral_seg import segment
    from napari_spectral_seg.data import textured_nuclei, touching_blobs
except ImportError as _err:
    exit_missing(_err, __file__)

# The baselines, after the project (so that a missing project is what is reported first).
try:
    import skimage  # noqa: F401  (first, so that its absence is reported as such)
    import tifffile
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed
except ImportError as _err:
    exit_missing(_err, __file__)
try:
    # The published function, called as published: there is no re-typed fallback.
    from napari_segment_blobs_and_things_with_membranes import voronoi_otsu_labeling
except ImportError as _err:
    exit_missing(_err, __file__)

TUNED = {"sigma": 1.0, "min_size": 20, "random_state": 0}
OLD_DEFAULTS = {"threshold": "otsu", "sigma": None, "min_size": 0, "polarity": "bright", "background": "flat"}
NSBATWM_DEFAULTS = {"spot_sigma": 2.0, "outline_sigma": 2.0}
SPOT_SIGMAS = (1.0, 2.0, 3.0, 4.0)
BASELINE_SIGMA = 1.0
BASELINE_MIN_SIZE = 20
WATERSHED_MIN_DISTANCE = 5
SPACING_3D = (2.5, 1.0, 1.0)
REPORT_NOTE = "REPORT: run once after the last choice"
DEFAULT_OUT = os.path.join(HERE, "results", "quality.json")


# ----------------------------------------------------------------- methods
def defaults(image, spacing=None):
    extra = {} if spacing is None else {"spacing": spacing}
    return segment(image, n_clusters="auto", **extra)


def old_defaults(image, spacing=None):
    extra = {} if spacing is None else {"spacing": spacing}
    return segment(image, n_clusters="auto", **OLD_DEFAULTS, **extra)


def tuned(image, spacing=None):
    extra = {} if spacing is None else {"spacing": spacing}
    return segment(image, threshold="otsu", n_clusters="auto", **TUNED, **extra)


def nsbatwm(image, spot_sigma, outline_sigma=NSBATWM_DEFAULTS["outline_sigma"]):
    # The published function returns an ndarray subclass (for notebook display).
    return np.asarray(voronoi_otsu_labeling(image, spot_sigma=spot_sigma, outline_sigma=outline_sigma))


def _otsu_mask(image):
    """Otsu mask of the image smoothed by BASELINE_SIGMA, pieces under BASELINE_MIN_SIZE dropped; and its pieces."""
    smooth = ndi.gaussian_filter(image.astype(np.float64), BASELINE_SIGMA)
    labels, _ = ndi.label(smooth > threshold_otsu(smooth))
    small = np.bincount(labels.ravel()) < BASELINE_MIN_SIZE
    small[0] = False
    labels[small[labels]] = 0
    return labels > 0, labels


def otsu_cc(image, spacing=None):
    return _otsu_mask(image)[1]


def dt_watershed(image, spacing=None):
    mask, pieces = _otsu_mask(image)
    distance = ndi.distance_transform_edt(mask, sampling=spacing)
    peaks = peak_local_max(distance, min_distance=WATERSHED_MIN_DISTANCE, labels=pieces, exclude_border=False)
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=mask)


def nsbatwm_defaults(image, spacing=None):
    return nsbatwm(image, NSBATWM_DEFAULTS["spot_sigma"], NSBATWM_DEFAULTS["outline_sigma"])


# name -> function(image, spacing) -> labels; nsbatwm-best is found in evaluate()
METHODS = {
    "defaults": defaults,
    "old-defaults": old_defaults,
    "tuned": tuned,
    "nsbatwm-defaults": nsbatwm_defaults,
    "otsu-cc": otsu_cc,
    "dt-watershed": dt_watershed,
}


# -------------------------------------------------------------------- data
class BenchSet(NamedTuple):
    name: str
    kind: str  # tuning, selection, report, real or legacy
    source: str
    load: Callable[[], list]  # -> [(image, truth, spacing or None), ...]


GENERATORS = {
    ("blobs", 2): ("touching_blobs((128, 128), 14)", lambda s: (*touching_blobs((128, 128), 14, seed=s), None)),
    ("blobs", 3): ("touching_blobs((40, 64, 64), 12)", lambda s: (*touching_blobs((40, 64, 64), 12, seed=s), None)),
    ("textured", 2): ("textured_nuclei((128, 128), 14)", lambda s: (*textured_nuclei((128, 128), 14, seed=s), None)),
    ("textured", 3): (
        f"textured_nuclei((32, 80, 80), 12, spacing={SPACING_3D})",
        lambda s: (*textured_nuclei((32, 80, 80), 12, spacing=SPACING_3D, seed=s), SPACING_3D),
    ),
    ("dense", 2): (
        "touching_blobs((256, 256), 80, radius_range=(4, 7))",
        lambda s: (*touching_blobs((256, 256), 80, radius_range=(4, 7), seed=s), None),
    ),
    ("dense", 3): (
        "touching_blobs((32, 96, 96), 60, radius_range=(3, 5))",
        lambda s: (*touching_blobs((32, 96, 96), 60, radius_range=(3, 5), seed=s), None),
    ),
}
GENERATOR_NAMES = ("blobs", "textured", "dense")
# kind -> (2D seeds, 3D seeds), for both generators (the legacy ones for blobs only)
SEEDS = {
    "tuning": (range(0, 20), range(0, 6)),
    "selection": (range(2000, 2040), range(2000, 2012)),
    "old-report": (range(3000, 3040), range(3000, 3012)),
    "previous-report": (range(4000, 4040), range(4000, 4012)),
    "report": (range(5000, 5040), range(5000, 5012)),
}
LEGACY = {
    "heldout": (range(100, 110), range(100, 103)),
    "fresh": (range(300, 320), range(300, 306)),
    "unseen": (range(500, 540), range(500, 512)),
    "new": (range(700, 740), range(700, 712)),
    "final": (range(900, 940), range(900, 912)),
}
GROUPS = ("tuning", "selection", "old-report", "previous-report", "report", "real", "legacy", *GENERATOR_NAMES)


def _synthetic(generator, kind, ndim, seeds, label=None):
    source, make = GENERATORS[(generator, ndim)]
    name = f"{generator}-{label or kind}-{ndim}d"
    text = f"{source}, seed {seeds[0]}" if len(seeds) == 1 else f"{source}, seeds {seeds[0]}-{seeds[-1]}"
    return BenchSet(name, kind, text, lambda: [make(s) for s in seeds])


def all_sets(quick: bool = False) -> dict:
    """Every set by name, in the order of the table; with ``quick`` the first 3 (2D) / 1 (3D) seeds only."""
    sets = {}
    for kind, (seeds2d, seeds3d) in SEEDS.items():
        for generator in GENERATOR_NAMES:
            for ndim, seeds in ((2, seeds2d), (3, seeds3d)):
                seeds = seeds[: 3 if ndim == 2 else 1] if quick else seeds
                sets[f"{generator}-{kind}-{ndim}d"] = _synthetic(generator, kind, ndim, seeds)
    sets["dsb2018-real"] = BenchSet("dsb2018-real", "real", "DSB 2018 (stardist/data/images/img2d.tif)", real_set)
    for label, (seeds2d, seeds3d) in LEGACY.items():
        for ndim, seeds in ((2, seeds2d), (3, seeds3d)):
            seeds = seeds[: 3 if ndim == 2 else 1] if quick else seeds
            sets[f"blobs-{label}-{ndim}d"] = _synthetic("blobs", "legacy", ndim, seeds, label)
    return sets


def select(sets: dict, wanted: list) -> list:
    """Names of ``sets`` chosen by ``wanted`` (names, names without -2d/-3d, groups); ValueError for an unknown one."""
    chosen = []
    for word in wanted:
        if word in GENERATOR_NAMES:
            hits = [n for n, s in sets.items() if n.startswith(word + "-") and s.kind != "legacy"]
        elif word in GROUPS:
            hits = [n for n, s in sets.items() if s.kind == word]
        else:
            hits = [n for n in sets if n == word or n in (f"{word}-2d", f"{word}-3d")]
        if not hits:
            raise ValueError(f"unknown set {word!r}; sets: {', '.join(sets)}; groups: {', '.join(GROUPS)}")
        chosen.extend(h for h in hits if h not in chosen)
    return [n for n in sets if n in chosen]  # in the table's order


def real_set():
    """The DSB 2018 image from the stardist wheel; OSError with the reason when it is not there."""
    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("stardist wheel not installed (.venv/bin/pip install --no-deps stardist==0.9.2)")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data", "images")
    image = tifffile.imread(os.path.join(folder, "img2d.tif"))
    truth = tifffile.imread(os.path.join(folder, "mask2d.tif"))
    return [(image.astype(np.float64), truth.astype(np.int64), None)]


# --------------------------------------------------------------------- run
def _run_method(fn, items) -> dict:
    scores, seconds = [], []
    for image, truth, spacing in items:
        t0 = time.perf_counter()
        labels = fn(image, spacing)
        seconds.append(time.perf_counter() - t0)
        scores.append(score(truth, labels))
    return pooled(scores, seconds)


def evaluate(bench_set: BenchSet, items) -> dict:
    """Every method on one set's images: the row of the set."""
    row = {
        "set": bench_set.name,
        "kind": bench_set.kind,
        "source": bench_set.source,
        "images": len(items),
        "objects": int(sum(consecutive(truth)[1] for _, truth, _ in items)),
        "methods": {},
    }
    for name, fn in METHODS.items():
        row["methods"][name] = _run_method(fn, items)
        print(f"  {bench_set.name}: {name} F1 {row['methods'][name]['f1']:.3f}", flush=True)
    sweep = {}
    for spot in SPOT_SIGMAS:
        if spot == NSBATWM_DEFAULTS["spot_sigma"]:
            sweep[spot] = row["methods"]["nsbatwm-defaults"]
        else:
            sweep[spot] = _run_method(lambda image, spacing, spot=spot: nsbatwm(image, spot), items)
    best = max(SPOT_SIGMAS, key=lambda s: sweep[s]["f1"])  # the first of equal scores
    row["methods"]["nsbatwm-best"] = dict(sweep[best], spot_sigma=best)
    row["nsbatwm_spot_sweep"] = {f"{s:g}": sweep[s]["f1"] for s in SPOT_SIGMAS}
    return row


def _evaluate_all(sets: dict, names: list) -> tuple[list, dict]:
    """:func:`evaluate` on every named set; a set that raises gives a row with its ``error``."""
    rows, skipped = [], {}
    for name in names:
        bench_set = sets[name]
        try:
            items = bench_set.load()
        except OSError as exc:
            if bench_set.kind != "real":
                raise
            skipped[name] = error_text(exc)
            print(f"{name} skipped: {skipped[name]}")
            continue
        try:
            rows.append(evaluate(bench_set, items))
        except Exception as exc:  # reported, and the run fails at the end
            traceback.print_exc()
            rows.append({"set": name, "kind": bench_set.kind, "images": len(items), "error": error_text(exc)})
    return rows, skipped


# ------------------------------------------------------------------ output
TABLE_ROWS = [
    ("defaults", "defaults"),
    ("old-defaults", "old defaults (no sigma, min size)"),
    ("tuned", "tuned (sigma=1, min_size=20)"),
    ("nsbatwm-defaults", "nsbatwm VOL, defaults (2, 2)"),
    ("nsbatwm-best", "nsbatwm VOL, best spot_sigma"),
    ("otsu-cc", "Otsu + CC (sigma 1, >=20 px)"),
    ("dt-watershed", "EDT watershed (min_dist 5)"),
]


def _method_line(label, m) -> str:
    fp_size = "-" if m["fp_median_size"] is None else f"{m['fp_median_size']:g}"
    return (
        f"  {label:<34} {m['f1']:>6.3f} {m['tp']:>5}/{m['n_true']:<5}/{m['n_pred']:<6} "
        f"{m['splits']:>5} {m['merges']:>5} {m['lost_to_merges']:>4} {m['misses']:>5} "
        f"{m['false_pos']:>5} {m['fp_background']:>4} {fp_size:>6} {m['median_s']:>7.3f}"
    )


def _print_table(rows):
    header = (
        f"  {'method':<34} {'F1':>6} {'TP':>5}/{'true':<5}/{'pred':<6} {'split':>5} {'merge':>5} {'lost':>4} "
        f"{'miss':>5} {'FP':>5} {'bg':>4} {'FP px':>6} {'s/img':>7}"
    )
    print("\nF1 at IoU > 0.5 pooled per set; split/merge/lost/miss/FP as defined in the docstring;")
    print("'lost' = true objects lost to merges; 'bg' = FPs mostly on background; 'FP px' = median FP size.\n")
    print(header)
    for r in rows:
        tag = f"  [{REPORT_NOTE}]" if r["kind"] == "report" else f"  [{r['kind']}]"
        if "error" in r:
            print(f"{r['set']}{tag}: {r['images']} images: FAILED: {r['error']}")
            continue
        print(f"{r['set']}{tag}: {r['images']} images, {r['objects']} objects, {r['source']}")
        for key, label in TABLE_ROWS:
            m = r["methods"][key]
            if key == "nsbatwm-best":
                label = f"{label} = {m['spot_sigma']:g}"
            print(_method_line(label, m))


def _print_summary(rows):
    """One line per set: the F1 of every method."""
    keys = [k for k, _ in TABLE_ROWS]
    print(f"\n{'F1 summary':<28} " + " ".join(f"{k:>16}" for k in keys))
    for r in rows:
        if "error" in r:
            continue
        mark = " *" if r["kind"] == "report" else ""
        print(f"{r['set'] + mark:<28} " + " ".join(f"{r['methods'][k]['f1']:>16.3f}" for k in keys))
    if any(r["kind"] == "report" for r in rows):
        print(f"* {REPORT_NOTE}")


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: the first 3 (2D) / 1 (3D) images of each set; default sets: tuning and real",
    )
    parser.add_argument(
        "--sets",
        help="comma-separated sets or groups (tuning, selection, report, real, legacy, blobs, textured); "
        "default: tuning, selection, report and real",
    )
    for label, (seeds2d, seeds3d) in LEGACY.items():
        if label != "heldout":
            parser.add_argument(
                f"--{label}",
                action="store_true",
                help=f"also the legacy blobs-{label} sets: seeds {seeds2d[0]}-{seeds2d[-1]} (2D), "
                f"{seeds3d[0]}-{seeds3d[-1]} (3D)",
            )
    parser.add_argument("--out", help="result file (default: bench/results/quality.json, written by a full run only)")
    return parser, parser.parse_args(argv)


def main(argv=None):
    """Run the sets, print the tables, write the results; return the exit code (0: every set ran)."""
    parser, args = _parse(argv)
    sets = all_sets(args.quick)
    # A quick run never looks at the report sets unless they are asked for.
    default = ["tuning", "real"] if args.quick else ["tuning", "selection", "report", "real"]
    wanted = args.sets.split(",") if args.sets else default
    wanted += [f"blobs-{label}" for label in LEGACY if getattr(args, label, False)]
    try:
        names = select(sets, [w.strip() for w in wanted if w.strip()])
    except ValueError as err:
        parser.error(str(err))
    full = not args.quick and not args.sets
    out = args.out or (DEFAULT_OUT if full else None)

    t0 = time.perf_counter()
    rows, skipped = _evaluate_all(sets, names)
    elapsed = time.perf_counter() - t0
    _print_table(rows)
    _print_summary(rows)
    print(f"\n{len(rows)} sets in {elapsed:.0f} s")
    result = {
        "metric": "F1 at IoU > 0.5, pooled over the images of a set; error kinds as in bench/quality.py's docstring",
        "settings": {
            "defaults": 'segment(image, n_clusters="auto"[, spacing=...])',
            "old_defaults": OLD_DEFAULTS,
            "tuned": TUNED,
            "nsbatwm_defaults": NSBATWM_DEFAULTS,
            "nsbatwm_spot_sigmas": SPOT_SIGMAS,
            "baseline_sigma": BASELINE_SIGMA,
            "baseline_min_size": BASELINE_MIN_SIZE,
            "watershed_min_distance": WATERSHED_MIN_DISTANCE,
        },
        "report_sets": f"kind 'report': {REPORT_NOTE}",
        "selection_sets": "kind 'selection': the data bench/ablation.py chose the auto-mode rules on",
        "skipped": skipped,
        "quick": args.quick,
        "sets": names,
        "seconds": round(elapsed, 1),
        "python": platform.python_version(),
        "rows": rows,
    }
    failures = [f"{r['set']}: {r['error']}" for r in rows if "error" in r]
    code = save_results([out] if out else [], result, failures, indent=1, failed_to=out or DEFAULT_OUT)
    if not code:
        print(f"wrote {out}" if out else "partial run (--quick or --sets): results not saved (give --out to save)")
    return code


if __name__ == "__main__":
    sys.exit(main())
