"""The dim-object search blockwise (low_threshold): the labels, object for object, and the record of segment()."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")
zarr = pytest.importorskip("zarr")

from conftest import interrupted_state, read_labels, same_objects, write_zarr  # noqa: E402

from napari_spectral_seg.blockwise import segment_blockwise  # noqa: E402
from napari_spectral_seg.core.pipeline import iter_segment  # noqa: E402
from napari_spectral_seg.core.progress import run_to_end  # noqa: E402
from napari_spectral_seg.data import textured_nuclei  # noqa: E402

AUTO = dict(threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto", random_state=0)


def in_memory(image, **params):
    result = run_to_end(iter_segment(image, **params))
    return result.labels, result.parameters


def blockwise(tmp_path, client, image, block_size, **params):
    source = write_zarr(tmp_path / "in.zarr", image, chunks=32)
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=block_size, client=client, sample_pixels=10**7, **params
    )
    recorded = zarr.open_group(str(tmp_path / "out.zarr/labels/spectral"), mode="r").attrs["spectral_seg"]
    return read_labels(tmp_path / "out.zarr"), recorded, summary


def dim_only(with_dim: np.ndarray, without: np.ndarray) -> list:
    """Objects of ``with_dim`` wholly outside every object of ``without``: the dim objects the search added."""
    return [lab for lab in range(1, int(with_dim.max()) + 1) if not (without[with_dim == lab] > 0).any()]


def crosses_a_seam(labels: np.ndarray, lab: int, block_size: int) -> bool:
    where = np.nonzero(labels == lab)
    return any(len(np.unique(axis // block_size)) > 1 for axis in where)


def check_equal(tmp_path, client, image, block_size, **params):
    expected, parameters = in_memory(image, **params)
    found, recorded, summary = blockwise(tmp_path, client, image, block_size, **params)
    assert parameters["dim_objects"] > 0
    assert same_objects(found, expected)
    assert recorded["low_threshold_used"] == parameters["low_threshold_used"]
    assert recorded["dim_objects"] == parameters["dim_objects"]
    assert sum(s["dim_count"] for s in summary["block_summaries"].values()) == parameters["dim_objects"]
    return expected, parameters


@pytest.mark.parametrize("seed", [1, 2])
def test_dim_objects_2d_equal_in_memory_across_block_seams(tmp_path, client, seed):
    image, _ = textured_nuclei((384, 384), 40, seed=seed)
    expected, parameters = check_equal(tmp_path, client, image, 96, **AUTO)
    assert parameters["low_threshold"] == "auto" and parameters["low_threshold_used"] is not None
    # The search adds objects, and some of them lie across a seam between blocks (whole and once).
    without, _ = in_memory(image, **dict(AUTO, low_threshold=None))
    added = dim_only(expected, without)
    assert len(added) >= 3
    assert any(crosses_a_seam(expected, lab, 96) for lab in added)


def test_dim_objects_3d_with_spacing_equal_in_memory(tmp_path, client):
    params = dict(AUTO, spacing=(2.5, 1.0, 1.0))
    image, _ = textured_nuclei((20, 144, 144), 30, spacing=(2.5, 1.0, 1.0), seed=3)
    _, parameters = check_equal(tmp_path, client, image, 48, **params)
    assert parameters["dim_objects"] >= 3


def test_a_given_low_threshold_equals_in_memory(tmp_path, client):
    image, _ = textured_nuclei((384, 384), 40, seed=2)
    _, parameters = check_equal(tmp_path, client, image, 128, **dict(AUTO, low_threshold=116.0))
    assert parameters["low_threshold_used"] == 116.0


def test_a_dim_nucleus_in_a_block_with_nothing_above_the_threshold_is_found(tmp_path, client):
    # Nuclei in one corner, a lone dim nucleus far across a noisy empty field: the blocks around it
    # see no pixel above Otsu's threshold in their region, and still search below it.
    rng = np.random.default_rng(0)
    tissue, _ = textured_nuclei((192, 192), 24, gradient=(1.0, 1.0), seed=4)
    image = (100 + rng.poisson(15.0, (512, 512))).astype(np.float32)
    image[:192, :192] = tissue
    yy, xx = np.mgrid[:512, :512]
    image += 50.0 * np.exp(-((yy - 440) ** 2 + (xx - 440) ** 2) / 50.0)
    expected, parameters = check_equal(tmp_path, client, image, 128, **AUTO)
    lone = expected[440, 440]
    assert lone > 0 and lone in dim_only(expected, in_memory(image, **dict(AUTO, low_threshold=None))[0])
    # Nothing above the threshold in the quarter around it: no block region near it (an overlap
    # below 192 pixels) holds a pixel of the mask.
    assert image[192:, 192:].max() < parameters["threshold_used"]


def test_a_dim_object_whose_basin_reaches_a_cut_side_is_deferred_and_equals_in_memory(tmp_path, client):
    # A dim nucleus on a wide faint shelf: its basin (the shelf above the low threshold) reaches
    # 40 pixels out, the object (cut at its own edge level, set by the whole basin) about 11. With
    # an overlap of 16 the regions around it cut the basin but not the object: they must grow.
    image = a_dim_nucleus_on_a_wide_shelf()
    params = dict(SHELF, low_threshold=0.02)
    expected, parameters = in_memory(image, **params)
    lone = expected[136, 40]
    assert lone > 0 and parameters["dim_objects"] == 1
    rows, cols = np.nonzero(expected == lone)
    # Block 2_0's region at overlap 16 (rows 112-208, columns 0-80) holds the object clear of its
    # cut sides by more than the smoothing's and edges' reach, not its basin (rows 96-176).
    assert rows.min() - 112 > 7 and 80 - cols.max() > 7 and (image[96:112, 40] > 0.02).all()
    source = write_zarr(tmp_path / "in.zarr", image, chunks=32)
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=64, overlap=16, client=client, sample_pixels=10**7, **params
    )
    assert same_objects(read_labels(tmp_path / "out.zarr"), expected)
    assert summary["parameters"]["dim_objects"] == 1
    owner = summary["block_summaries"]["1_0"]  # the object's first pixel (row 125) lies in block 1_0
    assert owner["dim_count"] == 1 and owner["overlap"] > 16
    assert summary["basin_cut_blocks"] == [] and not owner["basin_cut"]  # grown until no basin was cut


def a_dim_nucleus_on_a_wide_shelf() -> np.ndarray:
    """A dim nucleus at (136, 40) on a faint shelf 40 pixels wide above 0.02, a bright object far off."""
    yy, xx = np.mgrid[:256, :256].astype(np.float64)
    d2 = (yy - 136) ** 2 + (xx - 40) ** 2
    image = 0.05 * np.exp(-d2 / 1800.0) + 0.3 * np.exp(-d2 / 50.0)
    image[(yy - 225) ** 2 + (xx - 225) ** 2 < 64] = 1.0  # a bright object: the mask is not empty
    return image.astype(np.float32)


SHELF = dict(threshold=0.4, n_clusters="auto", min_size=20, random_state=0, polarity="bright", background="flat")


def test_a_basin_still_cut_at_the_largest_overlap_is_kept_and_said(tmp_path, client):
    # Overlap 8 grows to 32 at most (blocks of 64): block 1_0's region (rows 32-160) never holds
    # the basin (rows 96-176); the object itself lies clear, so the block keeps it and says so.
    image = a_dim_nucleus_on_a_wide_shelf()
    params = dict(SHELF, low_threshold=0.02)
    expected, _ = in_memory(image, **params)
    source = write_zarr(tmp_path / "in.zarr", image, chunks=32)
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=64, overlap=8, client=client, sample_pixels=10**7, **params
    )
    owner = summary["block_summaries"]["1_0"]
    assert owner["basin_cut"] and owner["overlap"] == 32 and owner["dim_count"] == 1
    assert "1_0" in summary["basin_cut_blocks"]
    assert all(summary["block_summaries"][key]["basin_cut"] for key in summary["basin_cut_blocks"])
    found = read_labels(tmp_path / "out.zarr")
    assert found[136, 40] > 0 and expected[136, 40] > 0


def a_tail_beside_a_bright_object() -> np.ndarray:
    """A dim object: a long tail (rows 40-85) rising to a peak at row 110; a bright object beside its top end."""
    yy, xx = np.mgrid[:256, :256].astype(np.float64)
    y = yy[:, 0]
    rise = np.where(y <= 85, 0.18 + 0.02 * (y - 40) / 45, np.where(y <= 110, 0.2 + 0.19 * (y - 85) / 25, 0.0))
    fall = np.maximum(0.39 - 0.05 * (y - 110), 0.0)
    profile = np.where(y < 40, 0.0, np.where(y <= 110, rise, fall))
    image = np.maximum(0.02 + 0.02 * np.sin(xx / 3.0), profile[:, None] * np.exp(-((xx - 30) ** 2) / 18.0))
    image[(yy - 40) ** 2 + (xx - 36) ** 2 < 25] = 1.0
    return image.astype(np.float32)


def test_a_candidate_a_cut_side_makes_fail_to_stand_out_is_deferred_and_equals_in_memory(tmp_path, client):
    # In memory the object stands out of its saddle to the bright object by its peak (row 110). Block
    # 0_0 owns its first pixel (row 43); its region at overlap 16 (rows 0-80) cuts the peak off, and
    # there the tail alone does not stand out: it is dropped, and its basin must still defer the block.
    image = a_tail_beside_a_bright_object()
    params = dict(threshold=0.4, n_clusters="auto", min_size=20, random_state=0, polarity="bright", background="flat")
    params["low_threshold"] = 0.15
    expected, parameters = in_memory(image, **params)
    tail = expected[100, 30]
    assert parameters["dim_objects"] == 1 and tail > 0 and np.nonzero(expected == tail)[0].min() < 64
    source = write_zarr(tmp_path / "in.zarr", image, chunks=32)
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=64, overlap=16, client=client, sample_pixels=10**7, **params
    )
    assert same_objects(read_labels(tmp_path / "out.zarr"), expected)
    owner = summary["block_summaries"]["0_0"]
    assert owner["dim_count"] == 1 and owner["overlap"] > 16 and summary["basin_cut_blocks"] == []


def test_a_dropped_candidate_still_cut_at_the_largest_overlap_is_said_apart(tmp_path, client):
    # Overlap 8 grows to 32 at most (blocks of 64): block 0_0's region (rows 0-96) never holds the
    # peak (row 110), so its tail is dropped there. Nothing was kept with a basin cut: the run says
    # a dim object may be missing, not that a kept one may differ.
    image = a_tail_beside_a_bright_object()
    params = dict(threshold=0.4, n_clusters="auto", min_size=20, random_state=0, polarity="bright", background="flat")
    params["low_threshold"] = 0.15
    source = write_zarr(tmp_path / "in.zarr", image, chunks=32)
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=64, overlap=8, client=client, sample_pixels=10**7, **params
    )
    block = summary["block_summaries"]["0_0"]
    assert block["candidate_cut"] and block["overlap"] == 32 and block["dim_count"] == 0
    assert not block["basin_cut"] and "0_0" not in summary["basin_cut_blocks"]
    assert "0_0" in summary["candidate_cut_blocks"]


def test_the_notes_say_a_dim_object_may_be_missing_apart_from_a_kept_one_that_may_differ():
    from napari_spectral_seg.blockwise.notes import dim_cut_notes

    (missing,) = dim_cut_notes(dict(basin_cut_blocks=[], candidate_cut_blocks=["0_0"]), "a larger --block-size")
    assert missing.text.startswith("A dim object near a block side may be missing") and "0_0" in missing.text
    assert "kept" not in missing.text and "--block-size" in missing.text
    assert missing.status == "1 block(s) may miss a dim object"
    differ, missing = dim_cut_notes(dict(basin_cut_blocks=["1_0"], candidate_cut_blocks=["0_0"]))
    assert "kept dim object" in differ.text and "1_0" in differ.text and "0_0" not in differ.text
    assert "a larger block size avoids it" in differ.text
    assert dim_cut_notes(dict(basin_cut_blocks=[], candidate_cut_blocks=[])) == []


def test_no_search_records_none(tmp_path, client):
    image, _ = textured_nuclei((192, 192), 12, seed=1)
    params = dict(AUTO, low_threshold=None)
    expected, _ = in_memory(image, **params)
    found, recorded, summary = blockwise(tmp_path, client, image, 96, **params)
    assert same_objects(found, expected)
    assert recorded["low_threshold_used"] is None and "dim_objects" not in recorded
    assert summary["decisions"]["dim"] is None


def test_a_resume_state_without_the_dim_search_is_decided_again(tmp_path, client):
    import json

    image, _ = textured_nuclei((384, 384), 40, seed=1)
    expected, parameters = in_memory(image, **AUTO)
    source = write_zarr(tmp_path / "in.zarr", image, chunks=32)
    output = tmp_path / "out.zarr"
    state_path, state = interrupted_state(source, output, client, block_size=96, sample_pixels=10**7, **AUTO)
    del state["key"]["state_format"]  # as a version before the search blockwise wrote it
    state["decisions"].pop("dim")
    state_path.write_text(json.dumps(state))
    summary = segment_blockwise(source, output, block_size=96, client=client, sample_pixels=10**7, **AUTO)
    assert summary["parameters"]["low_threshold_used"] == parameters["low_threshold_used"]
    assert same_objects(read_labels(output), expected)
