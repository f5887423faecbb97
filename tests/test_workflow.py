"""The ImageData -> LabelsData function: magicgui, napari-workflows, the manifest and the Layers > Segment menu."""

import numpy as np
import pytest

from napari_spectral_seg import segment
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.data import four_circles
from napari_spectral_seg.workflow import spectral_segmentation


def test_its_parameters_are_the_widget_fields_in_declaration_order():
    import inspect

    names = list(inspect.signature(spectral_segmentation).parameters)
    assert names == ["image"] + [s.name for s in SegmentationParams.specs() if s.gui is not None]


def test_positional_call_equals_segment_with_the_defaults():
    image, _, _ = four_circles(size=60, seed=0)
    labels = spectral_segmentation(image, "otsu", "4")
    expected = segment(image, threshold="otsu", n_clusters=4)
    assert np.array_equal(labels, expected)


def test_magicgui_builds_a_form_and_runs_it():
    from magicgui import magicgui

    image, _, _ = four_circles(size=60, seed=0)
    form = magicgui(spectral_segmentation)
    form.n_clusters.value = "auto"
    assert form.threshold.value == "auto" and form.min_size.value == "auto" and form.sigma.value == "auto"
    labels = form(image)
    assert labels.shape == image.shape and labels.max() >= 4


def test_a_napari_workflow_runs_it():
    workflows = pytest.importorskip("napari_workflows")
    image, _, _ = four_circles(size=60, seed=0)
    workflow = workflows.Workflow()
    workflow.set("labels", spectral_segmentation, "image", "otsu", "4")
    workflow.set("image", image)
    assert np.array_equal(workflow.get("labels"), spectral_segmentation(image, "otsu", "4"))


def test_a_word_that_is_not_understood_is_refused_by_name():
    image, _, _ = four_circles(size=40, seed=0)
    with pytest.raises(ValueError, match="n_clusters='many' is neither a number nor 'auto'"):
        spectral_segmentation(image, n_clusters="many")


def test_the_function_and_the_widget_are_in_the_layers_segment_menu(make_napari_viewer):
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest("napari-spectral-seg")
    commands = {item.command for item in manifest.contributions.menus["napari/layers/segment"]}
    assert commands == {"napari-spectral-seg.make_widget", "napari-spectral-seg.spectral_segmentation"}
    viewer = make_napari_viewer()
    viewer.add_image(four_circles(size=60, seed=0)[0], name="cells")
    _, form = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation (function)")
    form.n_clusters.value = "4"
    form()
    assert any(layer.__class__.__name__ == "Labels" for layer in viewer.layers)
