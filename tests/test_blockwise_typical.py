"""Blockwise: auto mode's typical object size is measured on the whole image, as in memory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.ndimage as ndi

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")
zarr = pytest.importorskip("zarr")

from conftest import interrupted_state, read_labels, same_objects, write_zarr  # noqa: E402

from napari_spectral_seg import touching_blobs  # noqa: E402
from napari_spectral_seg.blockwise import segment_blockwise, typical  # noqa: E402
from napari_spectral_seg.core import iter_segment  # noqa: E402
from napari_spectral_seg.core.progress import run_to_end  # noqa: E402

AUTO = dict(threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto", random_state=0)


def in_memory(monkeypatch, image, **params):
    """``segment()``'s result and the typical size its auto mode took (recorded as the run takes it)."""
    from napari_spectral_seg.core.auto import recipe

    taken, measure = [], recipe._typical
    with monkeypatch.context() as patched:
        patched.setattr(recipe, "_typical", lambda *args: taken.append(measure(*args)) or taken[-1])
        result = run_to_end(iter_segment(image, **params))
    return result, taken[-1]


def _crossing(labels, block: int) -> int:
    """Objects lying across a block seam."""
    count = 0
    for where in ndi.find_objects(labels):
        count += any(s.start // block != (s.stop - 1) // block for s in where)
    return count


def test_the_typical_size_is_that_of_the_whole_image_with_objects_across_block_borders(tmp_path, client, monkeypatch):
    image = touching_blobs((192, 192), 60, seed=5)[0].astype(np.float32)
    # Read boxes far smaller than the image: most components need their owner to read farther.
    monkeypatch.setattr(typical, "START_REACH", 24)
    expected, size = in_memory(monkeypatch, image, **AUTO)
    summary = segment_blockwise(
        write_zarr(tmp_path / "in.zarr", image),
        tmp_path / "o.zarr",
        block_size=32,
        client=client,
        sample_pixels=10**6,
        **AUTO,
    )
    record = summary["decisions"]["typical"]
    assert summary["parameters"]["object_size"] == size > 0
    # Every component split once, by its owner; none missed.
    assert record["measured_on"] == "whole image" and record["missed_components"] == 0
    assert record["components"] == expected.n_components
    assert record["grown_blocks"] and _crossing(expected.labels, 32) > 10
    assert same_objects(read_labels(tmp_path / "o.zarr"), expected.labels)
    assert "typical_box" not in summary["decisions"] and "typical_tiles" not in summary["decisions"]


def test_the_typical_size_in_3d_with_spacing_is_that_of_the_whole_image(tmp_path, client, monkeypatch):
    image = touching_blobs((24, 96, 96), 10, seed=2)[0].astype(np.float32)
    params = dict(AUTO, spacing=(2.0, 1.0, 1.0))
    monkeypatch.setattr(typical, "START_REACH", 16)
    expected, size = in_memory(monkeypatch, image, **params)
    source = write_zarr(tmp_path / "in.zarr", image, chunks=24)
    summary = segment_blockwise(
        source, tmp_path / "o.zarr", block_size=24, client=client, sample_pixels=10**6, **params
    )
    record = summary["decisions"]["typical"]
    assert summary["parameters"]["object_size"] == size > 0
    assert record["components"] == expected.n_components >= 4 and record["missed_components"] == 0
    assert record["grown_blocks"] and _crossing(expected.labels, 24) > 0
    assert same_objects(read_labels(tmp_path / "o.zarr"), expected.labels)


def test_a_component_larger_than_any_read_box_is_counted_as_missed(tmp_path, client, monkeypatch):
    yy, xx = np.mgrid[:128, :256]
    image = np.full(yy.shape, 0.1, np.float32)
    for cy, cx in [(20, 20), (20, 60), (100, 40), (100, 200), (60, 230)]:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 8**2] = 1.0
    discs = image.copy()
    image[60:68, 8:200] = 1.0  # a bar across six blocks, longer than the largest read box
    params = dict(threshold=0.5, n_clusters="auto", sigma=1.0, min_size=20, random_state=0)
    monkeypatch.setattr(typical, "START_REACH", 8)  # the largest reach: max(4 x 8, 32 / 2) = 32 px
    expected, _ = in_memory(monkeypatch, image, **params)
    _, discs_size = in_memory(monkeypatch, discs, **params)
    summary = segment_blockwise(
        write_zarr(tmp_path / "in.zarr", image),
        tmp_path / "o.zarr",
        block_size=32,
        client=client,
        sample_pixels=10**6,
        **params,
    )
    record = summary["decisions"]["typical"]
    assert record["largest_reach"] == 32
    # The bar's first pixel (60, 8) lies in block 1_0, which reads at most 32 px beyond its core.
    assert record["missed_components"] == 1 and record["missed_blocks"] == {"1_0": 1}
    assert record["grown_blocks"]["1_0"] == 32
    assert record["components"] == expected.n_components - 1
    # The bar's pieces are left out: the typical size is that of the discs alone.
    assert summary["parameters"]["object_size"] == discs_size
    attributes = zarr.open_group(str(tmp_path / "o.zarr/labels/spectral"), mode="r").attrs["spectral_seg"]
    assert attributes["decisions"]["typical"]["missed_components"] == 1


def test_a_resume_state_with_the_samples_typical_size_is_decided_afresh(tmp_path, client, monkeypatch):
    image = touching_blobs((160, 160), 40, seed=5)[0].astype(np.float32)
    source = write_zarr(tmp_path / "in.zarr", image)
    output = tmp_path / "out.zarr"
    state_path, state = interrupted_state(source, output, client, block_size=64, sample_pixels=10**6, **AUTO)
    # As the previous version wrote it: format 2, the typical size of a central sample in tiles.
    state["key"]["state_format"] = 2
    state["decisions"].pop("typical")
    state["decisions"].update(object_size=999.0, typical_box=[[0, 160], [0, 160]], typical_tiles=[])
    state_path.write_text(json.dumps(state))
    summary = segment_blockwise(source, output, block_size=64, client=client, sample_pixels=10**6, **AUTO)
    expected, size = in_memory(monkeypatch, image, **AUTO)
    assert summary["parameters"]["object_size"] == size != 999.0
    assert summary["decisions"]["typical"]["measured_on"] == "whole image"
    assert same_objects(read_labels(output), expected.labels)
