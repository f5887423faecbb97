"""The manifest is valid, importable, and ships inside the wheel."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_npe2_validate_with_imports():
    npe2 = shutil.which("npe2") or str(Path(sys.executable).with_name("npe2"))
    proc = subprocess.run([npe2, "validate", "napari-spectral-seg", "--imports"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in proc.stdout


def test_top_level_manifest_is_the_packaged_one():
    top = ROOT / "napari.yaml"
    assert top.read_text() == (ROOT / "src" / "napari_spectral_seg" / "napari.yaml").read_text()


def test_manifest_contributions_are_registered():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-spectral-seg")
    assert [w.display_name for w in manifest.contributions.widgets] == [
        "Spectral segmentation",
        "Spectral segmentation (function)",
    ]
    assert [s.display_name for s in manifest.contributions.sample_data] == [
        "Four circles (spectral clustering example)"
    ]


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree")
def test_wheel_contains_the_manifest(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("napari_spectral_seg-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "napari_spectral_seg/napari.yaml" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[napari.manifest]" in text and "napari_spectral_seg:napari.yaml" in text


def test_the_plain_install_is_the_engine_and_command_line_only():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("[")[0].split("=")[0].strip() for dep in project["dependencies"]}
    assert not names & {"napari", "magicgui", "qtpy", "PyQt6", "dask", "zarr", "tqdm"}
    extras = project["optional-dependencies"]
    assert {"napari", "batch", "all", "test"} <= set(extras)
    assert "version" in project["dynamic"]
