"""Voxel sizes in and out: ImageJ, OME-TIFF and resolution tags are read, used as ``spacing`` unless
``--spacing`` is given, recorded, and written back (ImageJ hyperstack) by ``segment`` and ``batch``."""

import json

import numpy as np
import pytest
import tifffile

from napari_spectral_seg import segment
from napari_spectral_seg.cli import main
from napari_spectral_seg.io import VoxelSize, read_voxel_size, stored_parameters, write_labels
from napari_spectral_seg.io.voxels import MICROMETRE

FLAGS = ["--threshold", "otsu", "--n-clusters", "2", "--seed", "0"]


def two_balls(shape=(9, 40, 40)):
    """Two bright balls in a (z, y, x) volume: anisotropic when z is 4 times coarser."""
    z, y, x = np.indices(shape, dtype=float)
    centre = np.array(shape) / 2
    image = np.zeros(shape, np.float32)
    for dx in (-9, 9):
        image[((z - centre[0]) * 4) ** 2 + (y - centre[1]) ** 2 + (x - centre[2] - dx) ** 2 < 64] = 1.0
    return image + np.random.default_rng(0).normal(0, 0.05, shape).astype(np.float32)


def imagej_stack(path, image, z=2.0, xy=0.5):
    tifffile.imwrite(
        path,
        image,
        imagej=True,
        resolution=(1 / xy, 1 / xy),
        metadata={"spacing": z, "unit": "micron", "axes": "ZYX"},
    )


def test_imagej_ome_and_resolution_tags_are_read(tmp_path):
    image = two_balls()
    imagej_stack(tmp_path / "ij.tif", image)
    assert read_voxel_size(tmp_path / "ij.tif") == VoxelSize({"Y": 0.5, "X": 0.5, "Z": 2.0}, MICROMETRE, "ImageJ")
    tifffile.imwrite(
        tmp_path / "ome.ome.tif",
        image,
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 250, "PhysicalSizeXUnit": "nm", "PhysicalSizeY": 0.25},
    )
    ome = read_voxel_size(tmp_path / "ome.ome.tif")
    assert ome.source == "OME" and ome.spacing(2) == pytest.approx((0.25, 0.25)) and not ome.has_z
    tifffile.imwrite(tmp_path / "cm.tif", image[0], resolution=(10000, 10000), resolutionunit="CENTIMETER")
    assert read_voxel_size(tmp_path / "cm.tif").spacing(2) == pytest.approx((1.0, 1.0))
    tifffile.imwrite(tmp_path / "plain.tif", image[0])  # no unit: no physical size
    assert read_voxel_size(tmp_path / "plain.tif") is None
    np.save(tmp_path / "a.npy", image)
    assert read_voxel_size(tmp_path / "a.npy") is None


def test_segment_uses_the_files_voxel_size_and_writes_it_back(tmp_path, capsys):
    image = two_balls()
    imagej_stack(tmp_path / "ij.tif", image)
    out = tmp_path / "labels.tif"
    assert main(["segment", str(tmp_path / "ij.tif"), "-o", str(out), *FLAGS]) == 0
    stored = stored_parameters(out)
    assert stored["spacing"] == [2.0, 0.5, 0.5]  # a volume, at its scale
    assert stored["voxel_size"] == {"sizes": {"Z": 2.0, "Y": 0.5, "X": 0.5}, "unit": MICROMETRE, "source": "ImageJ"}
    labels = tifffile.imread(out)
    np.testing.assert_array_equal(
        labels, segment(image, threshold="otsu", n_clusters=2, random_state=0, spacing=(2, 0.5, 0.5))
    )
    with tifffile.TiffFile(out) as tif:  # what Fiji reads: a calibrated ImageJ hyperstack
        assert tif.is_imagej and tif.series[0].axes == "ZYX"
        assert tif.imagej_metadata["spacing"] == 2.0 and tif.imagej_metadata["unit"] == "micron"
        assert tif.pages[0].tags["XResolution"].value == (2, 1)
    assert read_voxel_size(out) == read_voxel_size(tmp_path / "ij.tif")


def test_spacing_given_on_the_command_line_wins_and_is_written(tmp_path, capsys):
    imagej_stack(tmp_path / "ij.tif", two_balls())
    out = tmp_path / "labels.tif"
    assert main(["segment", str(tmp_path / "ij.tif"), "-o", str(out), "--spacing", "3,1,1", *FLAGS]) == 0
    assert stored_parameters(out)["spacing"] == [3.0, 1.0, 1.0]
    assert read_voxel_size(out).spacing(3) == (3.0, 1.0, 1.0)
    out2 = tmp_path / "planes.tif"  # a stack of planes: the x/y size is used, the z step still written
    assert main(["segment", str(tmp_path / "ij.tif"), "-o", str(out2), "--spatial-ndim", "2", *FLAGS]) == 0
    assert stored_parameters(out2)["spacing"] == [0.5, 0.5] and read_voxel_size(out2).has_z


def test_an_output_without_a_voxel_size_is_written_as_before(tmp_path):
    labels = np.arange(12, dtype=np.int32).reshape(3, 4)
    write_labels(tmp_path / "l.tif", labels, {"n_clusters": 4})
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        assert json.loads(tif.pages[0].description) == {"n_clusters": 4} and tif.series[0].dtype == np.int32
    many = np.full((3, 4), 70_000, np.int32)  # beyond 16 bits: a 32-bit TIFF with resolution tags
    write_labels(tmp_path / "m.tif", many, {"n_clusters": 4}, voxel_size=VoxelSize({"Y": 0.5, "X": 0.5}, MICROMETRE))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "m.tif"), many)
    assert stored_parameters(tmp_path / "m.tif") == {"n_clusters": 4}
    # Not an ImageJ file: the voxel size is in the JSON shape description (and x/y in per-centimetre tags).
    assert read_voxel_size(tmp_path / "m.tif") == VoxelSize({"Y": 0.5, "X": 0.5}, MICROMETRE)
    with tifffile.TiffFile(tmp_path / "m.tif") as tif:
        assert tif.pages[0].tags["ResolutionUnit"].value == 3 and tif.pages[0].tags["XResolution"].value == (20000, 1)


@pytest.mark.parametrize(
    ("shape", "sizes", "top", "axes"),
    [
        ((2, 6, 8, 9), {"Y": 0.5, "X": 0.5}, 100, "TZYX"),  # frames of a (t, z) series, planes segmented
        ((3, 4, 8, 9), {"Y": 0.5, "X": 0.5}, 100, "TZYX"),  # a leading axis of 3 is not colour
        ((2, 6, 8, 9), {"Z": 2.0, "Y": 0.5, "X": 0.5}, 100, "TZYX"),  # a series of volumes
        ((2, 3, 6, 8, 9), {"Z": 2.0, "Y": 0.5, "X": 0.5}, 100, "TQZYX"),  # more than ImageJ can name
        ((2, 6, 8, 9), {"Y": 0.5, "X": 0.5}, 70_000, "TQYX"),  # beyond 16 bits
        ((2, 6, 8, 9), None, 100, "QQYX"),  # no voxel size: no axis named wrongly
        ((6, 8, 9), None, 100, "QYX"),  # a volume or a series: not said
    ],
)
def test_labels_with_several_leading_axes_read_back_with_their_shape_and_voxel_size(tmp_path, shape, sizes, top, axes):
    # Issue 17: labels of more than one leading axis with a voxel size were written as a plain
    # stack of pages: they read back as (12, y, x) without their voxel size.
    labels = (np.arange(np.prod(shape)).reshape(shape) % top).astype(np.int32)
    labels.flat[0] = top - 1
    voxel = None if sizes is None else VoxelSize(sizes, MICROMETRE, "ImageJ")
    write_labels(tmp_path / "l.tif", labels, {"n_clusters": 4}, voxel_size=voxel)
    back = tifffile.imread(tmp_path / "l.tif")
    assert back.shape == shape
    np.testing.assert_array_equal(back, labels)
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        assert tif.series[0].axes == axes
    assert stored_parameters(tmp_path / "l.tif") == {"n_clusters": 4}
    if voxel is None:
        assert read_voxel_size(tmp_path / "l.tif") is None
    else:
        assert read_voxel_size(tmp_path / "l.tif").sizes == sizes


def test_batch_reads_each_files_voxel_size(tmp_path, capsys):
    pytest.importorskip("distributed")
    image = two_balls()
    imagej_stack(tmp_path / "a.tif", image)
    imagej_stack(tmp_path / "b.tif", image, z=4.0, xy=1.0)
    out = tmp_path / "out"
    flags = [*FLAGS, "--spatial-ndim", "3", "--no-progress", "--workers", "1"]
    assert main(["batch", str(tmp_path / "*.tif"), "--out", str(out), *flags]) == 0
    assert stored_parameters(out / "a_labels.tif")["spacing"] == [2.0, 0.5, 0.5]
    assert stored_parameters(out / "b_labels.tif")["spacing"] == [4.0, 1.0, 1.0]
    assert read_voxel_size(out / "b_labels.tif").spacing(3) == (4.0, 1.0, 1.0)
    assert main(["batch", str(tmp_path / "*.tif"), "--out", str(out), *flags]) == 0  # same content, same spacing
    assert "0 written, 2 skipped" in capsys.readouterr().out
