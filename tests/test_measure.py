"""Per-object measurements: the core table against hand-computed values, CSV files, ``segment --measure``."""

import numpy as np
import pytest
import tifffile

from napari_spectral_seg.cli import main
from napari_spectral_seg.core.measure import measure_frames, measure_labels
from napari_spectral_seg.tables import TableError, read_table, write_table


@pytest.fixture
def two_objects():
    """A 6 x 8 image with label 1 (rows 1-2, columns 2-5) and label 3 (rows 4-5, columns 0-1)."""
    labels = np.zeros((6, 8), dtype=np.int32)
    labels[1:3, 2:6] = 1
    labels[4:6, 0:2] = 3
    image = np.arange(48, dtype=np.float64).reshape(6, 8)  # pixel (r, c) holds 8 r + c
    return labels, image


def test_area_centroid_and_intensities_with_anisotropic_pixels(two_objects):
    labels, image = two_objects
    table = measure_labels(labels, image, spacing=(2.0, 0.5))
    assert table["label"].tolist() == [1, 3]
    # 8 and 4 pixels of 2 x 0.5 = 1 unit^2 each.
    assert table["n_pixels"].tolist() == [8, 4]
    np.testing.assert_allclose(table["area"], [8.0, 4.0])
    # Label 1: rows 1, 2 (mean 1.5) and columns 2..5 (mean 3.5), in units of the spacing.
    np.testing.assert_allclose(table["centroid_y"], [1.5 * 2.0, 4.5 * 2.0])
    np.testing.assert_allclose(table["centroid_x"], [3.5 * 0.5, 0.5 * 0.5])
    # Sum of 8 r + c over label 1: 8 * (1 * 4 + 2 * 4) + 2 * (2 + 3 + 4 + 5) = 96 + 28.
    np.testing.assert_allclose(table["integrated_intensity"], [124.0, 32 + 33 + 40 + 41])
    np.testing.assert_allclose(table["mean_intensity"], [124.0 / 8, 146.0 / 4])
    np.testing.assert_allclose(table["max_intensity"], [21.0, 41.0])
    np.testing.assert_allclose(table["equivalent_diameter"], 2 * np.sqrt(np.array([8.0, 4.0]) / np.pi))
    assert [table[f"bbox_{side}_{axis}"][0] for side in ("min", "max") for axis in "yx"] == [1, 2, 3, 6]


def test_a_volume_with_a_z_step_four_times_the_pixel():
    labels = np.zeros((3, 4, 4), dtype=np.int32)
    labels[0:2, 1:3, 1:3] = 5  # 2 x 2 x 2 voxels of 4 x 1 x 1
    table = measure_labels(labels, spacing=(4.0, 1.0, 1.0))
    assert "area" not in table and "mean_intensity" not in table  # no image: no intensity columns
    np.testing.assert_allclose(table["volume"], [32.0])
    np.testing.assert_allclose(table["centroid_z"], [0.5 * 4.0])
    np.testing.assert_allclose(table["equivalent_diameter"], [(6 * 32.0 / np.pi) ** (1 / 3)])


def test_channels_get_their_own_intensity_columns(two_objects):
    labels, image = two_objects
    table = measure_labels(labels, np.stack([image, 2 * image]), channel_axis=0)
    np.testing.assert_allclose(table["integrated_intensity_c1"], 2 * table["integrated_intensity_c0"])
    assert "mean_intensity" not in table


def test_no_object_gives_the_columns_without_rows(two_objects):
    _, image = two_objects
    table = measure_labels(np.zeros((6, 8), dtype=np.int32), image)
    assert len(table["label"]) == 0 and "integrated_intensity" in table


def test_a_stack_is_measured_frame_by_frame_with_a_frame_column(two_objects):
    labels, image = two_objects
    stack = np.stack([labels, np.where(labels == 3, 1, 0)])
    table = measure_frames(stack, np.stack([image, image]), spatial_ndim=2, spacing=(2.0, 0.5))
    assert table["frame"].tolist() == [0, 0, 1] and table["label"].tolist() == [1, 3, 1]
    np.testing.assert_allclose(table["integrated_intensity"], [124.0, 146.0, 146.0])
    two_axes = measure_frames(stack.reshape(1, 2, 6, 8), spatial_ndim=2)
    assert two_axes["frame_0"].tolist() == [0, 0, 0] and two_axes["frame_1"].tolist() == [0, 0, 1]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda labels, image: measure_labels(labels[0]), "1 axes"),
        (lambda labels, image: measure_labels(labels, spacing=(1.0,)), "spacing"),
        (lambda labels, image: measure_labels(labels, image[:3]), "does not fit"),
    ],
)
def test_bad_input_names_what_is_wrong(two_objects, call, message):
    with pytest.raises(ValueError, match=message):
        call(*two_objects)


def test_a_table_is_written_atomically_and_read_back_exactly(two_objects, tmp_path):
    table = measure_labels(*two_objects, spacing=(2.0, 0.3))
    path = write_table(tmp_path / "t.csv", table)
    back = read_table(path)
    assert list(back) == list(table)
    for name in table:
        np.testing.assert_array_equal(back[name], table[name])
        assert back[name].dtype.kind == table[name].dtype.kind
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
    with pytest.raises(TableError, match="ending in .csv"):
        write_table(tmp_path / "t.txt", table)


def test_segment_measure_writes_the_table_of_the_labels(tmp_path, circles, capsys):
    image = circles[0].astype(np.float32)
    tifffile.imwrite(tmp_path / "cells.tif", image)
    argv = ["segment", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "labels.tif"), "--seed", "0"]
    assert main([*argv, "--n-clusters", "4", "--spacing", "0.5,0.5", "--measure", str(tmp_path / "cells.csv")]) == 0
    assert "cells.csv: measurements of 4 objects" in capsys.readouterr().out
    labels = tifffile.imread(tmp_path / "labels.tif")
    table = read_table(tmp_path / "cells.csv")
    expected = measure_labels(labels, image, spacing=(0.5, 0.5))
    for name in expected:
        np.testing.assert_allclose(table[name], expected[name])
    np.testing.assert_allclose(table["area"], table["n_pixels"] * 0.25)


def test_segment_measure_of_a_stack_has_a_frame_column(tmp_path, circles):
    np.save(tmp_path / "movie.npy", np.stack([circles[0], circles[0][::-1]]))
    argv = ["segment", str(tmp_path / "movie.npy"), "-o", str(tmp_path / "labels.tif")]
    assert main([*argv, "--measure", str(tmp_path / "movie.csv")]) == 0
    table = read_table(tmp_path / "movie.csv")
    assert sorted(set(table["frame"].tolist())) == [0, 1]


def test_segment_measure_refuses_a_bad_path_before_the_work(tmp_path, circles, capsys):
    np.save(tmp_path / "cells.npy", circles[0])
    argv = ["segment", str(tmp_path / "cells.npy"), "-o", str(tmp_path / "labels.tif")]
    assert main([*argv, "--measure", str(tmp_path / "missing" / "t.csv")]) == 2
    assert "folder for the measurement table does not exist" in capsys.readouterr().err
    assert not (tmp_path / "labels.tif").exists()


@pytest.mark.parametrize("folder", ["-o", "--measure"])
def test_segment_refuses_a_folder_as_output_or_table_before_the_work(tmp_path, circles, capsys, folder):
    # A folder named like a file (labels.tif/, cells.csv/) was found only
    # after the work: the labels were written, then the table failed.
    np.save(tmp_path / "cells.npy", circles[0])
    paths = {"-o": tmp_path / "labels.tif", "--measure": tmp_path / "cells.csv"}
    paths[folder].mkdir()
    argv = ["segment", str(tmp_path / "cells.npy"), "-o", str(paths["-o"]), "--measure", str(paths["--measure"])]
    assert main(argv) == 2
    assert "is a folder; give" in capsys.readouterr().err
    assert paths["-o"].is_dir() or not paths["-o"].exists()
