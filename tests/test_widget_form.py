"""The widget's parameter fields come from SegmentationParams.specs(), and read back as parameters."""

import itertools
import json

import numpy as np
import pytest
from magicgui.widgets import ComboBox, FloatSpinBox, SpinBox

from napari_spectral_seg._widget.form import field_name
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.data import four_circles

GUI_SPECS = [spec for spec in SegmentationParams.specs() if spec.gui is not None]


@pytest.fixture
def docked(dock):
    image, mask, _ = four_circles(seed=0)
    viewer, widget = dock(image, name="cells", scale=(2.0, 0.5))
    viewer.add_labels(mask.astype(np.uint8), name="cells mask")
    viewer.add_points(np.array([(28, 24), (40, 50)]), name="clicks")
    return viewer, widget


def test_one_field_per_parameter_with_gui_hints_starting_at_the_defaults(docked):
    viewer, widget = docked
    fields = widget._form.fields
    assert sorted(fields) == sorted(spec.name for spec in GUI_SPECS)
    for spec in GUI_SPECS:
        field = fields[spec.name]
        assert getattr(widget, field_name(spec.name)) is field  # the sub-widget, by its name
        assert field.label == spec.gui["label"]
        if "choices" in spec.gui:
            assert isinstance(field, ComboBox) and tuple(field.choices) == tuple(spec.gui["choices"])
        else:
            whole = isinstance(spec.default, int) or spec.gui.get("whole")
            assert isinstance(field, SpinBox if whole else FloatSpinBox)
            for key in ("min", "max", "step"):
                if key in spec.gui:
                    assert getattr(field, key) == pytest.approx(spec.gui[key])
    assert widget.mask.value is None and widget.seeds.value is None
    spacing = tuple(float(v) for v in viewer.layers["cells"].scale)
    # The library's defaults, but no time limit: the widget shows progress and Cancel stops a run.
    assert widget.current_parameters() == SegmentationParams(spacing=spacing, time_limit=None)


def test_tooltips_say_what_the_parameter_does_and_when_it_applies(docked):
    _, widget = docked
    edge_level = SegmentationParams.spec("edge_level")
    assert edge_level.applies_text in widget.edge_level.tooltip
    assert widget.beta.tooltip.lower().startswith(SegmentationParams.spec("beta").help.lower())
    assert "Otsu" in widget.auto_threshold.tooltip and "Split each piece" in widget.auto_segments.tooltip


def old_enabled(widget):
    """Which fields the widget enabled before it was built from the specs, rule by rule."""
    uses_mask, seeded, auto = widget.mask.value is not None, widget.seeds.value is not None, widget.auto_segments.value
    return dict(
        auto_threshold=not uses_mask,
        threshold=not uses_mask and not widget.auto_threshold.value,
        auto_segments=not seeded,
        n_clusters=not seeded and not auto,
        sensitivity=not seeded and auto,
        edge_level=not seeded and auto and not uses_mask,
    )


def old_saved(widget):
    """The saved parameters as the widget wrote them before SegmentationParams, with the 'auto' defaults."""
    uses_mask, auto, layer = widget.mask.value is not None, widget.auto_segments.value, widget.image.value
    return dict(
        threshold=None if uses_mask else ("auto" if widget.auto_threshold.value else float(widget.threshold.value)),
        n_clusters="auto" if auto else int(widget.n_clusters.value),
        sensitivity=float(widget.sensitivity.value) if auto else None,
        edge_level=(float(widget.edge_level.value) or None) if auto and not uses_mask else None,
        beta=float(widget.beta.value),
        sigma="auto" if widget.auto_sigma.value else float(widget.sigma.value) or None,
        eigen_solver=widget.eigen_solver.value,
        random_state=int(widget.seed.value),
        min_size="auto" if widget.auto_min_size.value else int(widget.min_size.value),
        channel_axis=-1 if layer.rgb else None,
        spacing=[float(v) for v in layer.scale[-2:]],
    )


def test_enabled_fields_and_saved_parameters_are_as_before_in_every_combination(docked, tmp_path):
    viewer, widget = docked
    widget.sensitivity.value, widget.threshold.value, widget.beta.value = 0.6, 1.25, 3.0
    choices = itertools.product(
        (None, viewer.layers["cells mask"]),  # mask
        (None, viewer.layers["clicks"]),  # seed points
        (False, True),  # auto segments
        (False, True),  # Otsu
        (0.0, 0.3),  # edge level
        (0.0, 1.5),  # sigma
    )
    path = tmp_path / "params.json"
    for mask, seeds, auto, otsu, edge_level, sigma in choices:
        widget.mask.value, widget.seeds.value = mask, seeds
        widget.auto_segments.value, widget.auto_threshold.value = auto, otsu
        widget.edge_level.value, widget.sigma.value = edge_level, sigma
        state = (mask is not None, seeds is not None, auto, otsu, edge_level, sigma)
        enabled = {name: getattr(widget, name).enabled for name in old_enabled(widget)}
        assert enabled == old_enabled(widget), state
        widget.save_parameters(path)
        saved = json.loads(path.read_text())["spectral_seg"]
        assert saved.pop("version")
        old = old_saved(widget)
        assert {key: saved[key] for key in old} == old, state  # parameters declared since then may add keys
