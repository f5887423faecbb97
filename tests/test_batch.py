"""``napari-spectral-seg batch``: many images and frames on a dask cluster.

One local cluster (2 worker processes) is shared by the module through
``--scheduler``; one test starts its own with ``--workers 2``.
"""

import json
import logging
import os

import numpy as np
import pytest
import tifffile

from napari_spectral_seg import segment
from napari_spectral_seg.batch import frame_indices, recorded_parameters, resolve_parameters
from napari_spectral_seg.cli import main
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.data import four_circles

distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

# Otsu's threshold and min_size isolate the four circles of a 40x40 sample.
PARAMS = dict(threshold="otsu", n_clusters=4, min_size=20, random_state=3)
FLAGS = ["--threshold", "otsu", "--n-clusters", "4", "--min-size", "20", "--seed", "3", "--no-progress"]


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    ) as cluster:
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
    assert sorted(os.listdir(out)) == [f"img{i}_labels.tif" for i in range(4)]
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
    assert sorted(os.listdir(out)) == ["img0_labels.tif", "img1_labels.tif"]


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
def test_flags_override_the_file_which_overrides_the_tool_defaults():
    from_file = {"n_clusters": 3, "beta": 2.0, "spacing": (2, 1), "min_size": 5, "random_state": 7}
    resolved, spatial_ndim = resolve_parameters(from_file, {"n_clusters": 6, "beta": None})
    assert isinstance(resolved, SegmentationParams)
    assert resolved.n_clusters == 6 and resolved.beta == 2.0 and resolved.random_state == 7
    assert resolved.min_size == 5 and resolved.spacing == (2.0, 1.0) and spatial_ndim == 2
    # Neither in the file nor a flag: the tool defaults.
    assert resolved.threshold == "otsu" and resolved.eigen_solver == "auto"
    assert resolve_parameters()[0] == SegmentationParams.tool_defaults()


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
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    np.save(tmp_path / "a.npy", np.zeros((4, 4)))
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 4)))
    argv = ["batch", *[a.format(p=tmp_path) for a in args], "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


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
            "spatial_ndim",
        )
    }
    store.attrs["spectral_seg"] = request
    store.attrs["spectral_seg_frames_done"] = stored["frame_info"][:2]
    store[0] = 7
    store[2] = 0
    assert main(argv) == 0
    result = zarr.open_array(str(final), mode="r")
    assert (result[0] == 7).all()
    np.testing.assert_array_equal(result[1], segment(frames[1], **PARAMS))
    np.testing.assert_array_equal(result[2], segment(frames[2], **PARAMS))
    assert "spectral_seg_frames_done" not in result.attrs and not partial.exists()


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
    # Not in the file nor a flag: the tool defaults (Otsu's threshold, min_size 20).
    expected = segment(rgb, channel_axis=-1, n_clusters=2, random_state=1, beta=2.0, threshold="otsu", min_size=20)
    np.testing.assert_array_equal(labels, expected)
    stored = description(out / "colour_labels.tif")
    assert (stored["n_clusters"], stored["random_state"], stored["channel_axis"]) == (2, 1, -1)
