"""napari's File > Save of a Labels layer, on a real viewer: the plugin's writer keeps the parameters
recorded by the widget and the layer's scale, atomically; a saved result replays with ``batch --params``."""

import numpy as np
import pytest
import tifffile
from conftest import run_and_wait

from napari_spectral_seg.io import load_parameters, read_voxel_size, stored_parameters

PLUGIN = "napari-spectral-seg"


def test_file_save_of_the_result_keeps_its_parameters_and_scale(dock, qtbot, tmp_path):
    from napari_spectral_seg.data import four_circles

    image, _, _ = four_circles(size=80, seed=0)
    viewer, widget = dock(image, name="cells", scale=(0.5, 0.5), units=("µm", "µm"))
    widget.seed.value = 7
    run_and_wait(widget, qtbot)
    result = viewer.layers["cells spectral"]
    path = tmp_path / "cells_labels.tif"
    viewer.layers.selection = {result}
    written = viewer.layers.save(str(path), selected=True, plugin=PLUGIN)
    assert written == [str(path)]
    recorded = result.metadata["spectral_seg"]
    stored = stored_parameters(path)
    assert stored["random_state"] == 7 == recorded["random_state"]
    assert stored["n_clusters"] == recorded["n_clusters"] and stored["image"] == "cells"
    np.testing.assert_array_equal(tifffile.imread(path), result.data)
    assert read_voxel_size(path).spacing(2) == (0.5, 0.5)  # the layer's scale, in µm
    assert load_parameters(path)["random_state"] == 7  # replayable by batch --params
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells_labels.tif"]  # no temporary file left


def test_any_labels_layer_saves_and_an_undo_saves_what_is_shown(viewer_and_widget, qtbot, tmp_path):
    viewer, widget = viewer_and_widget
    run_and_wait(widget, qtbot)
    widget.n_clusters.value = 2
    run_and_wait(widget, qtbot)
    result = viewer.layers["four circles spectral"]
    result.undo()  # back to the first run's labels: its parameters are saved with them
    result.save(str(tmp_path / "undone.tif"), plugin=PLUGIN)
    assert stored_parameters(tmp_path / "undone.tif")["n_clusters"] == 4
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "undone.tif"), result.data)
    plain = viewer.add_labels(np.eye(5, dtype=np.int64), name="drawn")
    plain.save(str(tmp_path / "drawn.tif"), plugin=PLUGIN)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "drawn.tif"), plain.data)
    assert stored_parameters(tmp_path / "drawn.tif") == {}


def test_a_failed_save_leaves_the_old_file(viewer_and_widget, qtbot, tmp_path, monkeypatch):
    viewer, widget = viewer_and_widget
    run_and_wait(widget, qtbot)
    result = viewer.layers["four circles spectral"]
    path = tmp_path / "l.tif"
    path.write_bytes(b"old")
    import napari_spectral_seg.io.labels as labels_io

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(labels_io, "_sync", full)
    with pytest.raises(
        OSError, match=r"l.tif: cannot write it \(No space left on device; free some space or write elsewhere\)"
    ):
        result.save(str(path), plugin=PLUGIN)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["l.tif"]


def test_save_as_npy_through_the_plugin_writes_labels_and_sidecar(make_napari_viewer, tmp_path):
    # issue 17: Labels.save("x.npy", plugin=...) returned [] and wrote nothing (only .tif was declared).
    viewer = make_napari_viewer()
    labels = np.arange(36, dtype=np.int32).reshape(6, 6) % 4
    layer = viewer.add_labels(labels, name="drawn", metadata={"spectral_seg": {"random_state": 3}})
    path = tmp_path / "drawn.npy"
    assert layer.save(str(path), plugin=PLUGIN) == [str(path)]
    np.testing.assert_array_equal(np.load(path), labels)
    assert stored_parameters(path)["random_state"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawn.npy", "drawn.npy.json"]
