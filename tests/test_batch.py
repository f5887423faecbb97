"""``napari-spectral-seg batch``: many images and frames on a dask cluster.

One local cluster (2 worker processes) is shared by the module through
``--scheduler``; one test starts its own with ``--workers 2``.
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import tifffile

from napari_spectral_seg import segment
from napari_spectral_seg.batch import frame_indices, recorded_parameters, resolve_parameters
from napari_spectral_seg.cli import main
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.data import four_circles
from napari_spectral_seg.tables import read_table

distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

# Otsu's threshold and min_size isolate the four circles of a 40x40 sample.
PARAMS = dict(threshold="otsu", n_clusters=4, min_size=20, random_state=3)
FLAGS = ["--threshold", "otsu", "--n-clusters", "4", "--min-size", "20", "--seed", "3", "--no-progress"]


def local_cluster(n_workers, **kwargs):
    """A cluster of worker processes, its HTTP server on a free port (no "8787 in use" warning)."""
    return distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
        **kwargs,
    )


@pytest.fixture(scope="module")
def scheduler():
    with local_cluster(2) as cluster:
        yield cluster.scheduler_address


def write_images(folder, seeds):
    """Four-circles samples, alternately .npy and .tif; returns {stem: image}."""
    images = {}
    for seed in seeds:
        image = four_circles(size=40, seed=seed)[0].astype(np.float32)
        if seed % 2:
            np.save(folder / f"img{seed}.npy", image)
        else:
            tifffile.imwrite(folder / f"img{seed}.tif", image)
        images[f"img{seed}"] = image
    return images


def description(path):
    with tifffile.TiffFile(path) as tif:
        return json.loads(tif.pages[0].description)


def test_batch_on_a_local_cluster_equals_the_single_image_api(tmp_path, capsys):
    images = write_images(tmp_path, range(4))
    out = tmp_path / "out"
    code = main(["batch", str(tmp_path / "img*"), "--out", str(out), "--workers", "2", *FLAGS])
    assert code == 0
    for stem, image in images.items():
        labels = tifffile.imread(out / f"{stem}_labels.tif")
        np.testing.assert_array_equal(labels, segment(image, **PARAMS))
        assert labels.max() == 4
        stored = description(out / f"{stem}_labels.tif")
        assert {k: stored[k] for k in PARAMS} == PARAMS
        assert stored["frames"] == 1 and stored["n_segments"] == 4
    summary = capsys.readouterr().out
    assert "4 written, 0 skipped" in summary and "img3.npy" in summary
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_interrupted_run_resumes_and_skips_complete_outputs(tmp_path, scheduler, capsys):
    images = write_images(tmp_path, range(4))
    out = tmp_path / "out"
    # "Interrupted" first run: only two of the inputs got done.
    assert (
        main(
            [
                "batch",
                str(tmp_path / "img0.tif"),
                str(tmp_path / "img1.npy"),
                "--out",
                str(out),
                "--scheduler",
                scheduler,
                *FLAGS,
            ]
        )
        == 0
    )
    done_before = {p: os.stat(out / p).st_mtime_ns for p in ("img0_labels.tif", "img1_labels.tif")}
    (out / "img1_labels.tif").unlink()  # lost output: must be redone
    (out / ".img2_labels.tif.partial.tif").write_bytes(b"half a tiff")  # killed mid-write
    capsys.readouterr()
    assert main(["batch", str(tmp_path / "img*"), "--out", str(out), "--scheduler", scheduler, *FLAGS]) == 0
    summary = capsys.readouterr().out
    assert "3 written, 1 skipped" in summary
    assert os.stat(out / "img0_labels.tif").st_mtime_ns == done_before["img0_labels.tif"]
    for stem, image in images.items():
        np.testing.assert_array_equal(tifffile.imread(out / f"{stem}_labels.tif"), segment(image, **PARAMS))
    assert sorted(os.listdir(out)) == sorted(f"img{i}_labels.{s}" for i in range(4) for s in ("csv", "tif"))
    # Other parameters do not silently reuse or clobber outputs; --overwrite redoes them.
    assert (
        main(["batch", str(tmp_path / "img0.tif"), "--out", str(out), "--scheduler", scheduler, *FLAGS, "--seed", "4"])
        == 1
    )
    assert "other parameters; pass --overwrite" in capsys.readouterr().out
    assert (
        main(
            [
                "batch",
                str(tmp_path / "img0.tif"),
                "--out",
                str(out),
                "--scheduler",
                scheduler,
                *FLAGS,
                "--seed",
                "4",
                "--overwrite",
            ]
        )
        == 0
    )
    assert description(out / "img0_labels.tif")["random_state"] == 4


def test_a_corrupt_input_fails_alone_with_its_reason(tmp_path, scheduler, capsys):
    images = write_images(tmp_path, [0, 1])
    (tmp_path / "broken.tif").write_bytes(b"not a tiff at all")
    np.save(tmp_path / "empty.npy", np.zeros((40, 40)))  # reads fine, but nothing above the threshold
    out = tmp_path / "out"
    code = main(
        [
            "batch",
            str(tmp_path / "*.tif"),
            str(tmp_path / "*.npy"),
            str(tmp_path / "gone.npy"),
            "--out",
            str(out),
            "--scheduler",
            scheduler,
            *FLAGS[:-3],
            "--threshold",
            "1.5",
            "--no-progress",
        ]
    )
    assert code == 1
    captured = capsys.readouterr()
    assert "broken.tif: cannot read it as an image" in captured.err
    assert "empty.npy: mask is empty" in captured.err
    assert "gone.npy: no such file" in captured.err
    assert "2 written, 0 skipped (already complete), 3 failed" in captured.out
    for stem, image in images.items():
        np.testing.assert_array_equal(
            tifffile.imread(out / f"{stem}_labels.tif"), segment(image, **dict(PARAMS, threshold=1.5))
        )
    assert sorted(os.listdir(out)) == ["img0_labels.csv", "img0_labels.tif", "img1_labels.csv", "img1_labels.tif"]


def test_zarr_time_series_is_written_frame_by_frame_by_the_workers(tmp_path, scheduler):
    frames = np.stack([four_circles(size=40, seed=s)[0] for s in range(3)]).astype(np.float32)
    source = zarr.open_array(
        str(tmp_path / "movie.zarr"), mode="w", shape=frames.shape, chunks=(1, 40, 40), dtype="float32"
    )
    source[...] = frames
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "movie.zarr"), "--out", str(out), "--scheduler", scheduler, *FLAGS]) == 0
    result = zarr.open_array(str(out / "movie_labels.zarr"), mode="r")
    assert result.shape == (3, 40, 40) and result.chunks == (1, 40, 40)
    for t in range(3):
        np.testing.assert_array_equal(result[t], segment(frames[t], **PARAMS))
    stored = dict(result.attrs["spectral_seg"])
    assert stored["frames"] == 3 and [f["index"] for f in stored["frame_info"]] == [[0], [1], [2]]
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_npy_time_series_gives_one_tif_and_spatial_ndim_3_one_volume(tmp_path, scheduler):
    frames = np.stack([four_circles(size=40, seed=s)[0] for s in range(2)])
    np.save(tmp_path / "movie.npy", frames)
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "movie.npy"), "--out", str(out), "--scheduler", scheduler, *FLAGS]) == 0
    labels = tifffile.imread(out / "movie_labels.tif")
    assert labels.shape == (2, 40, 40)
    for t in range(2):
        np.testing.assert_array_equal(labels[t], segment(frames[t], **PARAMS))
    assert description(out / "movie_labels.tif")["spatial_ndim"] == 2
    # The same file as one 3D volume: another output, so another directory.
    assert (
        main(
            [
                "batch",
                str(tmp_path / "movie.npy"),
                "--out",
                str(tmp_path / "vol"),
                "--scheduler",
                scheduler,
                *FLAGS,
                "--spatial-ndim",
                "3",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "vol" / "movie_labels.tif"), segment(frames, **PARAMS))


# ---------------------------------------------------------------- no cluster needed
def test_flags_override_the_file_which_overrides_the_defaults():
    from_file = {"n_clusters": 3, "beta": 2.0, "spacing": (2, 1), "min_size": 5, "random_state": 7}
    resolved, spatial_ndim = resolve_parameters(from_file, {"n_clusters": 6, "beta": None})
    assert isinstance(resolved, SegmentationParams)
    assert resolved.n_clusters == 6 and resolved.beta == 2.0 and resolved.random_state == 7
    assert resolved.min_size == 5 and resolved.spacing == (2.0, 1.0) and spatial_ndim == 2
    # Neither in the file nor a flag: the defaults.
    assert resolved.threshold == "auto" and resolved.eigen_solver == "auto"
    assert resolve_parameters()[0] == SegmentationParams()


def test_edge_level_defaults_like_segment_and_is_recorded_none_where_unused():
    def recorded_edge_level(file_params, flags):
        return recorded_parameters(*resolve_parameters(file_params, flags))["edge_level"]

    auto = {"n_clusters": "auto", "threshold": "otsu"}
    assert recorded_edge_level(None, auto) == 0.4  # segment()'s default
    assert recorded_edge_level({"edge_level": 0.25}, auto) == 0.25
    assert recorded_edge_level({"edge_level": 0.25}, dict(auto, edge_level=0.0)) is None
    assert recorded_edge_level({"edge_level": None}, auto) is None  # a file saying "off"
    # Stored as segment() records it: None where it is not used.
    assert recorded_edge_level(None, {"n_clusters": 4, "threshold": "otsu"}) is None
    assert recorded_edge_level({"threshold": None}, {"n_clusters": "auto"}) is None
    with pytest.raises(ValueError, match="edge_level"):
        resolve_parameters({"edge_level": 1.0}, auto)


def test_frames_are_the_trailing_spatial_axes():
    assert frame_indices((40, 40), 2, None) == [()]
    assert frame_indices((3, 40, 40), 2, None) == [(0,), (1,), (2,)]
    assert frame_indices((3, 40, 40), 3, None) == [()]
    assert frame_indices((2, 40, 40, 3), 2, -1) == [(0,), (1,)]
    assert len(frame_indices((2, 3, 5, 40, 40), 3, None)) == 6
    with pytest.raises(ValueError, match="fewer than a frame"):
        frame_indices((40, 40), 3, None)
    # Channels before Z (an OME-TIFF's CZYX): a 2D frame would not hold them; never read as frames.
    assert frame_indices((2, 4, 16, 16), 3, -4) == [()]
    assert len(frame_indices((5, 4, 2, 16, 16), 2, -3)) == 20  # TZCYX: each (t, z) plane with its channels
    with pytest.raises(ValueError, match=r"channel axis \(0 of shape \(2, 4, 16, 16\)\).*--spatial-ndim 3"):
        frame_indices((2, 4, 16, 16), 2, -4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["{p}/nothing*.tif"], "matches no"),
        (["{p}/a.bmp"], "unsupported file type"),
        (["{p}/a.npy", "--params", "{p}/missing.json"], "no such parameter file"),
        (["{p}/a.npy", "--n-clusters", "0"], "n_clusters"),
        (["{p}/a.npy", "--n-clusters", "auto", "--threshold", "otsu", "--edge-level", "1.5"], "edge_level"),
        (["{p}/a.npy", "--spacing", "1,1,1", "--spatial-ndim", "2"], "spacing has 3 values"),
        (["{p}/a.npy", "{p}/a.tif"], "would all be written to"),
        (["{p}/a.npy", "--params", "{p}/broken.yaml"], "broken.yaml, line 3, column 10: cannot read parameters"),
        (
            ["{p}/a.npy", "--params", "{p}/seed.yaml"],
            "seed.yaml: unknown parameter 'seed'; did you mean 'random_state'",
        ),
        (["{p}/a.npy", "--params", "{p}/sigma.yaml"], "sigma.yaml: sigma=(1.0, 2.0, 3.0) has 3 value(s)"),
        (["{p}/a.npy", "--params", "{p}/axis.yaml"], "axis.yaml: channel_axis=7 is out of range"),
        (["{p}/a.npy", "--params", "{p}/beta.yaml"], "beta.yaml: beta='high' must be a positive"),
        (["{p}/a.npy", "--params", "{p}/beta.yaml", "--beta", "-1"], "beta=-1.0 must be a positive"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    np.save(tmp_path / "a.npy", np.zeros((4, 4)))
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 4)))
    (tmp_path / "broken.yaml").write_text("n_clusters: 4\nbeta: [1\nthreshold: otsu\n")
    (tmp_path / "seed.yaml").write_text("n_clusters: 4\nseed: 3\n")
    (tmp_path / "sigma.yaml").write_text("sigma: [1, 2, 3]\n")
    (tmp_path / "axis.yaml").write_text("channel_axis: 7\n")
    (tmp_path / "beta.yaml").write_text("beta: high\n")
    argv = ["batch", *[a.format(p=tmp_path) for a in args], "--out", str(tmp_path / "out"), "--no-progress"]
    # A scheduler that does not exist: an error found per input, once a cluster is used, would name it instead.
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    if "--beta" in args:
        assert "beta.yaml" not in err  # the flag is wrong, not the file


def test_interrupted_zarr_series_resumes_frame_by_frame(tmp_path, scheduler):
    frames = np.stack([four_circles(size=40, seed=s)[0] for s in range(3)]).astype(np.float32)
    zarr.open_array(str(tmp_path / "movie.zarr"), mode="w", shape=frames.shape, chunks=(1, 40, 40), dtype="float32")[
        ...
    ] = frames
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "movie.zarr"), "--out", str(out), "--scheduler", scheduler, *FLAGS]
    assert main(argv) == 0
    # Turn the finished output back into what an interrupted run leaves: a
    # hidden partial store that lists frames 0 and 1 as done. Frame 0 gets a
    # marker value, so the resumed run must keep it rather than recompute it.
    final, partial = out / "movie_labels.zarr", out / ".movie_labels.zarr.partial.zarr"
    os.replace(final, partial)
    store = zarr.open_array(str(partial), mode="r+")
    stored = dict(store.attrs["spectral_seg"])
    request = {
        k: stored[k]
        for k in (
            *PARAMS,
            "beta",
            "eigen_solver",
            "spacing",
            "channel_axis",
            "assign_labels",
            "sigma",
            "sensitivity",
            "edge_level",
            "low_threshold",
            "polarity",
            "background",
            "spatial_ndim",
        )
    }
    store.attrs["spectral_seg"] = request
    store.attrs["spectral_seg_frames_done"] = stored["frame_info"][:2]
    store[0] = 7
    store[1] = 7
    store[2] = 0
    # The run records each frame's table as it comes: here frame 0's only,
    # so frame 1, listed as done but without its table, is redone.
    table = read_table(out / "movie_labels.csv")
    (out / "movie_labels.csv").unlink()
    frame_0 = {name: column[table["frame"] == 0] for name, column in table.items()}
    columns = {name: [str(column.dtype), column.tolist()] for name, column in frame_0.items() if name != "frame"}
    (out / ".movie_labels.zarr.partial.measurements.jsonl").write_text(
        json.dumps({"index": [0], "columns": columns}) + "\n" + '{"index": [1], "colu'  # cut short by a crash
    )
    assert main(argv) == 0
    result = zarr.open_array(str(final), mode="r")
    assert (result[0] == 7).all()
    np.testing.assert_array_equal(result[1], segment(frames[1], **PARAMS))
    np.testing.assert_array_equal(result[2], segment(frames[2], **PARAMS))
    assert "spectral_seg_frames_done" not in result.attrs and not partial.exists()
    resumed = read_table(out / "movie_labels.csv")
    for name in table:
        np.testing.assert_array_equal(resumed[name], table[name])
    assert sorted(os.listdir(out)) == ["movie_labels.csv", "movie_labels.zarr"]


def test_params_file_with_flag_override_and_a_colour_png(tmp_path, scheduler):
    import imageio.v3 as iio

    image = four_circles(size=40, seed=0)[0]
    rgb = np.clip(np.stack([image, image[::-1], image], axis=-1) * 100, 0, 255).astype(np.uint8)
    iio.imwrite(tmp_path / "colour.png", rgb)
    saved = {
        "spectral_seg": {
            "n_clusters": 3,
            "random_state": 1,
            "beta": 2.0,
            "image": "colour",
            "seconds": 0.1,
            "version": "0.1.0",
            "threshold_used": None,
        }
    }
    (tmp_path / "p.json").write_text(json.dumps(saved))
    out = tmp_path / "out"
    assert (
        main(
            [
                "batch",
                str(tmp_path / "colour.png"),
                "--out",
                str(out),
                "--params",
                str(tmp_path / "p.json"),
                "--n-clusters",
                "2",
                "--scheduler",
                scheduler,
                "--no-progress",
            ]
        )
        == 0
    )
    labels = tifffile.imread(out / "colour_labels.tif")
    # Not in the file nor a flag: the defaults (Otsu's threshold, min_size chosen from the image).
    expected = segment(rgb, channel_axis=-1, n_clusters=2, random_state=1, beta=2.0)
    np.testing.assert_array_equal(labels, expected)
    stored = description(out / "colour_labels.tif")
    assert (stored["n_clusters"], stored["random_state"], stored["channel_axis"]) == (2, 1, -1)


# ---------------------------------------------------------------- what a batch refuses to replace or redo
def test_an_output_not_written_by_us_is_refused_without_overwrite(tmp_path, scheduler, capsys):
    images = write_images(tmp_path, [0, 1])
    out = tmp_path / "out"
    out.mkdir()
    fiji = np.arange(16, dtype=np.uint16).reshape(4, 4)
    tifffile.imwrite(out / "img0_labels.tif", fiji, imagej=True)  # someone else's file
    (out / "img1_labels.tif").write_bytes(b"not even a tiff")
    argv = ["batch", str(tmp_path / "img*"), "--out", str(out), "--scheduler", scheduler, *FLAGS]
    assert main(argv) == 1
    captured = capsys.readouterr()
    for stem in images:
        assert f"{out / stem}_labels.tif exists and was not written by napari-spectral-seg; " in captured.err
    assert "pass --overwrite or another --out" in captured.err
    np.testing.assert_array_equal(tifffile.imread(out / "img0_labels.tif"), fiji)
    assert (out / "img1_labels.tif").read_bytes() == b"not even a tiff"
    assert main([*argv, "--overwrite"]) == 0
    for stem, image in images.items():
        np.testing.assert_array_equal(tifffile.imread(out / f"{stem}_labels.tif"), segment(image, **PARAMS))


def test_an_input_whose_content_changed_is_redone(tmp_path, scheduler, capsys):
    image = four_circles(size=40, seed=0)[0].astype(np.float32)
    np.save(tmp_path / "img.npy", image)
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "img.npy"), "--out", str(out), "--scheduler", scheduler, *FLAGS]
    assert main(argv) == 0
    stat = os.stat(tmp_path / "img.npy")
    # Other pixels, same size and modification time (as `cp -p` or a restored backup leaves them).
    other = four_circles(size=40, seed=1)[0].astype(np.float32)
    np.save(tmp_path / "img.npy", other)
    os.utime(tmp_path / "img.npy", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(tmp_path / "img.npy").st_size == stat.st_size
    capsys.readouterr()
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "1 written, 0 skipped" in captured.out
    assert "img_labels.tif was made from other content of this input; redoing it" in captured.err
    np.testing.assert_array_equal(tifffile.imread(out / "img_labels.tif"), segment(other, **PARAMS))
    os.utime(tmp_path / "img.npy")  # touched, same bytes: still complete
    assert main(argv) == 0
    assert "0 written, 1 skipped" in capsys.readouterr().out


def test_a_changed_zarr_series_is_not_resumed_from_its_partial_store(tmp_path, scheduler):
    frames = np.stack([four_circles(size=40, seed=s)[0] for s in range(2)]).astype(np.float32)
    source = zarr.open_array(str(tmp_path / "m.zarr"), mode="w", shape=frames.shape, chunks=(1, 40, 40), dtype="f4")
    source[...] = frames
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "m.zarr"), "--out", str(out), "--scheduler", scheduler, *FLAGS]
    assert main(argv) == 0
    final, partial = out / "m_labels.zarr", out / ".m_labels.zarr.partial.zarr"
    os.replace(final, partial)  # as an interrupted run leaves it, every frame listed as done
    store = zarr.open_array(str(partial), mode="r+")
    store.attrs["spectral_seg"] = recorded_parameters(*resolve_parameters(None, dict(PARAMS, spatial_ndim=2)))
    store.attrs["spectral_seg_frames_done"] = [dict(index=[t], n_segments=4, seconds=0.1) for t in range(2)]
    source[0] = frames[0][::-1]  # the input changes before the resume
    assert main(argv) == 0
    np.testing.assert_array_equal(zarr.open_array(str(final), mode="r")[0], segment(frames[0][::-1], **PARAMS))


@pytest.mark.parametrize("layout", ["out inside the glob", "out is the input folder"])
def test_outputs_matched_by_the_input_glob_are_left_out(tmp_path, scheduler, capsys, layout):
    images = write_images(tmp_path, [0, 1])
    images["cells_labels"] = four_circles(size=40, seed=5)[0].astype(np.float32)
    tifffile.imwrite(tmp_path / "cells_labels.tif", images["cells_labels"])  # the user's, named like an output
    if layout == "out inside the glob":
        pattern, out = str(tmp_path / "**" / "*"), tmp_path / "out"
    else:
        pattern, out = str(tmp_path / "*"), tmp_path
    argv = ["batch", pattern, "--out", str(out), "--scheduler", scheduler, *FLAGS]
    assert main(argv) == 0
    assert "3 written, 0 skipped" in capsys.readouterr().out
    for _ in range(2):  # each re-run: the same three inputs, never the previous outputs
        assert main(argv) == 0
        captured = capsys.readouterr()
        assert "3 input(s): 0 written, 3 skipped" in captured.out
        assert captured.err.count("\n") == 1 and captured.err.startswith("note: left out 3 file(s)")
    assert sorted(p.name for p in out.glob("*_labels*.tif")) == sorted(
        ["img0_labels.tif", "img1_labels.tif", "cells_labels_labels.tif"]
        + (["cells_labels.tif"] if out == tmp_path else [])
    )
    for stem, image in images.items():
        np.testing.assert_array_equal(tifffile.imread(out / f"{stem}_labels.tif"), segment(image, **PARAMS))


# ---------------------------------------------------------------- one run per output directory
LOCK_HOLDER = """
import sys, time
from napari_spectral_seg.batch.lock import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock(out, seconds=120):
    """A process holding ``out``'s lock (started and locked when this returns)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(out), str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.stdout.readline().strip() == "locked", proc.stderr.read()
    return proc


def test_a_second_run_into_the_same_out_refuses_and_a_dead_runs_lock_is_removed(tmp_path, scheduler, capsys):
    images = write_images(tmp_path, [0])
    out = tmp_path / "out"
    out.mkdir()
    holder = hold_lock(out)
    argv = ["batch", str(tmp_path / "img0.tif"), "--out", str(out), "--scheduler", scheduler, *FLAGS]
    try:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"another batch run (pid {holder.pid} on " in err and "wait for it to end or pass another --out" in err
        assert err.count("\n") == 1 and sorted(os.listdir(out)) == [".napari-spectral-seg.lock"]
    finally:
        holder.send_signal(signal.SIGKILL)  # dies without removing its lock
        holder.wait(timeout=30)
    assert (out / ".napari-spectral-seg.lock").exists()
    assert main(argv) == 0  # the lock of a process that no longer runs is stale
    assert sorted(os.listdir(out)) == ["img0_labels.csv", "img0_labels.tif"]
    np.testing.assert_array_equal(tifffile.imread(out / "img0_labels.tif"), segment(images["img0"], **PARAMS))


def test_runs_starting_at_once_get_the_lock_one_at_a_time(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    racer = textwrap.dedent(
        """
        import os, sys, time
        from pathlib import Path
        from napari_spectral_seg.batch import BatchError
        from napari_spectral_seg.batch.lock import output_lock
        tried = Path(sys.argv[3])
        time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
        try:
            with output_lock(sys.argv[1]):
                print("got it", flush=True)
                (tried / str(os.getpid())).touch()
                deadline = time.time() + 60
                while len(list(tried.iterdir())) < 6 and time.time() < deadline:  # until every other one has tried
                    time.sleep(0.05)
        except BatchError as exc:
            print("refused", exc, flush=True)
            (tried / str(os.getpid())).touch()
        """
    )
    tried = tmp_path / "tried"  # each process leaves a file here once it has tried
    tried.mkdir()
    start = time.time() + 4  # most processes imported by then; a late one still finds the lock held
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", racer, str(out), str(start), str(tried)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(6)
    ]
    answers = [proc.communicate(timeout=60)[0] for proc in procs]
    assert sum(a.startswith("got it") for a in answers) == 1, answers
    assert sum(a.startswith("refused") for a in answers) == 5
    assert os.listdir(out) == []


# ---------------------------------------------------------------- colour TIFFs
def test_an_rgb_tif_is_one_colour_image_not_a_series(tmp_path, scheduler):
    image = four_circles(size=40, seed=0)[0]
    rgb = np.clip(np.stack([image, image[::-1], image], axis=-1) * 100, 0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "colour.tif", rgb, photometric="rgb")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "colour.tif"), "--out", str(out), "--scheduler", scheduler, *FLAGS]) == 0
    labels = tifffile.imread(out / "colour_labels.tif")
    np.testing.assert_array_equal(labels, segment(rgb, channel_axis=-1, **PARAMS))
    stored = description(out / "colour_labels.tif")
    assert stored["frames"] == 1 and stored["channel_axis"] == -1


# ---------------------------------------------------------------- clusters that fail
@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()


def test_a_scheduler_address_that_never_answers_fails_within_15_s(tmp_path, capsys, silent_port):
    write_images(tmp_path, [0])
    address = f"tcp://127.0.0.1:{silent_port}"
    started = time.monotonic()
    code = main(["batch", str(tmp_path / "img0.tif"), "--out", str(tmp_path / "out"), "--scheduler", address, *FLAGS])
    assert code == 2 and time.monotonic() - started < 15
    err = capsys.readouterr().err
    assert err.startswith(f"napari-spectral-seg: error: --scheduler {address}: no answer within 10 s")
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # said before anything is read or created


def test_a_cluster_without_workers_fails_the_inputs_in_bounded_time(tmp_path, capsys, monkeypatch):
    from napari_spectral_seg.batch import cluster

    write_images(tmp_path, [0, 1])
    monkeypatch.setitem(cluster.NO_WORKERS_TIMEOUT, "scheduler", 2.0)
    with local_cluster(0) as empty:  # as a cluster whose nannies gave up restarting killed workers
        started = time.monotonic()
        argv = ["batch", str(tmp_path / "img*"), "--out", str(tmp_path / "out"), "--scheduler"]
        code = main([*argv, empty.scheduler_address, *FLAGS])
    assert code == 1 and time.monotonic() - started < 30
    captured = capsys.readouterr()
    # One line for the whole cluster, not one per input: which inputs are not done, how many are kept, why.
    assert captured.err.strip().splitlines() == [
        "stopped: 2 input(s) not done (img0.tif, img1.npy), 0 complete and kept: the dask cluster has had no "
        "worker for 2 s (killed, e.g. out of memory, and not restarted); start workers again and re-run to resume"
    ]
    assert "0 written, 0 skipped (already complete), 2 failed" in captured.out


KILLER = """
import os, signal
import napari_spectral_seg.batch.task as task

real = task.read_frame


def read_frame(path, kind, index):
    if "killer" in path:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
    return real(path, kind, index)


def dask_setup(worker):
    task.read_frame = read_frame
"""


def test_an_input_whose_worker_is_killed_fails_with_one_line(tmp_path, capsys):
    image = four_circles(size=40, seed=0)[0]
    np.save(tmp_path / "killer.npy", image)
    (tmp_path / "killer_preload.py").write_text(KILLER)
    with local_cluster(1, preload=[str(tmp_path / "killer_preload.py")]) as dying:
        argv = ["batch", str(tmp_path / "killer.npy"), "--out", str(tmp_path / "out")]
        started = time.monotonic()
        code = main([*argv, "--scheduler", dying.scheduler_address, *FLAGS])
    # The scheduler's allowed failures, then one line: 9-22 s alone, 122 s once at a load of 17 on
    # 2 cores; the bound only tells an end from a hang.
    assert code != 0 and time.monotonic() - started < 300
    captured = capsys.readouterr()
    died = (
        f"failed: {tmp_path / 'killer.npy'}: the worker process segmenting it died every time it was tried "
        "(killed, e.g. out of memory); see the workers' logs, or try fewer --workers"
    )
    # A frame that takes over 10 s (retries under load) is also said to go on: information, not the failure.
    lines = [line for line in captured.err.splitlines() if not line.startswith("still segmenting: ")]
    if lines == [died]:
        assert code == 1 and "0 written, 0 skipped (already complete), 1 failed" in captured.out
    else:
        # Under a heavy load the nanny may not restart the worker before the watch gives up: also one line.
        assert len(lines) == 1 and "has had no worker for" in captured.err, captured.err


def run_cli(args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "napari_spectral_seg.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **kwargs.pop("env", {})},
        **kwargs,
    )


def test_a_worker_that_dies_at_start_up_is_one_line(tmp_path):
    write_images(tmp_path, [0])
    (tmp_path / "die.py").write_text("import os\nos._exit(3)\n")
    proc = run_cli(
        ["batch", str(tmp_path / "img0.tif"), "--out", str(tmp_path / "out"), "--workers", "1", *FLAGS],
        env={"DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(tmp_path / "die.py")])},
    )
    assert proc.returncode == 2, proc.stderr
    # What it was doing, then the one-line error.
    starting, error = proc.stderr.splitlines()
    assert starting == "starting 1 local dask worker process(es)..."
    assert error.startswith("napari-spectral-seg: error: cannot start a local dask cluster of 1 worker process")
    assert "Nanny failed to start" in proc.stderr and "Traceback" not in proc.stderr


def test_a_local_run_prints_one_line_per_failed_input_and_no_dashboard_warning(tmp_path, capfd, recwarn):
    write_images(tmp_path, [0])
    np.save(tmp_path / "empty.npy", np.zeros((40, 40)))
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    busy = socket.socket()
    try:
        busy.bind(("", 8787))  # the dashboard's usual port, taken (if nothing else holds it already)
        busy.listen(1)
    except OSError:
        pass
    try:
        argv = ["batch", str(tmp_path / "*.tif"), str(tmp_path / "*.npy"), "--out", str(tmp_path / "out")]
        code = main([*argv, "--workers", "1", "--threshold", "1.5", "--no-progress"])
    finally:
        busy.close()
    assert code == 1
    captured = capfd.readouterr()  # the workers' output too: they write to this process's stderr
    lines = [line for line in captured.err.splitlines() if line.strip() and not line.startswith("starting ")]
    assert len(lines) == 2, captured.err
    assert lines[0].startswith(f"failed: {tmp_path / 'broken.tif'}: cannot read it as an image")
    assert lines[1].startswith(f"failed: {tmp_path / 'empty.npy'}: mask is empty")
    assert not [w for w in recwarn if "already in use" in str(w.message)]


SLOW_WRITE = """
import sys, time
import tifffile
from napari_spectral_seg.cli import main

real = tifffile.imwrite


def slow(*args, **kwargs):  # the series' final TIFF, half written when the signal comes
    real(*args, **kwargs)
    print("writing", flush=True)
    time.sleep(120)


tifffile.imwrite = slow
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_the_final_tif_is_written_leaves_no_partial_file(tmp_path):
    frames = np.stack([four_circles(size=40, seed=s)[0] for s in range(3)]).astype(np.float32)
    np.save(tmp_path / "movie.npy", frames)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITE, "batch", str(tmp_path / "movie.npy"), "--out", str(out), "--workers", "1"]
        + FLAGS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.stdout.readline().strip() != "writing":
        assert proc.poll() is None, proc.stderr.read()
    assert os.path.exists(out / ".movie_labels.tif.partial.tif")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("napari-spectral-seg: terminated (SIGTERM); 0 output(s) complete")
    assert os.listdir(out) == []  # neither the partial TIFF nor the lock


def test_spacing_as_text_in_a_parameter_file_is_named_as_text():
    # issue 17 rerun: {"spacing": "1,1"} said "must be 3 positive numbers" (the text's length).
    with pytest.raises(ValueError, match=r"spacing='1,1' is text, but must be 2 positive numbers.*\[1.0, 1.0\]"):
        resolve_parameters({"spacing": "1,1"})


def test_a_cluster_left_without_workers_names_the_fix_that_fits_whose_cluster_it_is():
    from napari_spectral_seg.batch.cluster import WorkerWatch

    with local_cluster(0) as empty, distributed.Client(empty) as client:
        reasons = {}
        for local in (True, False):
            watch = WorkerWatch(client, 0.2, local=local)
            deadline = time.monotonic() + 10
            while (reason := watch.stalled()) is None and time.monotonic() < deadline:
                time.sleep(0.1)
            reasons[local] = reason
    assert "has had no worker for 0 s" in reasons[True] and "try fewer --workers" in reasons[True]
    assert "start workers again" not in reasons[True]  # our own cluster: the user cannot start its workers
    assert "start workers again" in reasons[False]
