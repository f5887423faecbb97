"""Reading and writing images, labels and parameter files (``napari_spectral_seg.io``)."""

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


def test_a_misspelt_parameter_is_refused_with_the_closest_name(tmp_path):
    (tmp_path / "typo.json").write_text('{"n_cluster": 4}')
    with pytest.raises(ParameterFileError, match="did you mean 'n_clusters'"):
        load_parameters(tmp_path / "typo.json")
    (tmp_path / "other.json").write_text('{"n_clusters": 4, "comment": "from the lab book"}')
    assert load_parameters(tmp_path / "other.json") == {"n_clusters": 4}  # unrelated keys are informational


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
    assert json.loads((tmp_path / "l.npy.json").read_text()) == {"n_clusters": 4, "spacing": [1.0, 2.0]}
    io.write_labels(tmp_path / "l.tif", labels, {"n_clusters": 4})
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "l.tif"), labels)
    assert io.stored_parameters(tmp_path / "l.tif") == {"n_clusters": 4}


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
