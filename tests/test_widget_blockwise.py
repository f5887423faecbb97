"""'Run blockwise' in the dock widget: a zarr opened in napari, segmented on a local cluster, opened as labels."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")
zarr = pytest.importorskip("zarr")

from napari_spectral_seg import touching_blobs  # noqa: E402

PLUGIN = "napari-spectral-seg"
BLOCK = 64


def _open_as_zarr(make_napari_viewer, image, path):
    """A viewer with ``image`` written to a zarr array at ``path`` and opened from it, and the widget docked."""
    array = zarr.create_array(str(path), shape=image.shape, chunks=(BLOCK, BLOCK), dtype="f4")
    array[...] = image.astype(np.float32)
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="napari")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    widget.image.value = layer
    return viewer, widget, layer


@pytest.fixture
def zarr_in_napari(make_napari_viewer, tmp_path):
    """A viewer with a 192 x 192 field of touching blobs opened from a zarr array, and the widget docked."""
    image, _ = touching_blobs((192, 192), 45, seed=3)
    path = tmp_path / "blobs.zarr"
    viewer, widget, layer = _open_as_zarr(make_napari_viewer, image, path)
    widget.block_size.value = BLOCK
    widget.workers.value = 2
    return viewer, widget, layer, path


def _blockwise_layer(viewer):
    return next((layer for layer in viewer.layers if layer.name.endswith(" blockwise")), None)


def test_run_blockwise_opens_lazy_labels_equal_to_segment_blockwise(zarr_in_napari, tmp_path, qtbot):
    from napari_spectral_seg.blockwise import segment_blockwise

    viewer, widget, image_layer, path = zarr_in_napari
    output = tmp_path / "widget.zarr"
    widget.auto_segments.value = True  # auto mode: the typical object size is decided from the whole image
    widget.blockwise_output.value = output  # the file dialog's answer
    widget.run_blockwise.native.click()
    assert widget._blockwise.running and widget.cancel.enabled
    seen = []
    qtbot.waitUntil(lambda: seen.append(widget.status.value) or "of" in widget.status.value, timeout=240_000)
    screenshot = viewer.screenshot(canvas_only=False, flash=False)
    np.save(tmp_path / "screenshot.npy", screenshot)
    qtbot.waitUntil(lambda: not widget._blockwise.running, timeout=240_000)
    layer = _blockwise_layer(viewer)
    assert layer is not None, widget.status.value
    assert "segments" in widget.status.value and "widget.zarr" in widget.status.tooltip
    # Lazy: the layer reads the written store (a dask array), not a copy in memory.
    data = layer.data[0] if layer.multiscale else layer.data
    assert type(data).__name__ == "Array" and hasattr(data, "dask")
    np.testing.assert_allclose(layer.scale, image_layer.scale)
    params = widget.current_parameters()
    reference = tmp_path / "api.zarr"
    segment_blockwise(path, reference, block_size=BLOCK, workers=1, params=params)
    expected = np.asarray(zarr.open_group(str(reference), mode="r")["labels/spectral/s0"])
    assert expected.max() > 10
    np.testing.assert_array_equal(np.asarray(data), expected)
    assert layer.metadata["spectral_seg"]["threshold_used"] > 0


def test_cancel_keeps_finished_blocks_and_the_same_output_resumes(zarr_in_napari, tmp_path, qtbot):
    viewer, widget, _, _ = zarr_in_napari
    output = tmp_path / "cancelled.zarr"
    widget.blockwise_output.value = output
    widget.run_blockwise.native.click()
    qtbot.waitUntil(lambda: "of 9 blocks" in widget.status.value, timeout=240_000)
    widget.cancel.native.click()
    qtbot.waitUntil(lambda: not widget._blockwise.running, timeout=60_000)
    assert "cancelled" in widget.status.value and _blockwise_layer(viewer) is None
    assert not output.exists() and (tmp_path / ".cancelled.zarr.partial" / "_blockwise" / "state.json").exists()
    widget.run_blockwise.native.click()
    qtbot.waitUntil(lambda: not widget._blockwise.running, timeout=240_000)
    assert _blockwise_layer(viewer) is not None and output.exists()


def test_a_layer_without_a_file_is_refused_with_what_to_do(make_napari_viewer, tmp_path, qtbot):
    import dask.array as da

    viewer = make_napari_viewer()
    layer = viewer.add_image(da.zeros((256, 256), chunks=64), name="lazy")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    widget.image.value = layer
    widget.blockwise_output.value = tmp_path / "out.zarr"
    widget.run_blockwise.native.click()
    assert not widget._blockwise.running
    assert widget.status.value == "blockwise not started"
    assert "no file behind it" in widget.status.tooltip and "to_zarr" in widget.status.tooltip


def test_the_gui_thread_never_runs_the_blockwise_run(zarr_in_napari, tmp_path, qtbot, monkeypatch):
    from napari_spectral_seg import blockwise

    viewer, widget, _, _ = zarr_in_napari
    threads = []
    original = blockwise.segment_blockwise

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(blockwise, "segment_blockwise", recording)
    widget.blockwise_output.value = tmp_path / "thread.zarr"
    widget.run_blockwise.native.click()
    qtbot.waitUntil(lambda: not widget._blockwise.running, timeout=240_000)
    assert threads and threads[0] is not threading.main_thread()


def test_the_memory_guards_refusal_offers_run_blockwise():
    from napari_spectral_seg._widget.messages import for_widget
    from napari_spectral_seg.core.memory import InsufficientMemoryError, check_image_memory

    with pytest.raises(InsufficientMemoryError) as refused:
        check_image_memory(8192 * 8192, available=2**30)
    assert "'Run blockwise' (Large images)" in for_widget(str(refused.value))


def test_run_blockwise_into_the_images_ome_zarr(make_napari_viewer, tmp_path, qtbot):
    from ome_zarr.writer import get_metadata

    viewer, widget, _, path = _ome_zarr_in_napari(make_napari_viewer, tmp_path, scale_factors=(2,))
    before = {str(f): f.read_bytes() for f in path.rglob("*") if f.is_file()}
    widget.blockwise_into_image.value = True
    widget.blockwise_labels_name.value = "nuclei"
    widget.run_blockwise.native.click()
    qtbot.waitUntil(lambda: not widget._blockwise.running, timeout=240_000)
    labels = _blockwise_layer(viewer)
    assert labels is not None, widget.status.tooltip
    assert "image.zarr/labels/nuclei" in widget.status.tooltip
    assert get_metadata(zarr.open_group(str(path / "labels"), mode="r"))["labels"] == ["nuclei"]
    assert {str(f): f.read_bytes() for f in path.rglob("*") if f.is_file() and "labels" not in f.parts} == before
    data = labels.data[0] if labels.multiscale else labels.data
    assert np.asarray(data).max() > 10


def _ome_zarr_in_napari(make_napari_viewer, tmp_path, scale_factors=(2, 4)):
    """A 192 x 192 blobs OME-Zarr (levels: 1 + ``scale_factors``) opened by napari-ome-zarr, the widget docked."""
    pytest.importorskip("napari_ome_zarr")
    from ome_zarr.writer import write_image

    image, _ = touching_blobs((192, 192), 45, seed=3)
    path = tmp_path / "image.zarr"
    write_image(
        image.astype(np.float32),
        zarr.open_group(str(path), mode="w"),
        axes="yx",
        scale_factors=scale_factors,
        storage_options={"chunks": (BLOCK, BLOCK)},
    )
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(path), plugin="napari-ome-zarr")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    widget.image.value = layer
    widget.block_size.value = BLOCK
    widget.workers.value = 1
    return viewer, widget, layer, path


def test_an_existing_output_is_replaced_only_when_asked_for_that_run(zarr_in_napari, tmp_path, qtbot):
    viewer, widget, _, _ = zarr_in_napari
    output = tmp_path / "taken.zarr"
    output.mkdir()
    (output / "keep.txt").write_text("the user's")
    widget.blockwise_output.value = output
    widget.run_blockwise.native.click()
    assert not widget._blockwise.running and widget.status.value == "blockwise not started"
    assert "exists: tick 'replace existing labels'" in widget.status.tooltip
    assert (output / "keep.txt").exists()
    widget.blockwise_overwrite.value = True
    widget.run_blockwise.native.click()
    assert widget._blockwise.running and "replacing" in widget.status.value
    assert not widget.blockwise_overwrite.value  # asked again next time, never left ticked
    qtbot.waitUntil(lambda: not widget._blockwise.running, timeout=240_000)
    assert _blockwise_layer(viewer) is not None, widget.status.tooltip
    assert not (output / "keep.txt").exists() and (output / "labels" / "spectral").is_dir()
    widget.run_blockwise.native.click()  # the box cleared: the new output is not replaced either
    assert not widget._blockwise.running and "exists" in widget.status.tooltip


def test_into_the_image_an_existing_labels_name_is_asked_for_and_replaced(make_napari_viewer, tmp_path, qtbot):
    from ome_zarr.writer import get_metadata, write_labels

    viewer, widget, layer, path = _ome_zarr_in_napari(make_napari_viewer, tmp_path)
    old = np.zeros((192, 192), np.int32)
    old[:10, :10] = 7
    write_labels(old, zarr.open_group(str(path), mode="r+"), name="nuclei", axes="yx")
    before = {str(f): f.read_bytes() for f in path.rglob("*") if f.is_file() and "labels" not in f.parts}
    widget.blockwise_into_image.value = True
    widget.blockwise_labels_name.value = "nuclei"
    widget.run_blockwise.native.click()
    assert not widget._blockwise.running and "labels/nuclei exists" in widget.status.tooltip
    assert "'labels name'" in widget.status.tooltip
    widget.blockwise_overwrite.value = True
    widget.run_blockwise.native.click()
    qtbot.waitUntil(lambda: not widget._blockwise.running, timeout=240_000)
    assert _blockwise_layer(viewer) is not None, widget.status.tooltip
    replaced = np.asarray(zarr.open_group(str(path), mode="r")["labels/nuclei/s0"])
    assert replaced.max() > 10  # the run's labels, not the 7s written before
    assert get_metadata(zarr.open_group(str(path / "labels"), mode="r"))["labels"] == ["nuclei"]
    assert {str(f): f.read_bytes() for f in path.rglob("*") if f.is_file() and "labels" not in f.parts} == before


def test_a_chosen_level_of_an_ome_zarr_is_segmented_and_overlays_the_image(make_napari_viewer, tmp_path, qtbot):
    viewer, widget, layer, _ = _ome_zarr_in_napari(make_napari_viewer, tmp_path)
    assert len(widget.level.choices) == 3
    widget.level.value = 1
    widget.blockwise_output.value = tmp_path / "level1.zarr"
    widget.run_blockwise.native.click()
    qtbot.waitUntil(lambda: not widget._blockwise.running, timeout=240_000)
    labels = _blockwise_layer(viewer)
    assert labels is not None, widget.status.tooltip
    data = labels.data[0] if labels.multiscale else labels.data
    assert data.shape == (96, 96) and np.asarray(data).max() > 5
    # At the level's pixel size: the labels cover the image.
    np.testing.assert_allclose(np.asarray(labels.scale) * data.shape, np.asarray(layer.scale) * (192, 192))
    assert labels.metadata["spectral_seg"]["level"] == 1
    shot = tmp_path / "viewer.png"
    viewer.screenshot(str(shot), canvas_only=False, flash=False)
    assert shot.stat().st_size > 10_000


def test_run_blockwise_with_the_visible_field_of_view_says_what_to_do(zarr_in_napari, tmp_path):
    _, widget, _, _ = zarr_in_napari
    widget.region.value = "visible field of view"
    widget.blockwise_output.value = tmp_path / "fov.zarr"
    widget.run_blockwise.native.click()
    assert not widget._blockwise.running and widget.status.value == "blockwise not started"
    assert "set 'region' to 'whole image'" in widget.status.tooltip
    assert not (tmp_path / "fov.zarr").exists()


def test_run_blockwise_shows_its_progress_at_most_every_half_second(zarr_in_napari, tmp_path, qtbot):
    import time

    from napari_spectral_seg._widget.run_status import INTERVAL

    viewer, widget, _, _ = zarr_in_napari
    widget.blockwise_output.value = tmp_path / "throttled.zarr"
    changes = []

    def note_change():  # polled every few ms: when the status line's text changed
        if not changes or changes[-1][1] != widget.status.value:
            changes.append((time.monotonic(), widget.status.value))

    widget.run_blockwise.native.click()
    qtbot.waitUntil(lambda: note_change() or not widget._blockwise.running, timeout=240_000)
    assert _blockwise_layer(viewer) is not None, widget.status.value
    shown = [
        t for t, text in changes if text.startswith("blockwise: ") and ("blocks segmented" in text or "cluster" in text)
    ]
    assert shown, changes
    assert len(shown) < 9 + 1 and (len(shown) < 2 or np.diff(shown).min() >= INTERVAL * 0.9)
    assert "segments in" in widget.status.value and widget["progress"].native.isHidden()


def test_run_blockwise_says_which_blocks_kept_a_dim_object_with_its_basin_cut(
    make_napari_viewer, tmp_path, qtbot, monkeypatch
):
    from napari.utils.notifications import notification_manager

    from napari_spectral_seg._widget.form import NUMBER
    from napari_spectral_seg.blockwise import run

    # A dim nucleus on a faint shelf 40 pixels wide, a tiny bright object far off (a small typical
    # size: an overlap of 36). Held to that first overlap, blocks of 64 never hold the whole basin.
    monkeypatch.setattr(run, "_MAX_OVERLAP_FACTOR", 1)
    yy, xx = np.mgrid[:256, :256].astype(np.float64)
    d2 = (yy - 136) ** 2 + (xx - 40) ** 2
    image = 0.05 * np.exp(-d2 / 1800.0) + 0.3 * np.exp(-d2 / 50.0)
    image[222:227, 222:227] = 1.0
    viewer, widget, layer = _open_as_zarr(make_napari_viewer, image, tmp_path / "shelf.zarr")
    widget.block_size.value, widget.workers.value = BLOCK, 2
    widget.auto_segments.value, widget.auto_threshold.value, widget.auto_min_size.value = True, False, False
    widget.threshold.value, widget.min_size.value = 0.4, 10
    widget.dim_objects.value, widget.low_threshold.value = NUMBER, 0.02
    widget.polarity.value, widget.background.value = "bright", "flat"
    params = widget.current_parameters()
    assert (params.threshold, params.low_threshold, params.min_size) == (0.4, 0.02, 10)
    widget.blockwise_output.value = tmp_path / "out.zarr"
    widget.run_blockwise.native.click()
    qtbot.waitUntil(lambda: not widget._blockwise.running, timeout=240_000)
    assert _blockwise_layer(viewer) is not None, widget.status.value
    assert "segments" in widget.status.value and "block(s) may differ from in memory" in widget.status.value
    shown = [str(n.message) for n in notification_manager.records]
    # Each notification starts with what is wrong.
    assert any(m.startswith("A kept dim object may differ") and "larger block size" in m for m in shown), shown
    assert not any(m.startswith("Spectral segmentation") for m in shown), shown
    assert "1_0" in widget.status.tooltip and "larger block size" in widget.status.tooltip
