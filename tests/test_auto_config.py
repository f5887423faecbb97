"""The thresholds of the choices taken from the image are AutoConfig fields, and a run passes them down."""

import inspect

import numpy as np
import pytest
from test_dim import _dim_beside_bright

from napari_spectral_seg.core import SegmentationParams, iter_segment, run_to_end
from napari_spectral_seg.core.auto import AutoConfig, default_min_part
from napari_spectral_seg.core.background import choose_polarity
from napari_spectral_seg.core.result import EmptyMaskError
from napari_spectral_seg.data import touching_blobs

# The choices taken from the image, each field with the module constant's value it replaced.
FORMER_CONSTANTS = dict(
    noise_to_contrast=1.0 / 8.0,
    sigma_per_radius=0.25,
    peaks_per_object=8,
    min_size_per_object=0.1,
    foreground_to_noise=3.0,
    noise_threshold_deviations=5.0,
    dark_share_of_image=0.6,
    dark_share_of_border=0.8,
    polarity_blocks=8,
    background_variation=0.2,
    background_block_diameters=2.0,
    background_percentile=10.0,
    dim_deviations=5.0,
    bright_percentile=95.0,
    edge_reach=3.0,
    min_part_2d=10,
    min_part_3d=30,
)
# How the parameters' help texts spell a share out in words.
IN_WORDS = {0.1: "a tenth"}


def _run(image, config=None, **parameters):
    return run_to_end(iter_segment(image, auto_config=config, **parameters))


def test_each_former_constant_is_a_documented_field_with_its_value():
    config = AutoConfig()
    lines = inspect.getsource(AutoConfig).splitlines()
    for name, value in FORMER_CONSTANTS.items():
        assert getattr(config, name) == value, name
        at = next(i for i, line in enumerate(lines) if line.startswith(f"    {name}:"))
        assert lines[at - 1].lstrip().startswith("#:"), f"{name} has no docstring comment"


def test_the_help_texts_say_the_values_the_config_holds():
    config = AutoConfig()
    low = SegmentationParams.spec("low_threshold").help
    assert f"background plus {config.dim_deviations:g} noise deviations" in low
    assert f"{IN_WORDS[config.min_size_per_object]} of the typical object" in SegmentationParams.spec("min_size").help
    from napari_spectral_seg._widget.form import COMPOUNDS

    (min_size,) = [compound for compound in COMPOUNDS if compound.parameter == "min_size"]
    assert f"{IN_WORDS[config.min_size_per_object]} of the typical object" in min_size.tooltip


def test_the_smallest_piece_and_the_smoothing_follow_their_fields():
    image, _ = touching_blobs((128, 128), 8, seed=0)
    default = _run(image, n_clusters="auto").parameters
    doubled = _run(image, AutoConfig(min_size_per_object=0.2), n_clusters="auto").parameters
    assert doubled["typical_radius"] == default["typical_radius"]
    assert doubled["min_size_used"] == pytest.approx(2 * default["min_size_used"], abs=1)
    # Noise up to the whole contrast, and any number of peaks, ask for no smoothing.
    lenient = AutoConfig(noise_to_contrast=1.0, peaks_per_object=10**9)
    assert default["sigma_used"] > 0 and _run(image, lenient, n_clusters="auto").parameters["sigma_used"] == 0.0


def test_the_floor_of_a_split_piece_follows_its_fields():
    assert default_min_part(3, 2) == 10 and default_min_part(3, 3) == 30 and default_min_part(50, 2) == 50
    assert default_min_part(3, 2, AutoConfig(min_part_2d=4)) == 4
    assert default_min_part(3, 3, AutoConfig(min_part_3d=5)) == 5


def test_the_dim_search_and_the_edges_follow_their_fields():
    image, _ = _dim_beside_bright()
    default = _run(image, n_clusters="auto")
    assert default.parameters["dim_objects"] == 1
    deeper = _run(image, AutoConfig(dim_deviations=2.5), n_clusters="auto").parameters
    assert deeper["low_threshold_used"] < default.parameters["low_threshold_used"]
    strict = _run(image, AutoConfig(dim_deviations=500.0), n_clusters="auto").parameters
    assert strict["dim_objects"] == 0
    # A lower bright level draws the outlines further out.
    wider = _run(image, AutoConfig(bright_percentile=50.0), n_clusters="auto", low_threshold=None)
    narrower = _run(image, n_clusters="auto", low_threshold=None)
    assert (wider.labels > 0).sum() > (narrower.labels > 0).sum()


def test_the_noise_check_follows_its_fields():
    noise = np.random.default_rng(0).normal(100.0, 5.0, (128, 128))
    with pytest.raises(EmptyMaskError, match="none lies 5 above the median"):
        _run(noise, n_clusters="auto")
    with pytest.raises(EmptyMaskError, match="none lies 7 above the median"):
        _run(noise, AutoConfig(noise_threshold_deviations=7.0), n_clusters="auto")
    # With no contrast asked of Otsu's split, its noise mosaic is taken for objects.
    mosaic = _run(noise, AutoConfig(foreground_to_noise=0.0), n_clusters="auto")
    assert "threshold_rule" not in mosaic.parameters and mosaic.labels.max() > 1


def test_the_polarity_and_background_follow_their_fields():
    spots = np.ones((64, 64))
    spots[20:28, 20:28] = spots[40:46, 30:38] = 0.1
    assert choose_polarity(spots) == "dark"
    assert choose_polarity(spots, AutoConfig(dark_share_of_image=0.99)) == "bright"
    image, _ = touching_blobs((128, 128), 10, seed=1)
    ramp = 0.3 * np.mgrid[:128, :128][1] / 127.0
    lit = image + ramp
    flat = _run(lit, AutoConfig(background_variation=10.0), n_clusters="auto").parameters
    default = _run(lit, n_clusters="auto").parameters
    assert default["background_used"] == "subtracted" and flat["background_used"] == "flat"


@pytest.mark.parametrize(
    "field, value",
    [
        ("edge_reach", -1.0),
        ("edge_reach", float("nan")),
        ("min_part_2d", -5),
        ("max_candidates", 2.5),
        ("bright_percentile", 150.0),
        ("use_sliver_merge", 1),
    ],
)
def test_a_field_out_of_range_is_refused_at_once_by_its_name(field, value):
    with pytest.raises((TypeError, ValueError), match=rf"^AutoConfig\.{field}="):
        AutoConfig(**{field: value})
    assert AutoConfig(notch_ratio=0, moment_ratio=0, use_sliver_merge=False).notch_ratio == 0
