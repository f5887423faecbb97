"""The benchmark scripts fail loudly: a missing package is one line and a non-zero exit, and a
case that raises leaves the tracked result files as they were."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
INSTALL = '.venv/bin/pip install -e ".[test,bench]"'
NSBATWM = "napari_segment_blobs_and_things_with_membranes"

# Runs a script as `python script args...` would, with the named modules made unimportable
# (None in sys.modules), whatever is installed or on PYTHONPATH.
BLOCKING_RUNNER = """
import os, runpy, sys
blocked, script, *args = sys.argv[1:]
for name in blocked.split(","):
    sys.modules[name] = None
sys.argv = [script, *args]
sys.path[0] = os.path.dirname(os.path.abspath(script))
runpy.run_path(script, run_name="__main__")
"""

# (script, arguments): the smallest run each has, so that a guard that did not fire would
# still end soon (run.py checks its imports after parsing the arguments).
SCRIPTS = [
    ("bench/run.py", ["--cases", "2D 100", "--no-seeds", "--no-sklearn", "--no-plot", "--repeats", "1"]),
    ("bench/quality.py", ["--quick"]),
    ("bench/ablation.py", ["--quick"]),
    ("bench/auto_speed.py", ["--quick"]),
    ("bench/auto_cpu.py", ["--help"]),
    ("bench/split.py", ["--help"]),
    ("bench/blockwise.py", ["--quick"]),
    ("bench/slide.py", ["--size", "2048", "--block-size", "512"]),
    ("bench/measure.py", ["--help"]),
    ("bench/ui_latency.py", ["--help"]),
    ("bench/undo_step.py", ["--help"]),
    ("bench/costs.py", ["--help"]),
    ("bench/steps.py", ["--size", "40"]),
    ("docs/make_screenshots.py", ["--help"]),
]


def run_blocked(blocked, script, args, tmp_path):
    if script == "bench/run.py":
        args = [*args, "--out-dir", str(tmp_path)]
    return subprocess.run(
        [sys.executable, "-c", BLOCKING_RUNNER, blocked, script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("script,args", SCRIPTS, ids=[s for s, _ in SCRIPTS])
def test_without_the_project_a_script_prints_one_line_and_exits_non_zero(script, args, tmp_path):
    proc = run_blocked("napari_spectral_seg", script, args, tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "napari_spectral_seg" in lines[0] and "napari-spectral-seg" in lines[0]
    assert INSTALL in lines[0]
    assert proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "blocked,script,package",
    [
        ("sklearn", "bench/split.py", "scikit-learn"),
        ("skimage", "bench/quality.py", "scikit-image"),
        (NSBATWM, "bench/quality.py", "napari-segment-blobs-and-things-with-membranes"),
        (NSBATWM, "bench/auto_speed.py", "napari-segment-blobs-and-things-with-membranes"),
        (NSBATWM, "bench/auto_cpu.py", "napari-segment-blobs-and-things-with-membranes"),
    ],
)
def test_a_missing_dependency_is_named_by_its_package(blocked, script, package, tmp_path):
    proc = run_blocked(blocked, script, ["--help"], tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"package {package} is missing" in lines[0] and INSTALL in lines[0], proc.stderr


# ------------------------------------------------------------------ failing cases, in-process
@pytest.fixture
def load(monkeypatch):
    """Import a script of bench/ as a module (sys.path restored afterwards)."""
    monkeypatch.setattr(sys, "path", [str(BENCH), *sys.path])

    def load(name):
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def tracked(path: Path) -> Path:
    """A stand-in for a tracked result file: exists, with content a failed run must not change."""
    path.write_text('{"tracked": true}')
    return path


def test_run_py_case_that_fails_keeps_latest_json_and_the_plot(load, tmp_path, monkeypatch, capsys):
    run = load("run")
    latest = tracked(tmp_path / "latest.json")
    monkeypatch.setattr(run, "run_worker", lambda spec: {"error": "RuntimeError: boom"})
    monkeypatch.setattr(run, "_plot", lambda results: pytest.fail("plotted the results of a failed run"))
    argv = ["--cases", "2D 100", "--no-seeds", "--no-sklearn", "--out-dir", str(tmp_path)]
    assert run.main(argv) == 1
    assert latest.read_text() == '{"tracked": true}'
    assert [p.name for p in tmp_path.glob("*.json")] == ["latest.json"]  # no new timestamped file
    (failed,) = tmp_path.glob("*-FAILED.json.tmp")
    rows = json.loads(failed.read_text())["results"]
    assert rows[0]["error"] == "RuntimeError: boom"
    out, err = capsys.readouterr()
    assert "FAILED: RuntimeError: boom" in out
    assert "left unchanged" in err and str(failed) in err


def test_run_py_partial_run_that_succeeds_writes_its_own_file_and_keeps_latest_json(load, tmp_path, monkeypatch):
    run = load("run")
    latest = tracked(tmp_path / "latest.json")
    before = latest.read_text()
    figures = dict(wall_s=0.5, cpu_s=0.5, peak_rss_bytes=2**28, ari_min=1.0, n_nodes=2678)
    monkeypatch.setattr(run, "run_worker", lambda spec: dict(figures))
    assert run.main(["--cases", "2D 100", "--no-seeds", "--no-sklearn", "--no-plot", "--out-dir", str(tmp_path)]) == 0
    assert latest.read_text() == before
    (own,) = tmp_path.glob("2*.json")
    assert json.loads(own.read_text())["results"][0]["wall_s"] == 0.5
    assert list(tmp_path.glob("*.tmp")) == []


def test_run_py_without_matplotlib_says_so_and_draws_nothing(load, monkeypatch, capsys):
    run = load("run")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    before = (run.ROOT / "docs" / "performance.png").stat().st_mtime_ns
    run._plot([])
    assert "matplotlib not installed" in capsys.readouterr().out
    assert (run.ROOT / "docs" / "performance.png").stat().st_mtime_ns == before


def test_run_py_rejects_an_unknown_case(load):
    run = load("run")
    with pytest.raises(SystemExit) as exc:
        run.main(["--cases", "2D 101"])
    assert exc.value.code == 2


@pytest.fixture
def quality(load, monkeypatch, tmp_path):
    """bench/quality.py with one tiny set of each kind instead of the real ones, results under tmp_path."""
    pytest.importorskip(NSBATWM, reason="bench/quality.py needs the bench extra (nsbatwm)")
    quality = load("quality")

    def tiny(kind, seed):
        return quality.BenchSet(f"tiny-{kind}", kind, "touching_blobs((48, 48), 3)", lambda: [tiny_item(seed)])

    def tiny_item(seed):
        return (*quality.touching_blobs((48, 48), 3, seed=seed), None)

    sets = {s.name: s for s in (tiny("tuning", 0), tiny("selection", 3), tiny("report", 1), tiny("real", 2))}
    monkeypatch.setattr(quality, "all_sets", lambda quick=False: sets)
    monkeypatch.setattr(quality, "DEFAULT_OUT", str(tmp_path / "quality.json"))
    return quality


def test_quality_py_set_that_fails_keeps_quality_json(quality, tmp_path, monkeypatch):
    out = tracked(tmp_path / "quality.json")

    def broken(image, spacing=None):
        raise RuntimeError("boom")

    monkeypatch.setitem(quality.METHODS, "defaults", broken)
    assert quality.main(["--sets", "tiny-tuning", "--out", str(out)]) == 1
    assert out.read_text() == '{"tracked": true}'
    rows = json.loads((tmp_path / "quality-FAILED.json.tmp").read_text())["rows"]
    assert rows == [{"set": "tiny-tuning", "kind": "tuning", "images": 1, "error": "RuntimeError: boom"}]


def test_quality_py_full_run_writes_quality_json_and_a_partial_run_nothing(quality, tmp_path, capsys):
    out = tmp_path / "quality.json"
    assert quality.main(["--quick"]) == 0
    assert not out.exists()
    assert "tiny-report" not in capsys.readouterr().out  # a quick run leaves the report sets alone
    assert quality.main(["--sets", "tiny-report"]) == 0
    assert not out.exists()
    assert quality.main([]) == 0
    result = json.loads(out.read_text())
    assert result["sets"] == ["tiny-tuning", "tiny-selection", "tiny-report", "tiny-real"]
    assert [r["kind"] for r in result["rows"]] == ["tuning", "selection", "report", "real"]
    row = result["rows"][2]
    expected = {"defaults", "old-defaults", "tuned", "nsbatwm-defaults", "nsbatwm-best", "otsu-cc", "dt-watershed"}
    assert set(row["methods"]) == expected
    assert row["methods"]["nsbatwm-best"]["spot_sigma"] in quality.SPOT_SIGMAS
    assert "REPORT: run once after the last choice" in capsys.readouterr().out


def test_quality_py_selects_sets_by_name_stem_and_group(load):
    pytest.importorskip(NSBATWM, reason="bench/quality.py needs the bench extra (nsbatwm)")
    quality = load("quality")
    sets = quality.all_sets(quick=True)
    assert quality.select(sets, ["blobs-final"]) == ["blobs-final-2d", "blobs-final-3d"]
    tuning = quality.select(sets, ["tuning"])
    assert tuning == [f"{g}-tuning-{d}d" for g in ("blobs", "textured", "dense") for d in (2, 3)]
    assert quality.select(sets, ["textured"]) == [n for n in sets if n.startswith("textured-")]
    assert all(sets[n].kind == "report" for n in quality.select(sets, ["report"]))
    # fresh seeds for the report, after those of every set looked at before
    assert quality.SEEDS["report"][0][0] > quality.SEEDS["previous-report"][0][-1] > quality.SEEDS["selection"][0][-1]
    with pytest.raises(ValueError, match="unknown set"):
        quality.select(sets, ["blobs-tuning-4d"])


@pytest.fixture
def ablation(load, monkeypatch, tmp_path):
    """bench/ablation.py on one tiny 2D and one tiny 3D selection set, results under tmp_path."""
    pytest.importorskip(NSBATWM, reason="bench/ablation.py reuses bench/quality.py (bench extra)")
    ablation = load("ablation")
    blobs = ablation.quality.touching_blobs

    def tiny(name, shape, n):
        return ablation.quality.BenchSet(
            name, "selection", f"touching_blobs({shape}, {n})", lambda: [(*blobs(shape, n, seed=1), None)]
        )

    sets = {
        "tiny-selection-2d": tiny("tiny-selection-2d", (48, 48), 3),
        "tiny-selection-3d": tiny("tiny-selection-3d", (16, 40, 40), 2),  # (12, 24, 24) holds no blob
    }
    monkeypatch.setattr(ablation, "selection_sets", lambda quick, images, kind="selection": sets)
    monkeypatch.setattr(ablation, "DEFAULT_OUT", str(tmp_path / "ablation.json"))
    return ablation


def test_ablation_py_turns_every_rule_off_and_writes_ablation_json(ablation, tmp_path, capsys):
    out = tmp_path / "ablation.json"
    assert ablation.main(["--quick", "--rules", "notches"]) == 0
    assert not out.exists()  # a partial run prints only
    assert ablation.main([]) == 0
    result = json.loads(out.read_text())
    results = result["results"]
    assert list(results) == [ablation.ALL_ON, *ablation.RULES]
    for name in ablation.RULES:
        row = results[name]
        assert set(row["sets"]) == {"tiny-selection-2d", "tiny-selection-3d"}
        assert row["verdict"] == ("keep" if -row["delta_f1"] >= ablation.KEEP_MARGIN else "drop")
    assert "| rule off (step) |" in capsys.readouterr().out


def test_ablation_py_base_off_turns_rules_off_in_every_row(ablation, tmp_path):
    out = tmp_path / "reduced.json"
    assert ablation.main(["--base-off", "notches", "--rules", "notches,edge_move", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["base_off"] == ["notches"]
    assert list(result["results"]) == [ablation.ALL_ON, "edge_move"]  # a rule off in the base is not a row


def test_ablation_py_rule_that_fails_keeps_ablation_json(ablation, tmp_path, monkeypatch):
    out = tracked(tmp_path / "ablation.json")
    monkeypatch.setitem(ablation.RULES, "notches", ("9", "broken", {"no_such_field": 1}, {}))
    assert ablation.main(["--rules", "notches", "--out", str(out)]) == 1
    assert out.read_text() == '{"tracked": true}'
    rows = json.loads((tmp_path / "ablation-FAILED.json.tmp").read_text())["results"]
    assert "TypeError" in rows["notches"]["error"]


def test_ablation_py_rejects_an_unknown_rule(ablation):
    with pytest.raises(SystemExit):
        ablation.main(["--rules", "no_such_rule"])


# ------------------------------------------------------------------ scoring (numpy only)
def squares(shape, *boxes):
    """A label image with object k+1 filling boxes[k] = (y0, y1, x0, x1)."""
    labels = np.zeros(shape, dtype=np.int32)
    for k, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        labels[y0:y1, x0:x1] = k
    return labels


def check_partition(s):
    assert s["n_true"] == s["tp"] + s["splits"] + s["lost_to_merges"] + s["misses"]


def test_score_counts_splits_merges_misses_and_false_positives(load):
    score = load("_scoring").score
    truth = squares((40, 40), (0, 10, 0, 10))
    perfect = score(truth, truth)
    assert (perfect["tp"], perfect["splits"], perfect["misses"], perfect["false_pos"]) == (1, 0, 0, 0)

    halves = score(truth, squares((40, 40), (0, 10, 0, 5), (0, 10, 5, 10)))
    assert (halves["tp"], halves["splits"], halves["false_pos"]) == (0, 1, 0)

    big_and_small = squares((40, 40), (0, 10, 0, 8), (0, 10, 8, 10))  # 80 and 20 pixels
    merged = score(big_and_small, squares((40, 40), (0, 10, 0, 10)))
    assert (merged["tp"], merged["merges"], merged["lost_to_merges"], merged["misses"]) == (1, 1, 1, 0)

    equal_pair = squares((40, 40), (0, 10, 0, 5), (0, 10, 5, 10))
    both_lost = score(equal_pair, squares((40, 40), (0, 10, 0, 10)))  # IoU exactly 0.5 is no match
    assert (both_lost["tp"], both_lost["merges"], both_lost["lost_to_merges"]) == (0, 1, 2)

    too_small = score(truth, squares((40, 40), (0, 3, 0, 10)))
    assert (too_small["misses"], too_small["false_pos"], too_small["fp_background"]) == (1, 1, 0)

    speck = score(truth, squares((40, 40), (0, 10, 0, 10), (30, 31, 30, 33)))
    assert (speck["tp"], speck["false_pos"], speck["fp_background"], speck["fp_sizes"]) == (1, 1, 1, [3])
    for s in (perfect, halves, merged, both_lost, too_small, speck):
        check_partition(s)


def test_score_takes_any_label_values_and_pools_sets(load):
    scoring = load("_scoring")
    truth = squares((40, 40), (0, 10, 0, 10), (20, 30, 20, 30)) * 7  # labels 7 and 14
    pred = squares((40, 40), (0, 10, 0, 10), (20, 30, 20, 30), (35, 36, 0, 2)) + 3  # no 0 at all
    s = scoring.score(truth, pred)
    # pred's background (3) is an object of 1600 - 202 pixels covering nothing well: a false positive
    assert (s["n_true"], s["n_pred"], s["tp"]) == (2, 4, 2)
    empty = scoring.score(truth, np.zeros_like(truth))
    assert (empty["tp"], empty["misses"], empty["n_pred"]) == (0, 2, 0)
    total = scoring.pooled([s, empty], [1.0, 3.0])
    assert total["tp"] == 2 and total["f1"] == round(2 * 2 / (4 + 4), 4) and total["median_s"] == 2.0
    check_partition(total)


def test_split_py_case_that_fails_keeps_split_json(load, tmp_path, monkeypatch):
    split = load("split")
    out = tracked(tmp_path / "split.json")

    def case(size):
        if size == split.SIZES[1]:
            raise ValueError("boom")
        return dict(size=size, segment_pixels=1, median_s=0.1, all_s=[0.1], ari=1.0)

    monkeypatch.setattr(split, "case", case)
    assert split.main(["--out", str(out)]) == 1
    assert out.read_text() == '{"tracked": true}'
    rows = json.loads((tmp_path / "split-FAILED.json.tmp").read_text())
    assert [r.get("error") for r in rows] == [None, "ValueError: boom", None]


def test_results_that_json_cannot_hold_leave_the_old_file(load, tmp_path):
    support = load("_bench_support")
    out = tracked(tmp_path / "latest.json")
    with pytest.raises(TypeError):
        support.save_results([out], {"bad": object()}, [], indent=1)
    assert out.read_text() == '{"tracked": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"]


def test_ui_latency_py_run_that_fails_keeps_ui_latency_json(load, tmp_path, monkeypatch):
    ui_latency = load("ui_latency")
    out = tracked(tmp_path / "ui_latency.json")

    def measure(size, solver, **cases):
        raise RuntimeError("the widget made no result layer (status: failed)")

    monkeypatch.setattr(ui_latency, "measure", measure)
    assert ui_latency.main(["--size", "64", "--out", str(out)]) == 1
    assert out.read_text() == '{"tracked": true}'
    assert "no result layer" in json.loads((tmp_path / "ui_latency-FAILED.json.tmp").read_text())["error"]


def test_ui_latency_py_plugin_share_is_beside_napari_own_cost(load):
    pytest.importorskip("napari")
    ui_latency = load("ui_latency")

    def row(case, stall, busy):
        return {"case": case, "max_stall_ms": stall, "max_busy_ms": busy}

    rows = [
        row("cancel", 90.0, 5.0),
        row("run_dask_8192", 70.0, 8.0),
        row("click_split", 130.0, 15.0),
        row("napari_setitem", 100.0, 10.0),
        row("napari_repaint", 80.0, 3.0),
    ]
    by_case = {r["case"]: r for r in ui_latency.summarise(rows)["cases"]}
    assert by_case["cancel"]["plugin_share_ms"] == 10.0  # beside one window repaint
    assert by_case["run_dask_8192"]["plugin_share_ms"] == 0.0
    assert by_case["click_split"]["plugin_share_ms"] == 30.0  # beside the same edit made by napari
    assert by_case["click_split"]["plugin_share_busy_ms"] == 5.0


@pytest.fixture
def auto_speed(load, monkeypatch):
    """bench/auto_speed.py with two tiny cases instead of the real ones."""
    pytest.importorskip(NSBATWM, reason="bench/auto_speed.py needs the bench extra (nsbatwm)")
    auto_speed = load("auto_speed")

    def tiny(name):
        image, truth = _tiny_blobs()
        return image, truth, None, f"tiny {name}"

    monkeypatch.setattr(auto_speed, "make_case", tiny)
    return auto_speed


def _tiny_blobs():
    from napari_spectral_seg.data import touching_blobs

    return touching_blobs((48, 48), 3, seed=0)


def test_auto_speed_py_times_both_methods_in_fresh_processes_and_writes_its_file(auto_speed, tmp_path, monkeypatch):
    out = tmp_path / "auto_speed.json"
    monkeypatch.setattr(auto_speed, "DEFAULT_OUT", str(out))
    # The workers re-run the script: they make their image from the .npy the parent wrote.
    assert auto_speed.main(["--cases", "dsb2018-512,mosaic-1024", "--repeats", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["case"] for r in rows] == ["dsb2018-512", "mosaic-1024"]
    for row in rows:
        assert set(row["methods"]) == {"auto", "voronoi-otsu"}
        auto = row["methods"]["auto"]
        assert auto["cold_s"] > 0 and len(auto["warm_all_s"]) == 1 and 0 <= auto["f1"] <= 1
        assert row["ratio_warm"] > 0 and row["mpix_s"] > 0 and auto["peak_rss_bytes"] > 2**20


def test_auto_speed_py_case_that_fails_keeps_auto_speed_json(auto_speed, tmp_path, monkeypatch):
    out = tracked(tmp_path / "auto_speed.json")
    monkeypatch.setattr(auto_speed, "run_worker", lambda spec: {"error": "RuntimeError: boom"})
    assert auto_speed.main(["--cases", "mosaic-1024", "--out", str(out)]) == 1
    assert out.read_text() == '{"tracked": true}'
    rows = json.loads((tmp_path / "auto_speed-FAILED.json.tmp").read_text())["rows"]
    assert rows[0]["methods"]["auto"] == {"error": "RuntimeError: boom"}


def test_blockwise_py_smoke_run_matches_in_memory(tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("ome_zarr")
    out = tmp_path / "blockwise.json"
    args = ["--size", "256", "--block-size", "96", "--workers", "1", "--workdir", str(tmp_path), "--out", str(out)]
    args += ["--sample-pixels", str(256 * 256)]  # the whole image: the same decisions as in memory
    proc = subprocess.run(
        [sys.executable, "bench/blockwise.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["f1"] == 1.0 and result["identical"] == result["objects_in_memory"] > 30
    assert result["seam_objects"] > 0 and result["seam_objects_split"] == 0
    assert result["peak_rss_workers_gib"] and result["within_bound"]
    searched = ("low_threshold_used", "dim_objects")  # the dim-object search ran on both sides, alike
    assert result["in_memory_decisions"]["low_threshold_used"] is not None
    assert {k: result["blockwise_decisions"][k] for k in searched} == {
        k: result["in_memory_decisions"][k] for k in searched
    }
    # The typical size of the whole image, as in memory; the run says which code and load it measured.
    assert result["blockwise_decisions"]["object_size"] == result["in_memory_decisions"]["object_size"] > 0
    assert result["blockwise_decisions"]["typical"]["measured_on"] == "whole image"
    assert result["commit"] and "at the start" in result["load_average"]


def test_slide_py_smoke_run_skips_the_glass_and_stays_within_the_bound(tmp_path):
    pytest.importorskip("distributed")
    pytest.importorskip("ome_zarr")
    out = tmp_path / "slide.json"
    args = ["--size", "2048", "--tissue-fraction", "0.03", "--block-size", "512", "--workers", "1"]
    args += ["--workdir", str(tmp_path), "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "bench/slide.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["blocks"] == 16 and result["skipped_blocks"] >= 12  # the tissue disc spans the central blocks
    assert result["objects_found"] > 50 and result["within_bound"] and result["below_2_gib"]
    assert (tmp_path / "slide-2048.ome.zarr" / "zarr.json").exists()
