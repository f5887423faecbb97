"""Layers <-> arrays for the widget, on plain napari layer objects: no viewer, no Qt."""

import numpy as np
import pytest
from napari.components import LayerList
from napari.layers import Image, Labels, Points, Shapes

from napari_spectral_seg._widget import layers as L
from napari_spectral_seg.core.drawn import DrawnShapes
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.core.pipeline import SegmentationResult


def test_result_geometry_of_an_image_and_of_a_stack_frame():
    image = Image(np.zeros((10, 12)), scale=(2, 3), translate=(5, 7), rotate=30)
    geometry = L.result_geometry(image, 2)
    assert geometry["scale"] == (2, 3) and geometry["translate"] == (5, 7)
    np.testing.assert_allclose(geometry["rotate"], image.rotate)
    assert {"shear", "affine"} <= set(geometry)
    stack = Image(np.zeros((4, 10, 12)), scale=(5, 2, 3), translate=(1, 5, 7))
    geometry = L.result_geometry(stack, 2)  # one frame: scale and translate of the frame's axes only
    assert geometry["scale"] == (2, 3) and geometry["translate"] == (5, 7)
    assert "rotate" not in geometry


def test_full_resolution_stack_shape_and_spatial_axes():
    big, small = np.zeros((3, 64, 64)), np.zeros((3, 32, 32))
    multiscale = Image([big, small], multiscale=True)
    assert L.full_resolution(multiscale) is big
    assert L.stack_shape(multiscale) == (3, 64, 64)
    rgb = Image(np.zeros((40, 60, 3)), rgb=True)
    assert L.stack_shape(rgb) == (40, 60)  # no channel axis
    assert L.spatial_ndim(rgb, 3) == 2 and L.spatial_ndim(multiscale, 2) == 2
    assert L.layer_parameters(rgb, 2) == dict(spacing=(1.0, 1.0), channel_axis=-1)
    assert L.layer_parameters(Image(big, scale=(4, 0.5, 0.5)), 3) == dict(spacing=(4.0, 0.5, 0.5), channel_axis=None)


def test_current_frame_from_the_dims_point():
    stack = Image(np.zeros((3, 8, 8)), scale=(5, 1, 1), translate=(10, 0, 0))
    assert L.current_frame(stack, (20.0, 3.0, 3.0), 1) == (2,)
    assert L.current_frame(stack, (0.0, 0.0, 0.0), 1) == (0,)  # before the first frame: clipped
    assert L.current_frame(stack, (99.0, 0.0, 0.0), 1) == (2,)
    # A viewer with more axes than the layer: the layer's are the last ones.
    assert L.current_frame(stack, (7.0, 15.0, 0.0, 0.0), 1) == (1,)


def test_shapes_are_rasterised_on_the_image_pixel_grid():
    image = Image(np.zeros((20, 30)), scale=(2, 2))
    roi = Shapes([np.array([[4, 4], [4, 20], [20, 20], [20, 4]])], shape_type="rectangle")  # world units
    drawn = L.drawn_shapes(roi, image, (20, 30))
    assert isinstance(drawn, DrawnShapes) and drawn.shape == (20, 30)  # vertices only: the engine fills the mask
    mask = drawn.rasterise()
    assert mask.shape == (20, 30) and mask.dtype == bool
    assert mask[2:10, 2:10].all() and not mask[11:].any() and not mask[:, 11:].any()
    with pytest.raises(ValueError, match="has no shapes"):
        L.drawn_shapes(Shapes(name="empty"), image, (20, 30))
    with pytest.raises(ValueError, match="covers no pixel"):
        away = Shapes([np.array([[100, 100], [100, 120], [120, 120]])], shape_type="polygon", name="away")
        L.drawn_shapes(away, image, (20, 30)).rasterise()


def _napari_masks(shapes: Shapes, grid: tuple) -> np.ndarray:
    return np.any(shapes.to_masks(mask_shape=grid), axis=0)


@pytest.mark.parametrize("kind", ["polygon", "rectangle", "path", "line"])
def test_drawn_shapes_rasterise_as_napari_does(kind):
    vertices = {
        "polygon": [[3.2, 4.1], [30.7, 9.4], [25.5, 38.2], [8.1, 30.3], [12.4, 18.8]],
        "rectangle": [[5.4, 6.6], [5.4, 33.2], [27.9, 33.2], [27.9, 6.6]],
        "path": [[2.2, 3.1], [20.4, 35.7], [35.1, 10.2], [36.0, 39.0]],
        "line": [[1.0, 38.5], [33.3, 2.2]],
    }[kind]
    shapes = Shapes([np.array(vertices)], shape_type=kind)
    ours = DrawnShapes((np.array(vertices),), (kind,), (40, 42)).rasterise()
    np.testing.assert_array_equal(ours, _napari_masks(shapes, (40, 42)))


def test_drawn_ellipses_and_3d_shapes_agree_with_napari():
    corners = np.array([[4.0, 5.0], [4.0, 35.0], [30.0, 35.0], [30.0, 5.0]])
    tilted = np.array([[20.0, 2.0], [38.0, 20.0], [26.0, 32.0], [8.0, 14.0]])  # a rotated bounding box
    for box in (corners, tilted):
        ours = DrawnShapes((box,), ("ellipse",), (40, 40)).rasterise()
        theirs = _napari_masks(Shapes([box], shape_type="ellipse"), (40, 40))
        # napari fills a 100-sided polygon, we the exact ellipse: they differ on the edge only.
        assert (ours ^ theirs).sum() <= 0.03 * theirs.sum() and (ours & theirs).sum() >= 0.97 * theirs.sum()
    on_plane = np.array([[3, 4, 4], [3, 4, 20], [3, 20, 20], [3, 20, 4]], dtype=float)
    shapes = Shapes([on_plane], shape_type="polygon", ndim=3)
    ours = DrawnShapes((on_plane,), ("polygon",), (6, 24, 24)).rasterise()
    np.testing.assert_array_equal(ours, _napari_masks(shapes, (6, 24, 24)))
    assert ours[3].any() and not ours[[0, 1, 2, 4, 5]].any()


def test_labels_mask_of_a_frame_or_a_stack():
    stack = Image(np.zeros((2, 5, 6)))
    per_frame = Labels(np.arange(60).reshape(2, 5, 6) % 3)
    mask = L.labels_mask(per_frame, stack, (5, 6), (1,))
    np.testing.assert_array_equal(mask, per_frame.data[1])
    assert np.shares_memory(mask, per_frame.data)  # not read here: the run's worker copies it
    one = Labels(np.ones((5, 6), np.uint8))
    np.testing.assert_array_equal(L.labels_mask(one, stack, (5, 6), (1,)), one.data)
    with pytest.raises(ValueError, match="pick a mask drawn on this image"):
        L.labels_mask(Labels(np.ones((4, 4), np.uint8), name="small"), stack, (5, 6), (1,))


def test_seed_pixels_in_image_pixels_and_on_the_frame():
    image = Image(np.zeros((20, 20)), scale=(0.5, 0.5))
    points = Points(np.array([[1.0, 2.0], [5.0, 5.0]]))  # world units
    np.testing.assert_allclose(L.seed_pixels(points, image, 2), [[2, 4], [10, 10]])
    stack = Image(np.zeros((3, 20, 20)))
    clicks = Points(np.array([[0, 3, 4], [1, 5, 6], [1, 7, 8]]), name="clicks")
    np.testing.assert_allclose(L.seed_pixels(clicks, stack, 2, (1,)), [[5, 6], [7, 8]])
    with pytest.raises(ValueError, match="None of the seed points of 'clicks' is on frame"):
        L.seed_pixels(clicks, stack, 2, (2,))
    with pytest.raises(ValueError, match="has no points"):
        L.seed_pixels(Points(name="none"), image, 2)


def test_recorded_parameters_are_what_the_widget_sets_in_json_types():
    params = SegmentationParams(spacing=(2.0, 1.0), sigma=1.5)
    record = L.recorded_parameters(params)
    assert record == dict(
        threshold="auto",
        n_clusters=4,
        beta=1.0,
        eigen_solver="auto",
        random_state=0,
        spacing=[2.0, 1.0],
        channel_axis=None,
        min_size="auto",
        sigma=1.5,
        sensitivity=None,
        edge_level=None,  # acts in auto mode only
        low_threshold=None,  # acts in auto mode only, too
        polarity="auto",
        background="auto",
    )
    auto = L.recorded_parameters(params.replace(n_clusters="auto", sensitivity=0.5), from_layer=False)
    assert auto["edge_level"] == 0.4 and auto["sensitivity"] == 0.5
    assert "spacing" not in auto and "channel_axis" not in auto


def test_collect_job_reads_the_frame_shown_its_mask_and_seed_points():
    data = np.arange(3 * 6 * 7, dtype=float).reshape(3, 6, 7)
    stack = Image(data)
    mask = Labels(np.ones((3, 6, 7), np.uint8))
    points = Points(np.array([[1, 2, 3], [1, 4, 5]]))
    params = SegmentationParams()
    job = L.collect_job(stack, mask, points, params, dims=2, all_frames=False, dims_point=(1, 0, 0))
    assert job.frame_index == (1,) and not job.all_frames and job.spatial_ndim is None
    np.testing.assert_array_equal(job.image, data[1])
    assert np.shares_memory(job.image, data)  # a view: the run's worker reads it, not the GUI thread
    assert job.mask.shape == (6, 7)
    np.testing.assert_allclose(job.params.seeds, [[2, 3], [4, 5]])
    assert job.params.replace(seeds=None) == params
    every = L.collect_job(stack, None, None, params, dims=2, all_frames=True, dims_point=(1, 0, 0))
    assert every.all_frames and every.frame_index is None and every.image.shape == data.shape
    stack_record = every.stack_parameters()
    assert stack_record["spatial_ndim"] == 2 and stack_record["threshold_used"] is None
    volume = L.collect_job(stack, None, None, params, dims=3, all_frames=True, dims_point=(1, 0, 0))
    assert volume.frame_index is None and not volume.all_frames  # no leading axis: one image
    with pytest.raises(ValueError, match="Seed points work on one frame"):
        L.collect_job(stack, None, points, params, dims=2, all_frames=True, dims_point=(1, 0, 0))
    with pytest.raises(ValueError, match="No image layer"):
        L.collect_job(None, None, None, params, dims=2, all_frames=False, dims_point=(0, 0))


def a_result(labels, **parameters):
    return SegmentationResult(labels=labels, parameters=parameters, seconds={"wall": 1.5, "engine_start": 0.25})


def test_result_metadata_names_the_layers_the_time_and_the_count():
    image = Image(np.zeros((4, 4)), name="cells")
    job = L.Job(image, Labels(np.ones((4, 4), np.uint8), name="roi"), np.zeros((4, 4)), None, SegmentationParams())
    metadata = L.result_metadata(job, a_result(np.array([[0, 1], [2, 3]]), beta=1.0), 1.25)
    assert metadata["beta"] == 1.0 and metadata["image"] == "cells" and metadata["mask"] == "roi"
    assert metadata["seconds"] == 1.25 and metadata["engine_start_seconds"] == 0.25
    assert metadata["n_segments"] == 3 and metadata["frames"] is None and "version" in metadata


def test_the_result_layer_is_created_then_updated_in_place():
    layers = LayerList()
    image = Image(np.zeros((6, 8)), name="cells", scale=(0.5, 0.5), translate=(1, 2))
    layers.append(image)
    first = L.show_labels(layers, image, np.ones((6, 8), np.int32), {"n_clusters": 4})
    assert first in layers and first.name == "cells spectral" and L.is_result_layer(first)
    np.testing.assert_allclose(first.scale, (0.5, 0.5))
    np.testing.assert_allclose(first.translate, (1, 2))
    assert first.metadata[L.METADATA_KEY] == {"n_clusters": 4}
    assert L.result_layer(layers, image) is first
    image.scale = (0.25, 0.25)
    again = L.show_labels(layers, image, np.full((6, 8), 2, np.int32), {"n_clusters": 2})
    assert again is first and len(layers) == 2 and first.data.max() == 2
    np.testing.assert_allclose(first.scale, (0.25, 0.25))
    assert first.metadata[L.METADATA_KEY] == {"n_clusters": 2}
    other_shape = L.show_labels(layers, image, np.ones((3, 4), np.int32), {})
    assert other_shape is not first and other_shape.name == "cells spectral [2]"
    assert not L.is_result_layer(Labels(np.zeros((2, 2), int)))


def test_frames_go_into_one_stack_shaped_layer_keeping_each_frames_parameters():
    layers = LayerList()
    stack = Image(np.zeros((3, 4, 5)), name="movie")
    layers.append(stack)
    layer = L.show_frame(layers, stack, (1,), np.ones((4, 5), np.int32), {"beta": 1.0})
    assert layer.data.shape == (3, 4, 5) and layer.data[1].all() and not layer.data[[0, 2]].any()
    job = L.Job(stack, None, np.zeros((4, 5)), None, SegmentationParams(), frame_index=(2,))
    assert L.put_result(layers, job, np.full((4, 5), 3, np.int32), {"beta": 5.0}) is layer
    assert layer.data[1].max() == 1 and layer.data[2].max() == 3
    meta = layer.metadata[L.METADATA_KEY]
    assert meta["beta"] == 5.0
    assert meta["per_frame"]["(1,)"] == {"beta": 1.0} and meta["per_frame"]["(2,)"] == {"beta": 5.0}
