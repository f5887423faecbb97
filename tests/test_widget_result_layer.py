"""The result layer on a real viewer: the image's transform and units, updated in place, the run's time."""

import numpy as np
from conftest import run_and_wait

from napari_spectral_seg.data import four_circles


def run(widget, qtbot):
    run_and_wait(widget, qtbot)


def test_result_copies_rotate_and_shear(dock, qtbot):
    image, _, _ = four_circles(seed=0)
    viewer, widget = dock(image, name="tilted", rotate=30, shear=[0.2], scale=(2, 3), translate=(5, 7))
    run(widget, qtbot)
    labels = viewer.layers["tilted spectral"]
    np.testing.assert_allclose(labels.data_to_world((30, 40)), viewer.layers["tilted"].data_to_world((30, 40)))


def test_result_keeps_units_and_a_rerun_updates_the_same_layer(dock, qtbot):
    image, _, _ = four_circles(seed=0)
    viewer, widget = dock(image, name="cells", scale=(0.5, 0.5), units=("um", "um"))
    run(widget, qtbot)
    first = viewer.layers["cells spectral"]
    assert [str(u) for u in first.units] == ["micrometer", "micrometer"]
    viewer.layers["cells"].scale = (0.25, 0.25)  # the user corrects the pixel size
    widget.seed.value = 1
    run(widget, qtbot)
    assert viewer.layers["cells spectral"] is first  # updated in place, no second layer
    np.testing.assert_allclose(first.scale, (0.25, 0.25))
    assert first.metadata["spectral_seg"]["random_state"] == 1


def test_status_shows_engine_start_up_apart_from_the_segmentation_time(dock, qtbot):
    from napari_spectral_seg._widget import _result_status

    assert _result_status(4, {"wall": 1.9, "engine_start": 1.85}) == ("4 segments in 0.05 s (+ 1.9 s engine start-up)")
    assert _result_status(4, {"wall": 0.3, "engine_start": 0.01}) == "4 segments in 0.29 s"
    image, mask, _ = four_circles(seed=0)
    viewer, widget = dock(image, name="first")
    run(widget, qtbot)  # right after docking: may include the engine's start
    meta = viewer.layers["first spectral"].metadata["spectral_seg"]
    seconds = meta["seconds"]
    assert widget.status.value.startswith("4 segments in ")
    # The metadata's time is the status line's: the start-up wait apart.
    shown = float(widget.status.value.split(" segments in ")[1].split(" s")[0])
    assert abs(shown - seconds) <= 0.011
    assert meta["engine_start_seconds"] >= 0
    run(widget, qtbot)  # the engine is up now: no start-up part
    assert "start-up" not in widget.status.value
    assert seconds > 0
