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
from napari_spectral_seg.core import iter_segment, run_to_end  # noqa: E402

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


def run_ome(tmp_path, client, image, name, **params):
    """``image`` written as an OME-Zarr ``name`` and segmented blockwise (blocks of 64) into ``out.zarr``."""
    return segment_blockwise(
        write_ome(tmp_path / name, image),
        tmp_path / "out.zarr",
        block_size=64,
        client=client,
        sample_pixels=10**6,
        **params,
    )


@pytest.fixture(scope="module")
def blobs():
    image, _ = touching_blobs((160, 160), 40, seed=5)
    return image.astype(np.float32)


def log_reads(monkeypatch, module, name, log, counted):
    """Replace ``module.name`` by a copy that appends each box it reads from a ``counted`` source to ``log``.

    A file, not a list: the tasks run on a pickled copy of the function.
    """
    original = getattr(module, name)

    def recording(source, box, *args):
        if counted(source):
            with open(log, "a") as handle:
                handle.write(f"{box}\n")
        return original(source, box, *args)

    monkeypatch.setattr(module, name, recording)


def test_glass_blocks_are_not_read_and_the_labels_stay_those_of_segment(tmp_path, client, blobs, monkeypatch):
    from napari_spectral_seg.blockwise import decide

    slide = np.zeros((512, 512), np.float32)
    slide[176:336, 176:336] = blobs  # tissue in the middle, glass (0) around it
    source = write_ome(tmp_path / "slide.zarr", slide)
    log = tmp_path / "full-resolution-reads.txt"
    log_reads(monkeypatch, decide, "block_range", log, lambda source: getattr(source, "level", 0) == 0)
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
    summary = run_ome(tmp_path, client, image, "dense.zarr", **FIXED)
    assert summary["decisions"]["glass"]["blocks"] == 0
    assert same_objects(read_labels(tmp_path / "out.zarr"), segment(image, **FIXED))


def test_no_glass_search_with_otsu_or_a_subtracted_background(tmp_path, client, blobs):
    ramp = np.linspace(0.0, 0.6, 256, dtype=np.float32)[None, :] * np.ones((256, 1), np.float32)
    slide = ramp.copy()
    slide[48:208, 48:208] += blobs
    source = write_ome(tmp_path / "slide.zarr", slide)
    for changed in (dict(threshold="otsu"), dict(background="auto")):
        output = tmp_path / f"out-{len(list(tmp_path.iterdir()))}.zarr"
        summary = segment_blockwise(source, output, block_size=64, client=client, **dict(FIXED, **changed))
        assert summary["decisions"]["glass"] is None, changed
    assert summary["parameters"]["background_used"] == "subtracted"


def test_dark_objects_on_glass_decided_auto_skip_glass_and_equal_segment(tmp_path, client, blobs):
    # Brightfield-like: dark nuclei on bright glass (exactly 1.0); polarity "auto" finds them dark.
    slide = np.ones((512, 512), np.float32)
    slide[176:336, 176:336] = 1.0 - blobs
    params = dict(FIXED, polarity="auto")
    summary = run_ome(tmp_path, client, slide, "slide.zarr", **params)
    assert summary["parameters"]["polarity_used"] == "dark"
    assert summary["decisions"]["glass"]["blocks"] >= 30
    expected = segment(slide, **params)
    assert expected.max() > 10
    assert same_objects(read_labels(tmp_path / "out.zarr"), expected)


def test_with_otsu_blocks_of_one_value_are_not_read_again_and_the_labels_stay_the_same(
    tmp_path, client, blobs, monkeypatch
):
    from napari_spectral_seg.blockwise import decide
    from napari_spectral_seg.blockwise.passes import ConstantSource, ImagePasses

    slide = np.zeros((384, 384), np.float32)
    slide[112:272, 112:272] = blobs
    source = write_ome(tmp_path / "slide.zarr", slide)
    params = dict(FIXED, threshold="otsu", sigma="auto", min_size="auto")
    log = tmp_path / "reads.txt"
    log_reads(monkeypatch, decide, "block_histogram", log, lambda source: not isinstance(source, ConstantSource))
    skipped = segment_blockwise(
        source, tmp_path / "a.zarr", block_size=64, client=client, sample_pixels=10**6, **params
    )
    n_constant = skipped["decisions"]["constant_blocks"]
    assert n_constant >= 10 and len(log.read_text().splitlines()) == 36 - n_constant
    monkeypatch.setattr(ImagePasses, "note_ranges", lambda self, ranges: None)  # every block read in every pass
    read = segment_blockwise(source, tmp_path / "b.zarr", block_size=64, client=client, sample_pixels=10**6, **params)
    assert read["decisions"]["constant_blocks"] == 0
    for key in ("threshold_used", "edge_background", "foreground_contrast", "object_size"):
        assert skipped["parameters"].get(key) == read["parameters"].get(key), key
    assert np.array_equal(read_labels(tmp_path / "a.zarr"), read_labels(tmp_path / "b.zarr"))
    assert same_objects(read_labels(tmp_path / "a.zarr"), segment(slide, **params))


def test_a_given_low_threshold_keeps_dim_objects_on_glass_blocks(tmp_path, client, blobs):
    # A block whose pixels stay below the threshold but reach a given low threshold is not glass,
    # and its region, with no pixel above the threshold, is still searched for dim objects: the
    # dim objects the search finds there in memory are found blockwise too.
    slide = np.zeros((512, 512), np.float32)
    slide[176:336, 176:336] = blobs
    yy, xx = np.mgrid[:512, :512]
    for cy, cx in ((60, 60), (450, 420)):  # dim nuclei far out on the glass
        slide[(yy - cy) ** 2 + (xx - cx) ** 2 < 100] = 0.15  # below the glass cut of the threshold alone
    params = dict(FIXED, low_threshold=0.1)
    result = run_to_end(iter_segment(slide, **params))
    expected = result.labels
    assert expected[60, 60] > 0 and expected[450, 420] > 0  # found in memory
    summary = run_ome(tmp_path, client, slide, "slide.zarr", **params)
    assert summary["decisions"]["glass"]["blocks"] >= 30
    found = read_labels(tmp_path / "out.zarr")
    assert found[60, 60] > 0 and found[450, 420] > 0
    assert same_objects(found, expected)
    assert summary["parameters"]["dim_objects"] == result.parameters["dim_objects"]
    assert summary["parameters"]["low_threshold_used"] == 0.1


def test_glass_darker_at_full_resolution_than_its_coarse_level_keeps_the_dim_search_exact(tmp_path, client):
    # Dead pixels (0) on noisy glass that the coarse level does not show (made before them): the
    # smoothed full-resolution glass reaches below every value the range pass sees (tissue blocks,
    # coarse stand-ins), yet the dim search's medians must count every pixel, as in memory.
    from ome_zarr.writer import write_multiscale
    from scipy.ndimage import gaussian_filter

    from napari_spectral_seg.blockwise.dim import block_decided
    from napari_spectral_seg.core.dim import dim_search
    from napari_spectral_seg.core.params import SegmentationParams
    from napari_spectral_seg.core.smooth import smooth_image

    rng = np.random.default_rng(3)
    slide = (0.05 + 0.01 * rng.standard_normal((512, 512))).astype(np.float32)
    yy, xx = np.mgrid[:512, :512]
    for cy, cx in rng.integers(150, 362, (9, 2)):  # small bright nuclei in the middle
        slide[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = 1.0
    slide[(yy - 60) ** 2 + (xx - 60) ** 2 < 100] = 0.15  # a dim nucleus out on the glass
    coarse = gaussian_filter(slide, 1.0)[::2, ::2]
    glass = np.ones((256, 256), bool)
    glass[60:196, 60:196] = False
    slide[np.kron((rng.random((256, 256)) < 0.02) & glass, np.ones((2, 2), bool))] = 0.0
    write_multiscale([slide, coarse], zarr.open_group(str(tmp_path / "slide.zarr"), mode="w"), axes="yx")
    params = dict(FIXED, low_threshold=0.1, sigma="auto")
    result = run_to_end(iter_segment(slide, **params))
    summary = segment_blockwise(
        tmp_path / "slide.zarr", tmp_path / "out.zarr", block_size=64, client=client, sample_pixels=10**6, **params
    )
    assert summary["decisions"]["glass"]["blocks"] >= 30
    smoothed_slide = smooth_image(slide.astype(np.float64), ("scalar", result.parameters["sigma_used"]))
    assert smoothed_slide.min() < summary["decisions"]["range"][0]  # below the range pass's minimum
    decided = summary["decisions"]["dim"]
    _, background, deviation = dim_search(SegmentationParams(**params), result.parameters, smoothed_slide)
    assert decided["deviation"] == pytest.approx(deviation, rel=1e-9)
    whole = block_decided(decided, ((0, 512), (0, 512)))
    assert np.allclose(whole.background, background, rtol=0, atol=1e-9)
    assert summary["parameters"]["low_threshold_used"] == result.parameters["low_threshold_used"] == 0.1
    assert same_objects(read_labels(tmp_path / "out.zarr"), result.labels)
