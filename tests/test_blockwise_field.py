"""Auto mode's empty/sparse-field rule blockwise: the same threshold, record and labels as ``segment()``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")
zarr = pytest.importorskip("zarr")

from conftest import read_labels, same_objects, write_zarr  # noqa: E402

from napari_spectral_seg import touching_blobs  # noqa: E402
from napari_spectral_seg.blockwise import segment_blockwise  # noqa: E402
from napari_spectral_seg.core import iter_segment  # noqa: E402
from napari_spectral_seg.core.progress import run_to_end  # noqa: E402
from napari_spectral_seg.core.result import EmptyMaskError  # noqa: E402

AUTO = dict(threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto", random_state=0)
RULE_KEYS = ("threshold_used", "threshold_rule", "foreground_contrast", "noise", "sigma_used", "min_size_used")


def _both(tmp_path, client, image, block_size, **params):
    """The in-memory result and the blockwise summary and labels (the sample: the whole image)."""
    params = dict(AUTO, **params)
    expected = run_to_end(iter_segment(image, **params))
    source = write_zarr(tmp_path / "in.zarr", image, chunks=block_size)
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=block_size, client=client, sample_pixels=10**7, **params
    )
    return expected, summary, read_labels(tmp_path / "out.zarr")


def _same_record(expected, summary):
    for key in RULE_KEYS:
        assert summary["parameters"].get(key) == expected.parameters.get(key), key


def test_a_sparse_field_2d_gets_the_noise_threshold_and_the_labels_of_segment(tmp_path, client):
    image, _ = touching_blobs((512, 512), 3, seed=2)
    expected, summary, found = _both(tmp_path, client, image.astype(np.float32), 128)
    assert expected.parameters["threshold_rule"] == "noise" and expected.labels.max() == 3
    _same_record(expected, summary)
    assert summary["decisions"]["field_rule"]["otsu_threshold"] < summary["parameters"]["threshold_used"]
    assert same_objects(found, expected.labels)
    # With the noise threshold only the blocks holding the nuclei are segmented.
    assert summary["skipped_blocks"] > 0


def test_a_sparse_field_3d_with_spacing_equals_segment(tmp_path, client):
    image, _ = touching_blobs((16, 160, 160), 1, radius_range=(4.0, 6.0), seed=0)
    expected, summary, found = _both(tmp_path, client, image.astype(np.float32), 64, spacing=(2.0, 1.0, 1.0))
    assert expected.parameters["threshold_rule"] == "noise" and expected.labels.max() >= 1
    _same_record(expected, summary)
    assert same_objects(found, expected.labels)


def test_a_clear_foreground_records_the_same_contrast_and_keeps_otsu(tmp_path, client):
    image, _ = touching_blobs((160, 160), 40, seed=5)
    expected, summary, found = _both(tmp_path, client, image.astype(np.float32), 64)
    assert "threshold_rule" not in expected.parameters and expected.parameters["foreground_contrast"] > 3
    _same_record(expected, summary)
    assert summary["decisions"]["field_rule"]["otsu_threshold"] == summary["parameters"]["threshold_used"]
    assert same_objects(found, expected.labels)


@pytest.mark.parametrize("shape, spacing", [((256, 256), None), ((16, 96, 96), (2.0, 1.0, 1.0))])
def test_an_empty_field_says_no_objects_and_leaves_nothing(tmp_path, client, shape, spacing):
    noise = np.random.default_rng(1).normal(100.0, 5.0, shape).astype(np.float32)
    with pytest.raises(EmptyMaskError) as in_memory:
        run_to_end(iter_segment(noise, **AUTO, spacing=spacing))
    source = write_zarr(tmp_path / "in.zarr", noise, chunks=64)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(EmptyMaskError) as blockwise:
        segment_blockwise(
            source, tmp_path / "out.zarr", block_size=64, client=client, sample_pixels=10**7, spacing=spacing, **AUTO
        )
    assert str(blockwise.value) == str(in_memory.value) and str(blockwise.value).startswith("no objects")
    assert sorted(os.listdir(tmp_path)) == before  # no output, no partial store


def test_an_empty_field_on_the_command_line_is_one_line_and_leaves_nothing(tmp_path):
    noise = np.random.default_rng(1).normal(100.0, 5.0, (256, 256)).astype(np.float32)
    source = write_zarr(tmp_path / "in.zarr", noise, chunks=64)
    command = [sys.executable, "-m", "napari_spectral_seg.cli", "segment", str(source), "-o", str(tmp_path / "o.zarr")]
    flags = ["--block-size", "128", "--workers", "1", "--n-clusters", "auto", "--sigma", "auto", "--min-size", "auto"]
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(command + flags, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr
    # What it was doing ("starting 1 local dask worker process(es)..."), then the one-line error.
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("starting ")]
    assert len(lines) == 1 and "no objects" in lines[0], proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.zarr"]


@pytest.mark.parametrize("kind", ["continuous", "ties", "constant blocks"])
def test_split_medians_are_numpys_medians(tmp_path, client, kind):
    from napari_spectral_seg.blockwise.grid import block_grid
    from napari_spectral_seg.blockwise.passes import ImagePasses, split_medians
    from napari_spectral_seg.blockwise.source import open_source

    rng = np.random.default_rng(3)
    image = rng.normal(0.0, 1.0, (96, 80))
    if kind == "ties":
        image = np.round(image * 2.0)  # a handful of values, each many times
    if kind == "constant blocks":
        image[:48] = 0.0
    source = open_source(write_zarr(tmp_path / "in.zarr", image.astype(np.float64), chunks=16), 0)
    blocks = block_grid(source.shape, 32)
    passes = ImagePasses(client, source, blocks, None, None)
    cores = {b.key: image[tuple(slice(a, z) for a, z in b.core)] for b in blocks}
    passes.note_ranges({key: (float(core.min()), float(core.max())) for key, core in cores.items()})
    assert (kind == "constant blocks") == bool(passes.constant)
    split = float(np.quantile(image, 0.7))
    found = split_medians(passes, float(image.min()), split, float(image.max()), {"below", "above", "all"})
    assert found["below"] == float(np.median(image[image <= split]))
    assert found["above"] == float(np.median(image[image > split]))
    assert found["all"] == float(np.median(image))
