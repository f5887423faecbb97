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
    # The defaults: with --mask, no threshold (threshold 'auto') and every piece of the mask kept.
    np.testing.assert_array_equal(labels, segment(image, mask, n_clusters=4, random_state=5))
    assert ari_against_truth(labels, truth) >= 0.97
    with tifffile.TiffFile(out) as tif:
        params = json.loads(tif.pages[0].description)
    assert params["n_clusters"] == 4 and params["random_state"] == 5
    assert params["min_size"] == "auto" and params["min_size_used"] == 0
    assert params["threshold"] == "auto" and params["threshold_used"] is None
    assert "4 segments" in capsys.readouterr().out


def test_segment_otsu_to_npy_with_sidecar(circle_files):
    path, image, _, truth = circle_files
    out = path / "labels.npy"
    assert main(["segment", str(path / "img.tif"), "-o", str(out), "--threshold", "otsu", "--min-size", "20"]) == 0
    labels = np.load(out)
    assert labels.max() == 4 and ari_against_truth(labels, truth) >= 0.95
    sidecar = json.loads((path / "labels.npy.json").read_text())
    assert sidecar["threshold"] == "otsu" and 1.3 < sidecar["threshold_used"] < 1.7


def test_segment_without_flags_uses_the_defaults(circle_files):
    path, image, _, truth = circle_files
    out = path / "labels.npy"
    assert main(["segment", str(path / "img.npy"), "-o", str(out)]) == 0
    expected = SegmentationParams()
    np.testing.assert_array_equal(np.load(out), segment(image, **expected.as_kwargs()))
    np.testing.assert_array_equal(np.load(out), segment(image))
    sidecar = json.loads((path / "labels.npy.json").read_text())
    assert (sidecar["threshold"], sidecar["min_size"], sidecar["random_state"]) == ("auto", "auto", 0)
    assert sidecar["min_size_used"] > 0 and sidecar["threshold_used"] > 0
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
    # channel_axis has no flag of its own; segment adds one (batch reads it from a parameter file).
    assert ("--channel-axis N" in text) == (command == "segment") and "--seeds" not in text
    assert "--spatial-ndim" in text
    assert "(default: auto)" in text and "(recorded) (default: 0)" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["segment", "{p}/missing.tif", "-o", "{p}/out.tif"], "no such file"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.png"], "must end in .tif or .npy"),
        (["segment", "{p}/img.bmp", "-o", "{p}/out.tif"], "unsupported file type"),
        (["segment", "{p}/img.npy", "-o", "{p}/nodir/out.tif"], "does not exist"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.tif", "--n-clusters", "0"], "--n-clusters 0 must be"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.tif", "--beta", "-2"], "beta"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.tif", "--threshold", "99"], "mask is empty"),
        (["segment", "{p}/garbage.tif", "-o", "{p}/out.tif"], "cannot read"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.tif", "--channel-axis", "5"], "--channel-axis 5 is out of range"),
        (["segment", "{p}/img.npy", "-o", "{p}/out.tif", "--spatial-ndim", "3"], "fewer than --spatial-ndim 3"),
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


def test_messages_name_the_flags_not_the_keyword_arguments(tmp_path, capsys):
    # "pass threshold=None" cannot be typed on a command line.
    np.save(tmp_path / "flat.npy", np.zeros((40, 40)))
    np.save(tmp_path / "img.npy", four_circles(seed=0)[0])
    assert main(["segment", str(tmp_path / "flat.npy"), "-o", str(tmp_path / "out.tif")]) == 2
    err = capsys.readouterr().err
    assert "--threshold auto keeps nothing; pass --threshold none." in err and "threshold=" not in err
    assert main(["segment", str(tmp_path / "img.npy"), "-o", str(tmp_path / "out.tif"), "--min-size", "99999"]) == 2
    assert "smaller than --min-size 99999 pixels; lower --min-size." in capsys.readouterr().err
    argv = ["batch", str(tmp_path / "flat.npy"), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "pass --threshold none" in err and "threshold=None" not in err


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
    assert code == 2 and "--edge-level 1.5 must be" in err and len(err.strip().splitlines()) == 1
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


# ---------------------------------------------------------------- what segment refuses to overwrite
@pytest.mark.parametrize(
    "output, extra, what",
    [
        ("{p}/img.npy", [], "the input image"),
        ("{p}/./sub/../img.npy", [], "the input image"),
        ("{p}/link.npy", [], "the input image"),
        ("{p}/hard.npy", [], "the input image"),
        ("{p}/mask.tif", ["--mask", "{p}/mask.tif"], "the --mask file"),
        ("{p}/masklink.tif", ["--mask", "{p}/mask.tif"], "the --mask file"),
    ],
)
def test_segment_refuses_an_output_that_is_its_input(circle_files, capsys, output, extra, what):
    path = circle_files[0]
    (path / "sub").mkdir()
    os.symlink(path / "img.npy", path / "link.npy")
    os.link(path / "img.npy", path / "hard.npy")
    os.symlink(path / "mask.tif", path / "masklink.tif")
    before = {name: (path / name).read_bytes() for name in ("img.npy", "mask.tif")}
    output = output.format(p=path)
    code = main(["segment", str(path / "img.npy"), "-o", output, *[a.format(p=path) for a in extra]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"napari-spectral-seg: error: -o {output} is {what}") and "pass another -o file" in err
    assert {name: (path / name).read_bytes() for name in before} == before
    assert not (path / "img.npy.json").exists()


# ---------------------------------------------------------------- stacks and colour
def test_segment_a_stack_frame_by_frame_or_as_one_volume(tmp_path, capsys):
    frames = np.stack([four_circles(size=40, seed=s)[0] for s in range(3)])
    np.save(tmp_path / "movie.npy", frames)
    flags = ["--threshold", "otsu", "--min-size", "20", "--seed", "3"]
    assert main(["segment", str(tmp_path / "movie.npy"), "-o", str(tmp_path / "t.tif"), *flags]) == 0
    labels = tifffile.imread(tmp_path / "t.tif")
    assert labels.shape == frames.shape and "3 frames" in capsys.readouterr().out
    for t in range(3):
        np.testing.assert_array_equal(labels[t], segment(frames[t], threshold="otsu", min_size=20, random_state=3))
    with tifffile.TiffFile(tmp_path / "t.tif") as tif:
        stored = json.loads(tif.pages[0].description)
    assert (stored["spatial_ndim"], stored["frames"], stored["random_state"]) == (2, 3, 3)
    out = tmp_path / "v.tif"
    assert main(["segment", str(tmp_path / "movie.npy"), "-o", str(out), "--spatial-ndim", "3", *flags]) == 0
    np.testing.assert_array_equal(tifffile.imread(out), segment(frames, random_state=3))


def test_segment_an_rgb_tif_uses_its_colour_unless_told_otherwise(tmp_path):
    image = four_circles(size=40, seed=0)[0]
    rgba = np.clip(np.stack([image, image[::-1], image, np.full_like(image, 2.55)], axis=-1) * 100, 0, 255)
    rgba = rgba.astype(np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", rgba, photometric="rgb")
    out = tmp_path / "l.tif"
    assert main(["segment", str(tmp_path / "c.tif"), "-o", str(out), "--seed", "1"]) == 0
    expected = segment(rgba[..., :3], channel_axis=-1, random_state=1)
    np.testing.assert_array_equal(tifffile.imread(out), expected)
    # Channels first in a grey stack: --channel-axis names them.
    planes = np.moveaxis(rgba[..., :3], -1, 0).astype(np.float32)
    np.save(tmp_path / "planes.npy", planes)
    args = ["segment", str(tmp_path / "planes.npy"), "-o", str(out), "--seed", "1", "--channel-axis", "0"]
    assert main(args) == 0
    np.testing.assert_array_equal(tifffile.imread(out), segment(planes, channel_axis=0, random_state=1))


# ---------------------------------------------------------------- consoles and signals
def test_a_non_ascii_output_path_on_an_ascii_console_is_printed_escaped(tmp_path):
    image = four_circles(size=40, seed=0)[0]
    np.save(tmp_path / "img.npy", image)
    folder = tmp_path / "r\u00e9sultats"
    folder.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_spectral_seg.cli",
            "segment",
            str(tmp_path / "img.npy"),
            "-o",
            str(folder / "\u00e9t\u00e9.tif"),
        ],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C", "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode("ascii", "replace")
    assert b"Traceback" not in proc.stderr
    assert b"r\\xe9sultats/\\xe9t\\xe9.tif: 4 segments" in proc.stdout
    assert os.listdir(folder) == ["\u00e9t\u00e9.tif"]


SLOW_DEMO = """
import sys, time
import tifffile
from napari_spectral_seg.cli import main

real = tifffile.imwrite


def slow(*args, **kwargs):
    real(*args, **kwargs)
    print("writing", flush=True)
    time.sleep(120)


tifffile.imwrite = slow
sys.exit(main(["demo", "--headless", sys.argv[1]]))
"""


def test_sigterm_during_the_write_removes_the_temporary_file(tmp_path):
    import signal

    out = tmp_path / "demo.tif"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_DEMO, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
    assert os.listdir(tmp_path) == [".demo.tif.partial.tif"]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip().splitlines() == ["napari-spectral-seg: terminated (SIGTERM); no output written."]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "flag, recorded",
    [("--threshold", "threshold"), ("--seed", "random_state"), ("--sigma", "sigma"), ("--edge-level", "edge_level")],
)
def test_none_is_accepted_where_the_help_offers_it(tmp_path, flag, recorded):
    # issue 17 rerun: "pass --threshold none" (our own message) and "--seed none" (its help) were refused.
    np.save(tmp_path / "img.npy", four_circles(size=40, seed=0)[0])
    out = tmp_path / "out.tif"
    assert main(["segment", str(tmp_path / "img.npy"), "-o", str(out), flag, "none", "--n-clusters", "2"]) == 0
    from napari_spectral_seg.io import stored_parameters

    stored = stored_parameters(out)
    assert stored[recorded] is None or recorded == "random_state"  # a fresh seed is drawn and recorded
    if recorded == "random_state":
        assert isinstance(stored["random_state"], int)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--beta", "abc"], "argument --beta: 'abc' is not a number; e.g. --beta 1.0"),
        (["--seed", "1.5"], "argument --seed: '1.5' is not a whole number; e.g. --seed 0"),
        (["--beta", "none"], "argument --beta: 'none' is not a number; e.g. --beta 1.0"),
        (["--workers", "x"], "argument --workers: invalid int value: 'x'"),
    ],
)
def test_a_flag_value_that_does_not_parse_is_one_line(tmp_path, capsys, argv, words):
    np.save(tmp_path / "img.npy", np.zeros((8, 8)))
    with pytest.raises(SystemExit) as stop:
        main(["segment", str(tmp_path / "img.npy"), "-o", str(tmp_path / "o.tif"), *argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert words in err and "--help" in err


def test_threshold_auto_the_default_can_be_given(tmp_path):
    # issue 17 rerun: '--threshold auto' (the default the help names) was refused as "neither a number nor 'otsu'".
    np.save(tmp_path / "img.npy", four_circles(size=40, seed=0)[0])
    out = tmp_path / "out.tif"
    assert main(["segment", str(tmp_path / "img.npy"), "-o", str(out), "--threshold", "auto"]) == 0


def test_a_run_over_the_time_limit_is_refused_naming_the_flag_and_runs_with_none(tmp_path, capsys):
    # Issue 17: the time guard refused real work with no way around it.
    np.save(tmp_path / "noise.npy", np.random.default_rng(0).random((60, 60)))
    args = ["segment", str(tmp_path / "noise.npy"), "-o", str(tmp_path / "out.tif"), "--threshold", "none"]
    args += ["--n-clusters", "100", "--seed", "0"]
    assert main([*args, "--time-limit", "0.2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "over --time-limit 0.2 s; to run it anyway pass --time-limit none" in err
    assert not (tmp_path / "out.tif").exists()
    assert main([*args, "--time-limit", "none"]) == 0
    assert tifffile.imread(tmp_path / "out.tif").max() == 100
    with pytest.raises(SystemExit):  # argparse's usage error
        main([*args, "--time-limit", "soon"])
    assert "'soon' is not a number; e.g. --time-limit 20.0" in capsys.readouterr().err


def test_a_parameter_file_may_lift_the_time_limit(tmp_path):
    from napari_spectral_seg.io import load_parameters

    (tmp_path / "p.yaml").write_text("n_clusters: 300\ntime_limit: null\n")
    given = load_parameters(tmp_path / "p.yaml")
    assert SegmentationParams.from_mapping(given).time_limit is None
    (tmp_path / "q.yaml").write_text("time_limit: 120\n")
    assert SegmentationParams.from_mapping(load_parameters(tmp_path / "q.yaml")).time_limit == 120


def _tzcyx():
    """A (t, z, c, y, x) series: 2 times, 3 planes, 2 channels of four circles."""
    planes = [four_circles(size=40, seed=seed)[0] for seed in range(6)]
    stack = np.stack([np.stack([planes[3 * t + z], planes[3 * t + z][::-1]]) for t in range(2) for z in range(3)])
    return stack.reshape(2, 3, 2, 40, 40).astype(np.float32)


@pytest.mark.parametrize("kind", ["imagej", "ome"])
def test_a_tzcyx_tif_is_segmented_with_its_channels_not_as_frames(tmp_path, capsys, kind):
    # Issue 17: the C axis of a 5D ImageJ/OME TIFF was read as frames (12 frames of (y, x))
    # unless --channel-axis was given. Its channels are used together, as an RGB TIFF's colour is.
    series = _tzcyx()
    path = tmp_path / ("s.tif" if kind == "imagej" else "s.ome.tif")
    if kind == "imagej":
        tifffile.imwrite(path, series, imagej=True, metadata={"axes": "TZCYX"}, resolution=(2.0, 2.0))
    else:
        tifffile.imwrite(path, series, ome=True, metadata={"axes": "TZCYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    out = tmp_path / "l.tif"
    assert main(["segment", str(path), "-o", str(out), "--seed", "0"]) == 0
    assert "6 frames" in capsys.readouterr().out
    labels = tifffile.imread(out)
    assert labels.shape == (2, 3, 40, 40)
    for t, z in ((0, 0), (1, 2)):
        expected = segment(series[t, z], channel_axis=0, random_state=0, spacing=(0.5, 0.5))
        np.testing.assert_array_equal(labels[t, z], expected)
    with tifffile.TiffFile(out) as tif:
        assert tif.series[0].axes == "TZYX"


def test_read_image_and_probe_name_the_c_axis_of_a_hyperstack(tmp_path):
    from napari_spectral_seg.io import probe, read_frame, read_image

    tifffile.imwrite(tmp_path / "s.tif", _tzcyx(), imagej=True, metadata={"axes": "TZCYX"})
    image, channel_axis = read_image(tmp_path / "s.tif")
    assert image.shape == (2, 3, 2, 40, 40) and channel_axis == -3
    assert probe(tmp_path / "s.tif", "tif") == ((2, 3, 2, 40, 40), -3)
    assert read_frame(str(tmp_path / "s.tif"), "tif", (1, 2)).shape == (2, 40, 40)  # both channels kept
    tifffile.imwrite(tmp_path / "zyx.tif", _tzcyx()[0, :, 0], imagej=True, metadata={"axes": "ZYX"})
    assert read_image(tmp_path / "zyx.tif")[1] is None  # no C: no channel axis


def test_batch_segments_a_tzcyx_tif_with_its_channels(tmp_path, capsys):
    pytest.importorskip("distributed")
    series = _tzcyx()
    tifffile.imwrite(tmp_path / "s.tif", series, imagej=True, metadata={"axes": "TZCYX"})
    out = tmp_path / "out"
    assert (
        main(["batch", str(tmp_path / "s.tif"), "--out", str(out), "--seed", "0", "--no-progress", "--workers", "1"])
        == 0
    )
    labels = tifffile.imread(out / "s_labels.tif")
    assert labels.shape == (2, 3, 40, 40)
    np.testing.assert_array_equal(labels[1, 2], segment(series[1, 2], channel_axis=0, random_state=0))


def test_batch_refuses_an_ome_czyx_tif_in_2d_planes_naming_spatial_ndim(tmp_path, capsys):
    pytest.importorskip("distributed")
    # Channels before Z: a 2D plane would not hold them; the input fails with the fix, never frames of channels.
    volume = _tzcyx()[0].transpose(1, 0, 2, 3)  # (c, z, y, x)
    tifffile.imwrite(tmp_path / "v.ome.tif", volume, ome=True, metadata={"axes": "CZYX"})
    out = tmp_path / "out"
    code = main(["batch", str(tmp_path / "v.ome.tif"), "--out", str(out), "--no-progress", "--workers", "1"])
    printed = capsys.readouterr()
    assert code != 0 and "--spatial-ndim 3" in printed.out + printed.err
    assert not (out / "v.ome_labels.tif").exists()
