"""The benchmark scripts fail loudly: a missing package is one line and a non-zero exit, and a
case that raises leaves the tracked result files as they were."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
INSTALL = '.venv/bin/pip install -e ".[test,bench]"'

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
    ("bench/split.py", ["--help"]),
    ("bench/ui_latency.py", ["--help"]),
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
    [("sklearn", "bench/split.py", "scikit-learn"), ("skimage", "bench/quality.py", "scikit-image")],
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


def test_quality_py_set_that_fails_keeps_quality_json(load, tmp_path, monkeypatch):
    quality = load("quality")
    out = tracked(tmp_path / "quality.json")

    def broken(image, spacing=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(quality, "ours", broken)
    monkeypatch.setattr(quality, "synthetic_sets", lambda *a: {"tiny": [quality.touching_blobs((48, 48), 3, seed=0)]})
    monkeypatch.setattr(quality, "real_set", lambda: (None, "not in this test"))
    assert quality.main(["--out", str(out)]) == 1
    assert out.read_text() == '{"tracked": true}'
    rows = json.loads((tmp_path / "quality-FAILED.json.tmp").read_text())["rows"]
    assert rows == [{"set": "tiny", "images": 1, "error": "RuntimeError: boom"}]


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

    def measure(size, solver):
        raise RuntimeError("the widget made no result layer (status: failed)")

    monkeypatch.setattr(ui_latency, "measure", measure)
    assert ui_latency.main(["--size", "64", "--out", str(out)]) == 1
    assert out.read_text() == '{"tracked": true}'
    assert "no result layer" in json.loads((tmp_path / "ui_latency-FAILED.json.tmp").read_text())["error"]
