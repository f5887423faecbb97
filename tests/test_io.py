"""Reading and writing images, labels and parameter files (``napari_spectral_seg.io``)."""

import errno
import json
import os

import numpy as np
import pytest
import tifffile

from napari_spectral_seg import io
from napari_spectral_seg.io import InputError, ParameterFileError, load_parameters


# ---------------------------------------------------------------- parameter files
def test_load_parameters_reads_the_widget_format(tmp_path):
    saved = {
        "spectral_seg": {
            "threshold": "otsu",
            "n_clusters": 3,
            "beta": 2.0,
            "eigen_solver": "auto",
            "random_state": 7,
            "spacing": [2, 1],
            "channel_axis": None,
            "min_size": 5,
            "assign_labels": "kmeans",
            "seeds": None,
            "threshold_used": 1.49,
            "image": "cells",
            "mask": None,
            "seconds": 0.3,
            "n_segments": 3,
            "version": "0.1.0",
        }
    }
    (tmp_path / "p.json").write_text(json.dumps(saved))
    params = load_parameters(tmp_path / "p.json")
    assert params == {
        "threshold": "otsu",
        "n_clusters": 3,
        "beta": 2.0,
        "eigen_solver": "auto",
        "random_state": 7,
        "spacing": (2.0, 1.0),
        "channel_axis": None,
        "min_size": 5,
        "assign_labels": "kmeans",
    }
    (tmp_path / "p.yaml").write_text("n_clusters: 5\nthreshold: 1.5\nimage: x\nspatial_ndim: 3\n")
    assert load_parameters(tmp_path / "p.yaml") == {"n_clusters": 5, "threshold": 1.5, "spatial_ndim": 3}


def test_a_yaml_number_with_an_exponent_and_no_point_is_a_number(tmp_path):
    # Attack (rerun): `threshold: 1e9` in a YAML file was refused as "threshold='1e9' is not
    # understood; pass a number" (YAML 1.1 reads 1e9 as text); JSON reads it as a number.
    (tmp_path / "p.yaml").write_text("threshold: 1e9\nbeta: -2E-1\ntime_limit: +3e1\nimage: 1e5x\n")
    assert load_parameters(tmp_path / "p.yaml") == {"threshold": 1e9, "beta": -0.2, "time_limit": 30.0}
    (tmp_path / "q.yaml").write_text("threshold: '1e9'\n")  # quoted: text, as the user wrote it
    assert load_parameters(tmp_path / "q.yaml") == {"threshold": "1e9"}


def test_a_misspelt_parameter_is_refused_with_the_closest_name(tmp_path):
    (tmp_path / "typo.json").write_text('{"n_cluster": 4}')
    with pytest.raises(ParameterFileError, match="did you mean 'n_clusters'"):
        load_parameters(tmp_path / "typo.json")
    (tmp_path / "frames.json").write_text('{"spatial_dim": 3}')
    with pytest.raises(ParameterFileError, match="did you mean 'spatial_ndim'"):
        load_parameters(tmp_path / "frames.json")


@pytest.mark.parametrize("key", ["seed", "random_seed"])
def test_a_guessed_parameter_name_is_refused_not_ignored(tmp_path, key):
    (tmp_path / "p.yaml").write_text(f"n_clusters: 4\n{key}: 3\n")
    with pytest.raises(ParameterFileError, match=f"unknown parameter '{key}'; did you mean 'random_state'"):
        load_parameters(tmp_path / "p.yaml")
    (tmp_path / "other.json").write_text('{"n_clusters": 4, "comment": "from the lab book"}')
    with pytest.raises(ParameterFileError, match="unknown parameter 'comment'"):
        load_parameters(tmp_path / "other.json")


def test_the_keys_our_own_tools_write_stay_allowed(tmp_path):
    written = {
        "n_clusters": "auto",
        "split_ratios": [0.5],
        "per_frame": {},
        "frame_info": [],
        "engine_start_seconds": 0.1,
        "sample": "four circles",
        "ari": 1.0,
        "frames": 1,
        "input": "a.tif",
    }
    (tmp_path / "p.json").write_text(json.dumps({"spectral_seg": written}))
    assert load_parameters(tmp_path / "p.json") == {"n_clusters": "auto"}


@pytest.mark.parametrize(
    "name, text, where, problem",
    [
        ("p.yaml", "n_clusters: 4\nbeta: [1\nthreshold: otsu\n", "line 3, column 10", "not valid YAML"),
        ("p.json", '{"n_clusters": 4,\n "beta": }', "line 2, column 10", "not valid JSON"),
    ],
)
def test_a_broken_parameter_file_is_one_line_with_its_line_and_column(tmp_path, name, text, where, problem):
    (tmp_path / name).write_text(text)
    with pytest.raises(ParameterFileError) as error:
        load_parameters(tmp_path / name)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / name}, {where}: cannot read parameters ({problem}")
    assert "\n" not in message


def test_a_labels_tif_repeats_the_run_that_wrote_it(tmp_path):
    recorded = {"threshold": "otsu", "n_clusters": 4, "min_size": 20, "seeds": [[1, 2]], "n_segments": 4}
    io.write_labels(tmp_path / "labels.tif", np.ones((4, 4), np.int32), recorded)
    assert load_parameters(tmp_path / "labels.tif") == {"threshold": "otsu", "n_clusters": 4, "min_size": 20}
    assert io.stored_parameters(tmp_path / "labels.tif") == recorded


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("missing.json", None, "no such parameter file"),
        ("broken.json", "{not json", "cannot read parameters"),
        ("list.yaml", "- 1\n- 2\n", "expected an object of parameters"),
    ],
)
def test_a_bad_parameter_file_is_a_value_error_naming_the_file(tmp_path, name, text, message):
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(ParameterFileError, match=message) as error:
        load_parameters(tmp_path / name)
    assert str(error.value).startswith(str(tmp_path / name))
    assert isinstance(error.value, InputError) and isinstance(error.value, ValueError)


# ---------------------------------------------------------------- images and frames
def test_read_image_gives_colour_png_a_channel_axis_without_alpha(tmp_path):
    import imageio.v3 as iio

    rgba = np.random.default_rng(0).integers(0, 255, (8, 9, 4), dtype=np.uint8)
    iio.imwrite(tmp_path / "c.png", rgba)
    image, channel_axis = io.read_image(tmp_path / "c.png")
    assert channel_axis == -1 and image.shape == (8, 9, 3)
    np.testing.assert_array_equal(image, rgba[..., :3])
    assert io.probe(tmp_path / "c.png", "png") == ((8, 9, 3), -1)
    np.save(tmp_path / "g.npy", rgba[..., 0])
    image, channel_axis = io.read_image(tmp_path / "g.npy")
    assert channel_axis is None and image.shape == (8, 9)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.bmp", b"", "unsupported file type"),
        ("gone.tif", None, "no such file"),
        ("garbage.tif", b"not a tiff", "cannot read it as an image"),
    ],
)
def test_an_unreadable_image_is_an_input_error_naming_the_file(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=message) as error:
        io.read_image(tmp_path / name)
    assert str(tmp_path / name) in str(error.value)


def test_read_frame_reads_one_frame_of_a_series(tmp_path):
    zarr = pytest.importorskip("zarr")
    series = np.arange(3 * 5 * 6, dtype=np.float32).reshape(3, 5, 6)
    np.save(tmp_path / "s.npy", series)
    tifffile.imwrite(tmp_path / "s.tif", series)
    tifffile.imwrite(tmp_path / "z.tif", series, compression="zlib")  # no memory map: read whole
    zarr.open_array(str(tmp_path / "s.zarr"), mode="w", shape=series.shape, chunks=(1, 5, 6), dtype="f4")[...] = series
    for name, kind in (("s.npy", "npy"), ("s.tif", "tif"), ("z.tif", "tif"), ("s.zarr", "zarr")):
        path = str(tmp_path / name)
        assert io.input_kind(path) == kind and io.probe(path, kind) == ((3, 5, 6), None)
        np.testing.assert_array_equal(io.read_frame(path, kind, (1,)), series[1])
        np.testing.assert_array_equal(io.read_frame(path, kind, ()), series)
    with pytest.raises(InputError, match="unsupported file type"):
        io.input_kind(tmp_path / "s.bmp")


# ---------------------------------------------------------------- labels
def test_write_labels_to_npy_adds_a_sidecar_and_to_tif_a_description(tmp_path):
    labels = np.arange(12, dtype=np.int32).reshape(3, 4)
    io.write_labels(tmp_path / "l.npy", labels, {"n_clusters": 4, "spacing": (1.0, 2.0)})
    np.testing.assert_array_equal(np.load(tmp_path / "l.npy"), labels)
    sidecar = json.loads((tmp_path / "l.npy.json").read_text())
    described = sidecar.pop("labels_file")  # the file it was written with: its size and hash
    assert (
        sidecar == {"n_clusters": 4, "spacing": [1.0, 2.0]} and described["size"] == (tmp_path / "l.npy").stat().st_size
    )
    assert io.stored_parameters(tmp_path / "l.npy") == {"n_clusters": 4, "spacing": [1.0, 2.0]}
    io.write_labels(tmp_path / "l.tif", labels, {"n_clusters": 4})
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "l.tif"), labels)
    assert io.stored_parameters(tmp_path / "l.tif") == {"n_clusters": 4}


@pytest.mark.parametrize("existing", [False, True])
def test_a_full_disk_at_the_npy_sidecar_leaves_neither_half_a_pair_nor_an_empty_file(tmp_path, monkeypatch, existing):
    old = np.full((3, 4), 7, np.int32)
    if existing:
        io.write_labels(tmp_path / "l.npy", old, {"n_clusters": 7})

    def disk_full(path, text):
        open(path, "w").close()  # the file is created, then the write fails
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.labels, "_write_text", disk_full)
    with pytest.raises(InputError, match="No space left on device"):
        io.write_labels(tmp_path / "l.npy", np.ones((3, 4), np.int32), {"n_clusters": 4})
    if not existing:
        assert os.listdir(tmp_path) == []
        return
    assert sorted(os.listdir(tmp_path)) == ["l.npy", "l.npy.json"]  # the earlier pair, as it was
    np.testing.assert_array_equal(np.load(tmp_path / "l.npy"), old)
    assert io.stored_parameters(tmp_path / "l.npy") == {"n_clusters": 7}


def test_a_failed_rename_of_the_labels_takes_the_new_sidecar_back(tmp_path, monkeypatch):
    real = os.replace

    def refuse_labels(src, dst):
        if str(dst).endswith(".npy"):
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_labels)
    with pytest.raises(InputError, match="Input/output error"):
        io.write_labels(tmp_path / "l.npy", np.ones((3, 4), np.int32), {"n_clusters": 4})
    assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(InputError, match="cannot write it"):
        io.write_labels(tmp_path / "l.tif", np.zeros((4, 4), np.int32), {})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "relative, message",
    [("out.png", "must end in .tif or .npy"), ("nodir/out.tif", "does not exist")],
)
def test_an_output_that_cannot_be_written_is_refused_before_any_work(tmp_path, relative, message):
    with pytest.raises(InputError, match=message):
        io.check_output_path(tmp_path / relative)
    assert io.check_output_path(tmp_path / "out.tif") == tmp_path / "out.tif"


def test_an_unreadable_output_has_no_stored_parameters(tmp_path):
    (tmp_path / "half.tif").write_bytes(b"half a tiff")
    assert io.stored_parameters(tmp_path / "half.tif") is None
    assert io.stored_parameters(tmp_path / "missing_labels.zarr") is None


def test_same_file_sees_other_spellings_symlinks_and_hard_links(tmp_path, monkeypatch):
    (tmp_path / "a.tif").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "a.tif", tmp_path / "link.tif")
    os.link(tmp_path / "a.tif", tmp_path / "hard.tif")
    monkeypatch.chdir(tmp_path)
    assert io.same_file("a.tif", tmp_path / "sub" / ".." / "a.tif")
    assert io.same_file(tmp_path / "link.tif", "a.tif") and io.same_file("hard.tif", "./a.tif")
    assert not io.same_file("a.tif", "b.tif") and not io.same_file("missing.tif", "b.tif")


def test_outputs_of_this_package_are_told_from_other_files(tmp_path):
    recorded = {"threshold": "otsu", "n_clusters": 4, "beta": 1.0, "eigen_solver": "auto", "random_state": 0}
    io.write_labels(tmp_path / "ours.tif", np.ones((4, 4), np.int32), recorded)
    io.write_labels(tmp_path / "ours.npy", np.ones((4, 4), np.int32), recorded)
    tifffile.imwrite(tmp_path / "fiji.tif", np.ones((4, 4), np.uint16), imagej=True)
    tifffile.imwrite(tmp_path / "plain.tif", np.ones((4, 4), np.int32))  # tifffile's own {"shape": ...}
    np.save(tmp_path / "bare.npy", np.ones((4, 4)))
    verdicts = {p.name: io.written_by_us(io.stored_parameters(p)) for p in sorted(tmp_path.iterdir())}
    assert verdicts == {
        "bare.npy": False,
        "fiji.tif": False,
        "ours.npy": True,
        "ours.npy.json": False,
        "ours.tif": True,
        "plain.tif": False,
    }


def test_a_tif_output_keeps_its_input_identity_apart_from_the_parameters(tmp_path):
    (tmp_path / "in.npy").write_bytes(b"0123456789")
    identity = io.file_identity(tmp_path / "in.npy")
    assert identity["size"] == 10 and len(identity["blake2b"]) == 32
    io.write_labels(tmp_path / "l.tif", np.ones((4, 4), np.int32), {"n_clusters": 4}, input_identity=identity)
    assert io.stored_parameters(tmp_path / "l.tif") == {"n_clusters": 4}
    assert io.stored_input_identity(tmp_path / "l.tif") == identity
    (tmp_path / "in.npy").write_bytes(b"0123456780")  # same size, other content
    changed = io.file_identity(tmp_path / "in.npy")
    assert not io.same_content(identity, changed)
    os.utime(tmp_path / "in.npy", ns=(1, 1))  # a touched file with the same bytes is the same content
    assert io.same_content(changed, io.file_identity(tmp_path / "in.npy"))


@pytest.mark.parametrize(
    "shape, options, axis",
    [
        ((30, 40, 3), dict(photometric="rgb"), -1),
        ((30, 40, 4), dict(photometric="rgb"), -1),
        ((3, 30, 40), dict(photometric="rgb", planarconfig="separate"), -3),
        ((5, 30, 40, 3), dict(photometric="rgb"), -1),
        ((30, 40, 3), dict(photometric="minisblack"), -1),  # uint8 with 3 values last: colour without the tag
        ((5, 30, 40), dict(photometric="minisblack"), None),
    ],
)
def test_an_rgb_tif_is_read_with_its_colour_axis_and_without_alpha(tmp_path, shape, options, axis):
    data = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", data, **options)
    image, channel_axis = io.read_image(tmp_path / "c.tif")
    assert channel_axis == axis
    expected = data if axis is None else np.take(data, range(min(shape[axis], 3)), axis=axis)
    np.testing.assert_array_equal(image, expected)
    assert io.probe(tmp_path / "c.tif", "tif") == (expected.shape, axis)
    np.testing.assert_array_equal(io.read_frame(str(tmp_path / "c.tif"), "tif", ()), expected)


def test_a_float_stack_of_three_frames_is_not_colour(tmp_path):
    stack = np.zeros((3, 5, 6), np.float32)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="rgb", planarconfig="separate")  # tifffile's old default
    assert io.read_image(tmp_path / "s.tif")[1] is None and io.probe(tmp_path / "s.tif", "tif") == ((3, 5, 6), None)


def test_a_folder_given_as_image_is_named_as_a_folder(tmp_path):
    # issue 17 rerun: the message showed Python's IsADirectoryError.
    from napari_spectral_seg.io.images import read_image

    folder = tmp_path / "scan.tif"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"scan.tif: is a folder, not an image file; pass a file"):
        read_image(folder)


def test_tifffile_messages_are_off_only_inside_each_read_even_when_reads_overlap():
    import logging

    from napari_spectral_seg.io.common import tiff_warnings_off

    logger = logging.getLogger("tifffile")
    first, second = tiff_warnings_off(), tiff_warnings_off()
    first.__enter__()
    second.__enter__()
    assert not logger.filter(logging.LogRecord("tifffile", logging.ERROR, "", 0, "damaged page", None, None))
    first.__exit__(None, None, None)  # the first read ends before the second (two threads)
    assert not logger.filter(logging.LogRecord("tifffile", logging.ERROR, "", 0, "damaged page", None, None))
    second.__exit__(None, None, None)
    assert logger.filter(logging.LogRecord("tifffile", logging.ERROR, "", 0, "damaged page", None, None))
    assert logger.level == logging.NOTSET
