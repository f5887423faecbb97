"""The widget's field for low_threshold ("dim objects down to"): auto, none or a level, shown where it
applies, the level used shown after a run, and saved in a parameter file that reproduces the run."""

import numpy as np
import pytest
from conftest import run_and_wait
from test_dim import _dim_beside_bright

from napari_spectral_seg import segment
from napari_spectral_seg._widget.form import NONE, NUMBER
from napari_spectral_seg.core.auto import AutoConfig
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.io import load_parameters


def shown(widget, sub):
    """Whether a sub-widget (and its label row) is shown in the dock."""
    return sub.native.isVisibleTo(widget.native)


@pytest.fixture
def docked(dock):
    image, _ = _dim_beside_bright()
    viewer, widget = dock(image, name="nuclei")
    return viewer, widget, image


def test_the_field_is_shown_only_in_auto_mode_with_a_threshold_and_reads_as_the_parameter(docked):
    viewer, widget, image = docked
    choice, level = widget.dim_objects, widget.low_threshold
    assert choice.label == "dim objects" and level.label == "dim objects down to"
    assert f"background + {AutoConfig().dim_deviations:g} noise deviations" in choice.current_choice
    assert not shown(widget, choice) and not shown(widget, level)  # a fixed number of segments: no search
    widget.auto_segments.value = True
    assert shown(widget, choice) and shown(widget, level)
    assert choice.value == "auto" and not level.enabled  # informational until a level is chosen
    assert widget.current_parameters().low_threshold == "auto"
    choice.value = NUMBER
    level.value = 150.0
    assert level.enabled and widget.current_parameters().low_threshold == 150.0
    choice.value = NONE
    assert widget.current_parameters().low_threshold is None and not level.enabled
    choice.value = NUMBER
    # A Labels mask replaces the threshold, seed points the automatic count: the search does not apply.
    viewer.add_labels((image > 200).astype(np.uint8), name="mask")
    widget.mask.value = viewer.layers["mask"]
    assert not shown(widget, choice) and not shown(widget, level)
    assert not widget.current_parameters().applies("low_threshold")
    widget.mask.value = None
    assert shown(widget, choice) and widget.current_parameters().low_threshold == 150.0  # kept meanwhile
    viewer.add_points(np.array([(64, 44), (30, 100)]), name="clicks")
    widget.seeds.value = viewer.layers["clicks"]
    assert not shown(widget, choice)
    widget.seeds.value = None
    widget.auto_segments.value = False
    assert not shown(widget, choice) and not shown(widget, level)


def test_after_a_run_the_field_shows_the_level_the_engine_chose(docked, qtbot):
    viewer, widget, image = docked
    widget.auto_segments.value = True
    run_and_wait(widget, qtbot)
    recorded = viewer.layers["nuclei spectral"].metadata["spectral_seg"]
    assert recorded["low_threshold"] == "auto" and recorded["dim_objects"] == 1
    used = recorded["low_threshold_used"]
    assert 100.0 < used < recorded["threshold_used"]
    assert widget.low_threshold.value == pytest.approx(used, abs=0.01)
    assert "chosen from the image" in widget.low_threshold.tooltip
    assert widget.dim_objects.value == "auto"  # still auto: the next image gets its own level


@pytest.mark.parametrize("choice, value", [("auto", "auto"), (NONE, None), (NUMBER, 150.0)])
def test_a_saved_parameter_file_holds_the_choice_and_reproduces_the_run(docked, qtbot, tmp_path, choice, value):
    viewer, widget, image = docked
    widget.auto_segments.value = True
    widget.dim_objects.value = choice
    if choice == NUMBER:
        widget.low_threshold.value = value
    path = tmp_path / "params.json"
    widget.save_parameters(path)
    loaded = load_parameters(path)
    assert loaded["low_threshold"] == value
    params = SegmentationParams.from_mapping(loaded)
    # The widget runs without the time guard (progress and Cancel); the file leaves time_limit to its user.
    assert "time_limit" not in loaded and params.replace(time_limit=None) == widget.current_parameters()
    run_and_wait(widget, qtbot)
    layer = viewer.layers["nuclei spectral"]
    assert layer.metadata["spectral_seg"]["low_threshold"] == value
    assert np.array_equal(layer.data, segment(image, **params.as_kwargs()))
    found = layer.metadata["spectral_seg"]["dim_objects"] if value is not None else 0
    assert layer.data.max() == 2 + found
