"""The napari-spectral-seg command line: segment files, demo --headless, and its errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from conftest import ari_against_truth

from napari_spectral_seg import segment
from napari_spectral_seg.cli import main
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.data import four_circles


@pytest.fixture
def circle_files(tmp_path):
    image, mask, truth = four_circles(seed=0)
    np.save(tmp_path / "img.npy", image)
    tifffile.imwrite(tmp_path / "img.tif", image.astype(np.float32))
    tifffile.imwrite(tmp_path / "mask.tif", mask.astype(np.uint8))
    return tmp_path, image, mask, truth


def test_segment_npy_to_tif_matches_the_api(circle_files, capsys):
    path, image, mask, truth = circle_files
    out = path / "labels.tif"
    code = main(
        [
            "segment",
            str(path / "img.npy"),
            "-o",
            str(out),
            "--mask",
            str(path / "mask.tif"),
            "--n-clusters",
            "4",
            "--seed",
            "5",
        ]
    )
    assert code == 0
    labels = tifffile.imread(out)
    # The tool's min_size 20; with --mask, no threshold unless --threshold is given.
    np.testing.assert_array_equal(labels, segment(image, mask, n_clusters=4, random_state=5, min_size=20))
    assert ari_against_truth(labels, truth) >= 0.97
    with tifffile.TiffFile(out) as tif:
        params = json.loads(tif.pages[0].description)
    assert params["n_clusters"] == 4 and params["random_state"] == 5
    assert params["min_size"] == 20 and params["threshold"] is None
    assert "4 segments" in capsys.readouterr().out


def test_segment_otsu_to_npy_with_sidecar(circle_files):
    path, image, _, truth = circle_files
    out = path / "labels.npy"
    assert main(["segment", str(path / "img.tif"), "-o", str(out), "--threshold", "otsu", "--min-size", "20"]) == 0
    labels = np.load(out)
    assert labels.max() == 4 and ari_against_truth(labels, truth) >= 0.95
    sidecar = json.loads((path / "labels.npy.json").read_text())
    assert sidecar["threshold"] == "otsu" and 1.3 < sidecar["threshold_used"] < 1.7


def test_segment_without_flags_uses_the_tool_defaults(circle_files):
    path, image, _, truth = circle_files
    out = path / "labels.npy"
    assert main(["segment", str(path / "img.npy"), "-o", str(out)]) == 0
    expected = SegmentationParams.tool_defaults()
    np.testing.assert_array_equal(np.load(out), segment(image, **expected.as_kwargs()))
    sidecar = json.loads((path / "labels.npy.json").read_text())
    assert (sidecar["threshold"], sidecar["min_size"], sidecar["random_state"]) == ("otsu", 20, 0)
    assert ari_against_truth(np.load(out), truth) >= 0.95


@pytest.mark.parametrize("command", ["segment", "batch"])
def test_help_lists_every_flag_of_the_parameters_with_its_default(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for spec in SegmentationParams.specs():
        if spec.flag is not None:
            assert spec.flag in text
    assert "--channel-axis" not in text and "--seeds" not in text
    assert "(default: 20)" in text and "same labels (default: 0)" in text
    with_mask = "or none with --mask" in text
    assert with_mask == (command == "segment") and "mask) (default: otsu" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["segment", "{p}/missing.tif", "-o", "{p}/out.tif"], "no such file"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.png"], "must end in .tif or .npy"),
        (["segment", "{p}/img.bmp", "-o", "{p}/out.tif"], "unsupported file type"),
        (["segment", "{p}/img.npy", "-o", "{p}/nodir/out.tif"], "does not exist"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.tif", "--n-clusters", "0"], "n_clusters"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.tif", "--beta", "-2"], "beta"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.tif", "--threshold", "99"], "mask is empty"),
        (["segment", "{p}/garbage.tif", "-o", "{p}/out.tif"], "cannot read"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(circle_files, capsys, args, message):
    path = circle_files[0]
    (path / "garbage.tif").write_bytes(b"not a tiff")
    code = main([a.format(p=path) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (path / "out.tif").exists()


def test_edge_level_moves_auto_edges_and_is_validated(tmp_path, capsys):
    import scipy.ndimage as ndi

    yy, xx = np.mgrid[:48, :80]
    dim = (yy - 24) ** 2 + (xx - 58) ** 2 < 49
    signal = 1.0 * ((yy - 24) ** 2 + (xx - 20) ** 2 < 49) + 0.4 * dim
    image = ndi.gaussian_filter(signal, 1.5) + 0.1 + 0.01 * np.random.default_rng(0).standard_normal(signal.shape)
    np.save(tmp_path / "discs.npy", image)
    auto = ["--threshold", "otsu", "--n-clusters", "auto", "--min-size", "20"]
    outputs = {}
    for name, extra in (("default", []), ("off", ["--edge-level", "0"])):
        out = tmp_path / f"{name}.tif"
        assert main(["segment", str(tmp_path / "discs.npy"), "-o", str(out), *auto, *extra]) == 0
        outputs[name] = tifffile.imread(out)
        with tifffile.TiffFile(out) as tif:
            outputs[name + " edge_level"] = json.loads(tif.pages[0].description)["edge_level"]
        assert outputs[name].max() == 2
        np.testing.assert_array_equal(
            outputs[name],
            segment(
                image, threshold="otsu", n_clusters="auto", min_size=20, random_state=0, edge_level=0 if extra else 0.4
            ),
        )
    assert outputs["default edge_level"] == pytest.approx(0.4) and outputs["off edge_level"] is None
    # The default draws the dim disc's edge lower on its flank than Otsu's level: closer to its true area.
    areas = {name: int((outputs[name] == outputs[name][24, 58]).sum()) for name in ("default", "off")}
    assert abs(areas["default"] - dim.sum()) < abs(areas["off"] - dim.sum())
    capsys.readouterr()
    code = main(["segment", str(tmp_path / "discs.npy"), "-o", str(tmp_path / "bad.tif"), *auto, "--edge-level", "1.5"])
    err = capsys.readouterr().err
    assert code == 2 and "edge_level" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.tif").exists()


def test_bad_option_value_exits_non_zero_without_traceback(circle_files):
    path = circle_files[0]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_spectral_seg.cli",
            "segment",
            str(path / "img.npy"),
            "-o",
            str(path / "o.tif"),
            "--threshold",
            "high",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "neither a number nor 'otsu'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_headless_writes_the_sample_result(tmp_path):
    out = tmp_path / "demo.tif"
    assert main(["demo", "--headless", str(out)]) == 0
    _, _, truth = four_circles(seed=0)
    assert ari_against_truth(tifffile.imread(out), truth) >= 0.97


def test_demo_screenshot_shows_window_and_result(tmp_path):
    # Runs the README's demo in a child process on this test session's Xvfb display.
    if not os.environ.get("DISPLAY"):
        pytest.skip("needs an X display (pytest-xvfb provides one)")
    out = tmp_path / "shot.png"
    proc = subprocess.run(
        [sys.executable, "-m", "napari_spectral_seg.cli", "demo", "--screenshot", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    import imageio.v3 as iio

    shot = iio.imread(out)
    assert shot.shape[0] >= 600 and shot.shape[1] >= 1000  # the whole window, not just the canvas
    assert "4 segments" in proc.stdout


def test_unwritable_output_is_one_line_before_any_work(circle_files, capsys):
    path = circle_files[0]
    # /proc refuses new files even for root.
    code = main(["segment", str(path / "img.npy"), "-o", "/proc/labels.tif"])
    err = capsys.readouterr().err
    assert code == 2 and "/proc" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_ctrl_c_exits_130_with_one_line_and_no_output(tmp_path):
    import signal
    import time

    image, mask, _ = four_circles(size=1600, seed=0)  # one 0.7 Mpx piece, exact arpack: > 10 s
    np.save(tmp_path / "big.npy", image)
    np.save(tmp_path / "mask.npy", mask)
    out = tmp_path / "labels.tif"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "napari_spectral_seg.cli",
            "segment",
            str(tmp_path / "big.npy"),
            "-o",
            str(out),
            "--mask",
            str(tmp_path / "mask.npy"),
            "--eigen-solver",
            "arpack",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job (e.g. CI started with `&`) ignores SIGINT,
        # and children inherit that: give the command the default, as a
        # terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Interrupt once the imports are done and the solve runs: wait for 3 s of
    # CPU time rather than of wall time, which a loaded CI machine stretches
    # (a fixed 5 s sleep hit the imports there).
    ticks = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        with open(f"/proc/{proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / ticks >= 3.0:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["napari-spectral-seg: interrupted; no output written."]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npy", "mask.npy"]
