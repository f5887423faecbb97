"""Ablation of the auto-mode rules: each rule off in turn, on data the rules were not tuned on.

Every run is ``segment(image, n_clusters="auto")`` with every other
parameter at its default (threshold, sigma, min_size, polarity and
background "auto"; ``random_state`` 0, its default, so that runs differ only
by the rule), through ``iter_segment(..., auto_config=AutoConfig(...))``
with one rule turned off (see :data:`RULES`); ``spacing`` is passed for the
anisotropic 3D sets. The first row has every rule on.

Data: the *selection* sets of ``bench/quality.py`` (its definitions are
reused: blobs, textured and dense, 2D and 3D, seeds 2000-2039 / 2000-2011,
never tuned on; the rules are chosen on them, so they are no test of that
choice: the *report* sets are) and the real DSB 2018 image (looked at
while tuning, skipped if absent).
``--images N`` keeps the first N images of each synthetic set (2D; 3D sets
keep the same fraction, at least 1), for a shared machine. ``--base-off``
turns rules off in every run, the first row included (a reduced rule set,
whose remaining rules are then turned off in turn). ``--tuning`` runs on the
tuning sets instead (seeds 0-19 / 0-5, no real image), so that a choice
between rule sets can weigh the tuning data too.

Scores: F1 at IoU > 0.5, pooled per set (TP, n_true and n_pred summed over
its images) and pooled over all sets (every object weighs alike). A rule is
**keep** when turning it off lowers the pooled F1 by at least
:data:`KEEP_MARGIN`, otherwise **drop**. Time is the total wall time of the
run over all images.

Usage::

    .venv/bin/python bench/ablation.py            # writes bench/results/ablation.json
    .venv/bin/python bench/ablation.py --quick    # 3 (2D) / 1 (3D) images per set; prints only
    .venv/bin/python bench/ablation.py --rules notches,sliver_merge --images 10
    .venv/bin/python bench/ablation.py --base-off moment_split,sliver_merge --out reduced.json

Only a full run (no ``--quick``, ``--rules``, ``--images``, ``--base-off``
or ``--tuning``) writes the result file, unless ``--out`` is given. A rule whose run raises is shown as
FAILED and the run exits with code 1 without touching the result file.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback

from _bench_support import error_text, exit_missing, save_results
from _scoring import pooled, score

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

try:
    from napari_spectral_seg.core import iter_segment, run_to_end
    from napari_spectral_seg.core.auto import AutoConfig
except ImportError as _err:
    exit_missing(_err, __file__)

import quality  # noqa: E402  (the set definitions; after the project, whose absence is reported first)

KEEP_MARGIN = 0.005
DEFAULT_OUT = os.path.join(HERE, "results", "ablation.json")

# name -> (step of core/auto/__init__.py, what turning it off does, AutoConfig fields, segment parameters)
RULES = {
    "notches": ("6", "no notch cuts (2D)", {"notch_ratio": 0.0}, {}),
    "moment_split": ("7", "no 2-means split (3D)", {"moment_ratio": 0.0}, {}),
    "sliver_merge": ("8", "slivers kept", {"use_sliver_merge": False}, {}),
    "edge_move": ("after", "edges not moved (edge_level=None)", {}, {"edge_level": None}),
    "dim_objects": ("after", "no dim objects below the threshold (low_threshold=None)", {}, {"low_threshold": None}),
}
ALL_ON = "all rules on"


def selection_sets(quick: bool, images: int | None, kind: str = "selection") -> dict:
    """The selection sets and the real image of ``bench/quality.py`` (or its tuning sets): name -> BenchSet."""
    sets = quality.all_sets(quick)
    kinds = ("selection", "real") if kind == "selection" else (kind,)
    chosen = {name: s for name, s in sets.items() if s.kind in kinds}
    if images is None:
        return chosen
    fraction = images / len(quality.SEEDS[kind][0])
    trimmed = {}
    for name, s in chosen.items():
        if s.kind == "real":
            trimmed[name] = s
            continue
        keep = images if name.endswith("-2d") else max(1, round(fraction * len(quality.SEEDS[kind][1])))
        trimmed[name] = s._replace(load=lambda s=s, keep=keep: s.load()[:keep], source=f"{s.source} (first {keep})")
    return trimmed


def run_rule(items_of_set: dict, config: AutoConfig, parameters: dict) -> dict:
    """Every set's images segmented with ``config``; per set the pooled scores, and the total time."""
    per_set, total = {}, 0.0
    for name, items in items_of_set.items():
        scores, seconds = [], []
        for image, truth, spacing in items:
            extra = {} if spacing is None else {"spacing": spacing}
            t0 = time.perf_counter()
            labels = run_to_end(
                iter_segment(image, n_clusters="auto", auto_config=config, **parameters, **extra)
            ).labels
            seconds.append(time.perf_counter() - t0)
            scores.append(score(truth, labels))
        per_set[name] = pooled(scores, seconds)
        total += sum(seconds)
    return {"sets": per_set, "seconds": round(total, 2), "f1": _pooled_f1(per_set.values())}


def _pooled_f1(rows) -> float:
    rows = list(rows)
    tp = sum(r["tp"] for r in rows)
    denominator = sum(r["n_true"] + r["n_pred"] for r in rows)
    return round(2 * tp / denominator, 4) if denominator else 1.0


def verdict(row: dict, base: dict) -> dict:
    """The change to all-rules-on, and keep (turning it off costs >= KEEP_MARGIN pooled F1) or drop."""
    delta = round(row["f1"] - base["f1"], 4)
    row["delta_f1"] = delta
    row["time_ratio"] = round(row["seconds"] / base["seconds"], 3) if base["seconds"] else None
    row["verdict"] = "keep" if -delta >= KEEP_MARGIN else "drop"
    return row


def markdown_table(results: dict, set_names: list, base_off: list = ()) -> str:
    """The table of the README: one line per rule off, F1 per set, pooled, change, time, verdict."""
    first = f"all on but {', '.join(base_off)}" if base_off else ALL_ON
    short = [
        n.replace("-selection", "").replace("-tuning", " tuning").replace("dsb2018-real", "DSB") for n in set_names
    ]
    head = "| rule off (step) | switch | " + " | ".join(short) + " | pooled F1 | Δ pooled | time s | verdict |"
    lines = [head, "|" + "---|" * (len(short) + 6)]
    for name, row in results.items():
        if "error" in row:
            lines.append(f"| {name} | FAILED: {row['error']} |")
            continue
        f1s = " | ".join(f"{row['sets'][n]['f1']:.3f}" for n in set_names)
        if name == ALL_ON:
            lines.append(f"| **{first}** | - | {f1s} | **{row['f1']:.3f}** | - | {row['seconds']:.0f} | - |")
            continue
        step, _, fields, parameters = RULES[name]
        switch = ", ".join(f"`{k}={v!r}`" for k, v in {**fields, **parameters}.items())
        lines.append(
            f"| {name} ({step}) | {switch} | {f1s} | {row['f1']:.3f} | {row['delta_f1']:+.3f} | "
            f"{row['seconds']:.0f} | {row['verdict']} |"
        )
    return "\n".join(lines)


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 (2D) / 1 (3D) images per set")
    parser.add_argument(
        "--rules",
        help=f"comma-separated rules to turn off (default: all; none: the first row only): {', '.join(RULES)}",
    )
    parser.add_argument("--images", type=int, help="first N images of each 2D selection set (3D: the same fraction)")
    parser.add_argument("--tuning", action="store_true", help="the tuning sets instead (no real image)")
    parser.add_argument("--base-off", help="comma-separated rules turned off in every run, the first row included")
    parser.add_argument("--out", help="result file (default: bench/results/ablation.json, written by a full run only)")
    return parser, parser.parse_args(argv)


def _load(sets: dict) -> tuple[dict, dict]:
    items, skipped = {}, {}
    for name, bench_set in sets.items():
        try:
            items[name] = bench_set.load()
        except OSError as exc:
            if bench_set.kind != "real":
                raise
            skipped[name] = error_text(exc)
            print(f"{name} skipped: {skipped[name]}")
    return items, skipped


def _rule_list(parser, text, default: list) -> list:
    """The rule names of a comma-separated option (``default`` when not given); unknown names end the run."""
    if not text:
        return default
    if text == "none":  # the first row only
        return []
    rules = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        parser.error(f"unknown rule(s) {', '.join(unknown)}; rules: {', '.join(RULES)}")
    return rules


def _switches(rules: list) -> tuple[dict, dict]:
    """The AutoConfig fields and segment parameters that turn ``rules`` off."""
    fields, parameters = {}, {}
    for name in rules:
        fields.update(RULES[name][2])
        parameters.update(RULES[name][3])
    return fields, parameters


def main(argv=None):
    """Run every rule off, print the table, write the results; return the exit code (0: every run ran)."""
    parser, args = _parse(argv)
    base_off = _rule_list(parser, args.base_off, [])
    rules = [r for r in _rule_list(parser, args.rules, list(RULES)) if r not in base_off]
    base_fields, base_parameters = _switches(base_off)
    sets = selection_sets(args.quick, args.images, "tuning" if args.tuning else "selection")
    items, skipped = _load(sets)
    full = not (args.quick or args.rules or args.images or base_off or args.tuning)
    out = args.out or (DEFAULT_OUT if full else None)

    # One untimed run first, so that import and first-call costs do not land on the first row.
    first = next(iter(items))
    run_rule({first: items[first][:1]}, AutoConfig(**base_fields), base_parameters)
    t0 = time.perf_counter()
    results = {}
    for name in [ALL_ON, *rules]:
        fields, parameters = _switches([] if name == ALL_ON else [name])
        try:
            config = AutoConfig(**base_fields, **fields)
            results[name] = run_rule(items, config, {**base_parameters, **parameters})
        except Exception as exc:  # reported, and the run fails at the end
            traceback.print_exc()
            results[name] = {"error": error_text(exc)}
            if name == ALL_ON:
                break
            continue
        if name != ALL_ON and "error" not in results[ALL_ON]:
            verdict(results[name], results[ALL_ON])
        print(f"  {name}: pooled F1 {results[name]['f1']:.3f} in {results[name]['seconds']:.0f} s", flush=True)
    elapsed = time.perf_counter() - t0
    table = markdown_table(results, list(items), base_off)
    print("\n" + table)
    print(f"\n{len(results)} runs on {sum(len(v) for v in items.values())} images in {elapsed:.0f} s")
    payload = {
        "metric": "F1 at IoU > 0.5, pooled per set and over all sets; verdict keep if turning the rule off "
        f"lowers the pooled F1 by >= {KEEP_MARGIN}",
        "call": 'iter_segment(image, n_clusters="auto", auto_config=AutoConfig(...)[, spacing=...]), all else default',
        "sets": {name: {"source": sets[name].source, "images": len(v)} for name, v in items.items()},
        "skipped": skipped,
        "rules": {
            name: {"step": s, "off": what, "auto_config": {k: repr(v) for k, v in f.items()}, "parameters": p}
            for name, (s, what, f, p) in RULES.items()
            if name in rules
        },
        "base_off": base_off,
        "data": "tuning" if args.tuning else "selection",
        "quick": args.quick,
        "images": args.images,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(elapsed, 1),
        "python": platform.python_version(),
        "results": results,
        "table": table,
    }
    failures = [f"{name}: {row['error']}" for name, row in results.items() if "error" in row]
    code = save_results([out] if out else [], payload, failures, indent=1, failed_to=out or DEFAULT_OUT)
    if not code:
        print(f"wrote {out}" if out else "partial run (--quick, --rules, --images, --base-off): not saved (give --out)")
    return code


if __name__ == "__main__":
    sys.exit(main())
