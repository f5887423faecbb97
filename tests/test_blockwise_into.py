"""Blockwise labels written into the input's own OME-Zarr (labels/NAME beside the image), 0.5 and 0.4."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")
zarr = pytest.importorskip("zarr")

from conftest import same_objects  # noqa: E402

from napari_spectral_seg import segment, touching_blobs  # noqa: E402
from napari_spectral_seg.blockwise import BlockwiseError, segment_blockwise  # noqa: E402

PARAMS = dict(threshold="otsu", n_clusters="auto", random_state=0, min_size=5)


def write_ome_image(path, image, zarr_format=3):
    """An OME-Zarr image with two levels, 0.5 um pixels (zarr 3: OME-Zarr 0.5; zarr 2: 0.4)."""
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    write_image(
        image,
        group,
        axes="yx",
        axes_units={"y": "micrometer", "x": "micrometer"},
        scale={"y": 0.5, "x": 0.5},
        scale_factors=(2,),
        storage_options={"chunks": (64, 64)},
        **({"fmt": FormatV04()} if zarr_format == 2 else {}),
    )
    return path


def image_files(path: Path) -> dict:
    """Every file of the store outside labels/, with its content's hash."""
    return {
        str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(path.rglob("*"))
        if f.is_file() and f.relative_to(path).parts[0] != "labels"
    }


def labels_list(path: Path) -> list:
    from ome_zarr.writer import get_metadata

    return get_metadata(zarr.open_group(str(path / "labels"), mode="r")).get("labels", [])


@pytest.fixture(scope="module")
def blobs():
    image, _ = touching_blobs((160, 160), 40, seed=5)
    return image.astype(np.float32)


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_labels_go_beside_the_image_and_napari_ome_zarr_reads_both(tmp_path, client, blobs, zarr_format):
    reader = pytest.importorskip("napari_ome_zarr._reader")
    image_path = write_ome_image(tmp_path / "image.zarr", blobs, zarr_format)
    before = image_files(image_path)
    summary = segment_blockwise(
        image_path, image_path, name="nuclei", block_size=64, client=client, sample_pixels=10**6, **PARAMS
    )
    assert summary["labels"] == str(image_path.resolve() / "labels" / "nuclei")
    assert image_files(image_path) == before  # the image's arrays and metadata, byte for byte
    assert labels_list(image_path) == ["nuclei"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial store left
    labels = zarr.open_group(str(image_path / "labels" / "nuclei"), mode="r")
    assert labels.metadata.zarr_format == zarr_format
    assert labels.attrs["spectral_seg"]["threshold_used"] > 0
    layers = reader.napari_get_reader(str(image_path))(str(image_path))
    kinds = [kind for _, _, kind in layers]
    assert kinds.count("image") == 1 and kinds.count("labels") == 1
    (data, kwargs, _) = next(layer for layer in layers if layer[2] == "labels")
    np.testing.assert_allclose(kwargs["scale"], [0.5, 0.5])
    found = np.asarray(data[0])
    assert same_objects(found, segment(blobs, **dict(PARAMS, spacing=(0.5, 0.5))))


def test_other_labels_are_kept_a_name_is_not_replaced_without_overwrite(tmp_path, client, blobs):
    image_path = write_ome_image(tmp_path / "image.zarr", blobs)
    segment_blockwise(image_path, image_path, name="first", block_size=64, client=client, **PARAMS)
    first = (image_path / "labels" / "first" / "s0").resolve()
    first_files = {str(f): f.read_bytes() for f in first.rglob("*") if f.is_file()}
    before = image_files(image_path)
    segment_blockwise(image_path, image_path, name="second", block_size=64, client=client, **PARAMS)
    assert labels_list(image_path) == ["first", "second"]
    assert {str(f): f.read_bytes() for f in first.rglob("*") if f.is_file()} == first_files
    with pytest.raises(
        BlockwiseError, match=r"labels/second exists \(labels napari-spectral-seg wrote\); pass --overwrite"
    ) as refused:
        segment_blockwise(image_path, image_path, name="second", block_size=64, client=client, **PARAMS)
    assert len(str(refused.value).splitlines()) == 1
    summary = segment_blockwise(
        image_path, image_path, name="second", block_size=64, client=client, overwrite=True, **dict(PARAMS, min_size=50)
    )
    assert labels_list(image_path) == ["first", "second"]  # replaced, listed once
    assert zarr.open_group(summary["labels"], mode="r").attrs["spectral_seg"]["min_size"] == 50
    assert image_files(image_path) == before
    assert not (image_path / "labels" / ".second.old").exists()


def test_another_programs_labels_image_of_that_name_is_named_as_theirs_with_the_choices(tmp_path, client, blobs):
    # An existing labels/NAME of another program got only "exists; pass --overwrite".
    from ome_zarr.writer import write_labels

    image_path = write_ome_image(tmp_path / "image.zarr", blobs)
    theirs = np.zeros(blobs.shape, np.int32)
    theirs[:10, :10] = 7
    write_labels(theirs, zarr.open_group(str(image_path), mode="r+"), name="nuclei", axes="yx")
    labels_files = {str(f): f.read_bytes() for f in (image_path / "labels").rglob("*") if f.is_file()}
    with pytest.raises(BlockwiseError) as refused:
        segment_blockwise(image_path, image_path, name="nuclei", block_size=64, client=client, **PARAMS)
    message = str(refused.value)
    assert "labels/nuclei exists (not written by napari-spectral-seg)" in message
    assert "--overwrite" in message and "--labels-name nuclei_2" in message and len(message.splitlines()) == 1
    assert {str(f): f.read_bytes() for f in (image_path / "labels").rglob("*") if f.is_file()} == labels_files


def test_an_interrupted_run_into_the_input_resumes_and_leaves_the_input_alone(tmp_path, client, blobs):
    image_path = write_ome_image(tmp_path / "image.zarr", blobs)
    before = image_files(image_path)

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segment_blockwise(image_path, image_path, name="n", block_size=64, client=client, progress=stop_after_two)
    assert not (image_path / "labels").exists() and image_files(image_path) == before
    assert (tmp_path / ".image.zarr.labels-n.partial" / "_blockwise" / "state.json").exists()
    summary = segment_blockwise(image_path, image_path, name="n", block_size=64, client=client)
    assert summary["resumed_blocks"] >= 2 and labels_list(image_path) == ["n"]
    assert not (tmp_path / ".image.zarr.labels-n.partial").exists()


def test_into_the_input_is_refused_for_a_plain_array_and_a_bad_name(tmp_path, client, blobs):
    plain = tmp_path / "plain.zarr"
    zarr.create_array(str(plain), shape=blobs.shape, chunks=(64, 64), dtype="f4")[...] = blobs
    with pytest.raises(BlockwiseError, match="only for an OME-Zarr image"):
        segment_blockwise(plain, plain, block_size=64, client=client)
    image_path = write_ome_image(tmp_path / "image.zarr", blobs)
    with pytest.raises(BlockwiseError, match="--labels-name"):
        segment_blockwise(image_path, image_path, name="../escape", block_size=64, client=client)


def test_command_line_writes_into_the_input(tmp_path, blobs):
    image_path = write_ome_image(tmp_path / "image.zarr", blobs)
    command = [sys.executable, "-m", "napari_spectral_seg.cli", "segment", str(image_path), "-o", str(image_path)]
    flags = ["--block-size", "64", "--workers", "1", "--labels-name", "cells", "--min-size", "5"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.run(command + flags, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "labels/cells: " in proc.stdout and labels_list(image_path) == ["cells"]
    again = subprocess.run(command + flags, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 2 and "--overwrite" in again.stderr and len(again.stderr.strip().splitlines()) == 1
