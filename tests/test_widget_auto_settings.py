"""The widget's 'auto' boxes for smoothing and min size: chosen from the image, shown after the run."""

import numpy as np
from conftest import run_and_wait

from napari_spectral_seg import touching_blobs
from napari_spectral_seg.core import iter_segment, run_to_end


def test_auto_smoothing_and_min_size_segment_noisy_nuclei_and_show_the_chosen_values(dock, qtbot):
    image, truth = touching_blobs((128, 128), 12, noise=0.15, texture=0.3, seed=7)
    viewer, widget = dock(image, name="nuclei")
    widget.auto_segments.value = True
    widget.auto_sigma.value = True
    widget.auto_min_size.value = True
    assert not widget.sigma.enabled and not widget.min_size.enabled
    params = widget.current_parameters()
    assert params.sigma == "auto" and params.min_size == "auto"
    run_and_wait(widget, qtbot)
    layer = viewer.layers["nuclei spectral"]
    recorded = layer.metadata["spectral_seg"]
    expected = run_to_end(iter_segment(image, None, params)).labels
    assert np.array_equal(layer.data, expected)
    assert recorded["sigma"] == "auto" and recorded["sigma_used"] >= 1.0
    assert widget.sigma.value == recorded["sigma_used"] and widget.min_size.value == recorded["min_size_used"]
    assert "chosen from the image" in widget.sigma.tooltip
    # about one segment per nucleus, not a mosaic
    assert abs(int(layer.data.max()) - int(truth.max())) <= 3


def test_auto_with_every_other_field_at_its_default_segments_noisy_unevenly_lit_nuclei(dock, qtbot):
    from conftest import f1

    image, truth = touching_blobs((192, 192), 20, noise=0.1, texture=0.2, seed=100)
    ramp = np.mgrid[:192, :192][1] / 191.0
    lit = image * (0.4 + 0.6 * ramp) + 0.6 * ramp  # dim on the left, bright on the right
    viewer, widget = dock(lit, name="nuclei")
    widget.auto_segments.value = True  # the one click a user makes; nothing else is touched
    run_and_wait(widget, qtbot)
    layer = viewer.layers["nuclei spectral"]
    recorded = layer.metadata["spectral_seg"]
    assert recorded["background_used"] == "subtracted" and recorded["polarity_used"] == "bright"
    assert recorded["sigma_used"] is not None and recorded["min_size_used"] > 0
    assert f1(truth, layer.data) > 0.75
    # The same for dark nuclei on a bright field (brightfield-like): inverted, then segmented.
    viewer.add_image(lit.max() - lit, name="dark")
    widget.image.value = viewer.layers["dark"]
    run_and_wait(widget, qtbot)
    dark = viewer.layers["dark spectral"]
    assert dark.metadata["spectral_seg"]["polarity_used"] == "dark"
    assert "polarity: dark" in widget.status.value and "chosen from the image: dark" in widget.polarity.tooltip
    assert f1(truth, dark.data) > 0.75
