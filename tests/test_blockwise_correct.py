"""Dark objects and an uneven background, blockwise: the labels and the recorded decisions of segment()."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")
zarr = pytest.importorskip("zarr")

from conftest import read_labels, same_objects, write_zarr  # noqa: E402

from napari_spectral_seg import touching_blobs  # noqa: E402
from napari_spectral_seg.blockwise import segment_blockwise  # noqa: E402
from napari_spectral_seg.core.pipeline import iter_segment  # noqa: E402
from napari_spectral_seg.core.progress import run_to_end  # noqa: E402

AUTO = dict(threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto", random_state=0)
DECIDED = ("polarity_used", "background_used", "background_range", "threshold_used", "sigma_used", "min_size_used")


def in_memory(image, **params):
    result = run_to_end(iter_segment(image, **params))
    return result.labels, result.parameters


def check_equal(tmp_path, client, image, block_size, **params):
    source = write_zarr(tmp_path / "in.zarr", image, chunks=min(32, block_size))
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=block_size, client=client, sample_pixels=10**6, **params
    )
    expected, parameters = in_memory(image, **params)
    found = read_labels(tmp_path / "out.zarr")
    assert expected.max() > 3
    assert same_objects(found, expected)
    recorded = zarr.open_group(str(tmp_path / "out.zarr/labels/spectral"), mode="r").attrs["spectral_seg"]
    for key in DECIDED:
        assert recorded[key] == pytest.approx(parameters[key]), key
    assert recorded["polarity"] == params.get("polarity", "auto")
    return summary, parameters


@pytest.fixture(scope="module")
def blobs():
    image, _ = touching_blobs((160, 160), 40, seed=5)
    return image.astype(np.float32)


@pytest.mark.parametrize("polarity", ["dark", "auto"])
def test_dark_objects_2d_equal_in_memory(tmp_path, client, blobs, polarity):
    image = (1.0 - blobs).astype(np.float32)
    _, parameters = check_equal(tmp_path, client, image, 64, **dict(AUTO, polarity=polarity, background="flat"))
    assert parameters["polarity_used"] == "dark"


def test_bright_objects_are_found_bright_by_auto(tmp_path, client, blobs):
    summary, parameters = check_equal(tmp_path, client, blobs, 64, **dict(AUTO, polarity="auto", background="flat"))
    assert parameters["polarity_used"] == "bright" and summary["decisions"]["correction"]["view_stride"] == 1


@pytest.mark.parametrize("dark", [False, True])
def test_an_uneven_background_2d_is_subtracted_as_in_memory(tmp_path, client, blobs, dark):
    yy, xx = np.mgrid[:160, :160]
    image = ((1.0 - blobs) if dark else blobs) + 0.8 * (yy if dark else xx) / 160.0
    image = image.astype(np.float32)
    summary, parameters = check_equal(tmp_path, client, image, 64, **dict(AUTO, polarity="auto", background="auto"))
    assert parameters["background_used"] == "subtracted"
    surface = summary["decisions"]["correction"]["surface"]
    assert len(surface["counts"]) == 2 and np.isfinite(surface["offset"])


def test_a_flat_background_is_left_alone_with_background_auto(tmp_path, client, blobs):
    _, parameters = check_equal(tmp_path, client, blobs, 64, **dict(AUTO, background="auto"))
    assert parameters["background_used"] == "flat" and parameters["background_range"] > 0


def test_3d_with_spacing_dark_and_uneven_equals_in_memory(tmp_path, client):
    image, _ = touching_blobs((20, 72, 72), 12, seed=2)
    zz, yy, xx = np.mgrid[:20, :72, :72]
    image = (1.0 - image + 0.6 * xx / 72.0).astype(np.float32)
    params = dict(AUTO, spacing=(2.0, 1.0, 1.0), polarity="auto", background="auto")
    _, parameters = check_equal(tmp_path, client, image, 36, **params)
    assert parameters["polarity_used"] == "dark" and parameters["background_used"] == "subtracted"


def test_the_blockwise_surface_is_the_in_memory_surface_and_its_minimum_exact(tmp_path, blobs):
    import scipy.ndimage as ndi

    from napari_spectral_seg.blockwise.corrected import (
        BackgroundSurface,
        CorrectedSource,
        _extreme_pixels,
        cell_boxes,
        cell_percentiles,
        surface_stats,
    )
    from napari_spectral_seg.blockwise.source import open_source
    from napari_spectral_seg.blockwise.surface import cell_size
    from napari_spectral_seg.core.background import estimate_background

    yy, xx = np.mgrid[:150, :170]
    image = (blobs[:150, :160].repeat(2, axis=1)[:, :170] + 0.5 * xx / 170.0 + 0.2 * np.sin(yy / 30.0)).astype(
        np.float32
    )
    source = CorrectedSource(open_source(write_zarr(tmp_path / "in.zarr", image)))  # read as float64
    unit = np.ones(2)
    radius = 3.7
    expected = estimate_background(image.astype(np.float64), radius, unit)
    cell = tuple(int(c) for c in cell_size(image.shape, radius, unit))
    counts = [-(-n // c) for n, c in zip(image.shape, cell)]
    grid = np.empty(counts)
    for cells in cell_boxes(counts, (3, 2)):  # tasks of a few cells, cut anywhere
        grid[tuple(slice(a, b) for a, b in cells)] = cell_percentiles(source, cells, cell, image.shape)
    np.save(tmp_path / "grid.npy", ndi.gaussian_filter(grid, 1.0, mode="nearest"))
    surface = BackgroundSurface(str(tmp_path / "grid.npy"), cell, tuple(counts))
    np.testing.assert_array_equal(surface.values(((0, 150), (0, 170))), expected)
    np.testing.assert_array_equal(surface.values(((40, 90), (17, 101))), expected[40:90, 17:101])
    spread, minimum = surface_stats(surface, image.shape, 1)
    assert spread == np.percentile(expected, 95) - np.percentile(expected, 5) and minimum == expected.min()
    # A strided view: the spread is close, the minimum (from the stretches' end pixels) still exact.
    strided_spread, strided_minimum = surface_stats(surface, image.shape, 7)
    assert strided_minimum == expected.min() and abs(strided_spread - spread) < 0.05 * spread
    assert len(_extreme_pixels(170, cell[1], counts[1])) < 170


def test_a_large_image_decides_polarity_on_a_strided_view(tmp_path, client, blobs):
    image = np.tile(1.0 - blobs, (2, 2)).astype(np.float32)  # 320 x 320, a sample of 160 x 160 pixels
    source = write_zarr(tmp_path / "in.zarr", image)
    params = dict(AUTO, polarity="auto", background="auto")
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=80, client=client, sample_pixels=160 * 160, **params
    )
    correction = summary["decisions"]["correction"]
    assert correction["view_stride"] == 2 and summary["parameters"]["polarity_used"] == "dark"
    expected, parameters = in_memory(image, **params)
    assert parameters["polarity_used"] == "dark"
    assert summary["parameters"]["background_used"] == parameters["background_used"] == "flat"
    found = read_labels(tmp_path / "out.zarr")
    assert abs(int(found.max()) - int(expected.max())) <= 0.1 * expected.max()


def test_view_stride_keeps_the_view_within_the_sample():
    from napari_spectral_seg.blockwise.correction import view_stride

    assert view_stride((160, 160), 10**6) == 1
    assert view_stride((320, 320), 160 * 160) == 2
    assert view_stride((32768, 32768), 4 * 1024**2) == 16
    k = view_stride((1000, 3000, 77), 10**5)
    assert (
        np.prod([-(-n // k) for n in (1000, 3000, 77)]) <= 10**5 < np.prod([-(-n // (k - 1)) for n in (1000, 3000, 77)])
    )


def test_an_interrupted_run_resumes_with_the_decided_correction(tmp_path, client, blobs):
    yy, xx = np.mgrid[:160, :160]
    image = (1.0 - blobs + 0.8 * xx / 160.0).astype(np.float32)
    source = write_zarr(tmp_path / "in.zarr", image)
    params = dict(AUTO, polarity="auto", background="auto")

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    output = tmp_path / "out.zarr"
    options = dict(block_size=64, client=client, sample_pixels=10**6)
    with pytest.raises(KeyboardInterrupt):
        segment_blockwise(source, output, progress=stop_after_two, **options, **params)
    summary = segment_blockwise(source, output, **options, **params)
    assert summary["resumed_blocks"] >= 2
    assert summary["parameters"]["background_used"] == "subtracted"
    assert same_objects(read_labels(output), in_memory(image, **params)[0])
