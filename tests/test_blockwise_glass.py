"""Glass blocks found on a coarse level of an OME-Zarr are not read at full resolution; results unchanged."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")
zarr = pytest.importorskip("zarr")

from conftest import read_labels, same_objects  # noqa: E402

from napari_spectral_seg import segment, touching_blobs  # noqa: E402
from napari_spectral_seg.blockwise import segment_blockwise  # noqa: E402

FIXED = dict(threshold=0.4, n_clusters="auto", min_size=20, random_state=0, polarity="bright", background="flat")


def write_ome(path, image):
    from ome_zarr.writer import write_image

    write_image(
        image,
        zarr.open_group(str(path), mode="w"),
        axes="yx",
        scale_factors=(2, 4),
        storage_options={"chunks": (64, 64)},
    )
    return path


@pytest.fixture(scope="module")
def blobs():
    image, _ = touching_blobs((160, 160), 40, seed=5)
    return image.astype(np.float32)


def test_glass_blocks_are_not_read_and_the_labels_stay_those_of_segment(tmp_path, client, blobs, monkeypatch):
    from napari_spectral_seg.blockwise import decide

    slide = np.zeros((512, 512), np.float32)
    slide[176:336, 176:336] = blobs  # tissue in the middle, glass (0) around it
    source = write_ome(tmp_path / "slide.zarr", slide)
    log = tmp_path / "full-resolution-reads.txt"
    original = decide.block_range

    def recording(source, box, *args):
        if getattr(source, "level", 0) == 0:
            with open(log, "a") as handle:  # the task runs on a copy of this function
                handle.write(f"{box}\n")
        return original(source, box, *args)

    monkeypatch.setattr(decide, "block_range", recording)
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=64, client=client, sample_pixels=10**6, **FIXED
    )
    glass = summary["decisions"]["glass"]
    assert glass["level"] == 1 and glass["factors"] == [2, 2] and glass["blocks"] >= 30
    assert (
        len(log.read_text().splitlines()) == 64 - glass["blocks"]
    )  # the range pass read only the other blocks at full resolution
    expected = segment(slide, **FIXED)
    assert expected.max() > 10
    assert same_objects(read_labels(tmp_path / "out.zarr"), expected)
    assert summary["parameters"]["edge_background"] == pytest.approx(0.0)


def test_an_image_with_foreground_in_every_block_has_no_glass_and_the_same_labels(tmp_path, client, blobs):
    image = np.tile(blobs, (2, 2))
    summary = segment_blockwise(
        write_ome(tmp_path / "dense.zarr", image),
        tmp_path / "out.zarr",
        block_size=64,
        client=client,
        sample_pixels=10**6,
        **FIXED,
    )
    assert summary["decisions"]["glass"]["blocks"] == 0
    assert same_objects(read_labels(tmp_path / "out.zarr"), segment(image, **FIXED))


def test_no_glass_search_where_the_threshold_or_the_correction_is_decided_from_the_image(tmp_path, client, blobs):
    slide = np.zeros((256, 256), np.float32)
    slide[48:208, 48:208] = blobs
    source = write_ome(tmp_path / "slide.zarr", slide)
    for changed in (dict(threshold="otsu"), dict(polarity="auto"), dict(background="auto")):
        output = tmp_path / f"out-{len(list(tmp_path.iterdir()))}.zarr"
        summary = segment_blockwise(source, output, block_size=64, client=client, **dict(FIXED, **changed))
        assert summary["decisions"]["glass"] is None, changed
