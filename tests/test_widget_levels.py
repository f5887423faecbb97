"""Multiscale and dask layers in the widget: the level segmented, and the visible field of view only."""

import dask.array as da
import numpy as np
from conftest import run_and_wait

from napari_spectral_seg._widget.levels import default_level, level_choices

# Disk centres (full-resolution pixels) of the test image: a 4 x 4 grid.
CENTRES = [(64 + 128 * i, 64 + 128 * j) for i in range(4) for j in range(4)]


def disks(size: int = 512, radius: int = 28) -> np.ndarray:
    """Bright disks on a dark, slightly noisy background."""
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size))
    for cy, cx in CENTRES:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 1.0
    return image + np.random.default_rng(0).normal(0, 0.05, image.shape)


def pyramid() -> list:
    """Three levels: 512^2, 256^2, 128^2 (2x block means)."""
    levels = [disks()]
    for _ in range(2):
        finer = levels[-1]
        levels.append(finer.reshape(finer.shape[0] // 2, 2, finer.shape[1] // 2, 2).mean(axis=(1, 3)))
    return levels


def label_at(layer, world) -> int:
    """The label the result layer shows at a world position (0 outside the layer)."""
    pixel = np.round(layer.world_to_data(world)).astype(int)
    if np.any(pixel < 0) or np.any(pixel >= layer.data.shape):
        return 0
    return int(layer.data[tuple(pixel)])


def test_level_choices_and_default_level(dock):
    viewer, widget = dock(pyramid(), multiscale=True, name="pyr")
    layer = viewer.layers["pyr"]
    assert [text for text, _ in level_choices(layer)] == ["0: 512 x 512", "1: 256 x 256", "2: 128 x 128"]
    assert not widget.level.native.isHidden()
    # The finest level that fits: level 0 with room, the coarsest when nothing fits.
    assert default_level(layer, 2, available=2**40) == 0
    assert default_level(layer, 2, available=1) == 2
    fits_level_1 = 256 * 256 * 400  # bytes: room for 256^2 (~304 B a pixel), not 512^2
    assert default_level(layer, 2, available=fits_level_1) == 1


def test_level_1_labels_overlay_the_image(dock, qtbot):
    viewer, widget = dock(pyramid(), multiscale=True, name="pyr", scale=(0.5, 0.5), translate=(10, 20))
    image = viewer.layers["pyr"]
    widget.level.value = 1
    run_and_wait(widget, qtbot)
    labels = viewer.layers["pyr spectral"]
    assert labels.data.shape == (256, 256)  # level-1 resolution
    np.testing.assert_allclose(labels.scale, (1.0, 1.0))  # the image's scale x the downsample factor 2
    np.testing.assert_allclose(labels.translate, (10, 20))
    assert labels.metadata["spectral_seg"]["level"] == 1
    assert labels.metadata["spectral_seg"]["spacing"] == [1.0, 1.0]  # a level-1 pixel's size
    features = labels.features
    np.testing.assert_allclose(features["area"], features["n_pixels"])  # areas in world units: 1 x 1 per pixel
    found = {label_at(labels, image.data_to_world(centre)) for centre in CENTRES}
    assert 0 not in found and len(found) == len(CENTRES)  # every disk, each its own label
    assert label_at(labels, image.data_to_world((0, 0))) == 0  # background


def zoom_on(viewer, world_centre, zoom):
    viewer.camera.center = world_centre
    viewer.camera.zoom = zoom


def visible_world(viewer):
    """The world rectangle (low, high) of the displayed axes the canvas shows."""
    half = np.asarray(viewer.canvas.size, dtype=float) / (2 * viewer.camera.zoom)
    centre = np.asarray(viewer.camera.center[-2:])
    return centre - half, centre + half


def test_field_of_view_run_covers_only_the_visible_region(dock, qtbot):
    viewer, widget = dock(pyramid(), multiscale=True, name="pyr", scale=(0.5, 0.5), translate=(10, 20))
    image = viewer.layers["pyr"]
    widget.level.value = 1
    zoom_on(viewer, image.data_to_world((128, 128)), 2 * min(viewer.canvas.size) / 120)
    low, high = visible_world(viewer)
    widget.region.value = "visible field of view"
    run_and_wait(widget, qtbot)
    labels = viewer.layers["pyr spectral"]
    assert labels.data.shape[0] < 256 and labels.data.shape[1] < 256  # only part of level 1
    np.testing.assert_allclose(labels.scale, (1.0, 1.0))
    # The layer's corners lie within the view (up to a level-1 pixel).
    first, last = labels.data_to_world((0, 0)), labels.data_to_world(np.asarray(labels.data.shape) - 1)
    assert np.all(first >= low - 1.0) and np.all(last <= high + 1.0)
    assert labels.metadata["spectral_seg"]["region_offset"] == list(
        np.round((np.asarray(labels.translate) - (10, 20)) / 1.0).astype(int)
    )
    # Disks in view are labelled at their world position; those out of view are not covered.
    for centre in CENTRES:
        world = np.asarray(image.data_to_world(centre))
        in_view = np.all(world > low + 8) and np.all(world < high - 8)
        if in_view:
            assert label_at(labels, world) > 0, centre
        elif np.any(world < low - 1) or np.any(world > high + 1):
            assert label_at(labels, world) == 0, centre


def test_field_of_view_of_a_dask_layer(dock, qtbot):
    image = da.from_array(disks(), chunks=128)
    viewer, widget = dock(image, name="lazy")
    assert widget.level.native.isHidden()
    zoom_on(viewer, (200, 300), min(viewer.canvas.size) / 150)
    low, high = visible_world(viewer)
    widget.region.value = "visible field of view"
    run_and_wait(widget, qtbot)
    labels = viewer.layers["lazy spectral"]
    assert labels.data.shape[0] < 512 and labels.data.shape[1] < 512
    offset = np.asarray(labels.translate)
    assert np.all(offset >= np.floor(low) - 1) and np.all(offset + labels.data.shape <= np.ceil(high) + 2)
    for centre in CENTRES:
        if np.all(np.asarray(centre) > low + 30) and np.all(np.asarray(centre) < high - 30):
            assert label_at(labels, centre) > 0, centre


def test_field_of_view_outside_the_image_says_what_to_do(dock, qtbot):
    viewer, widget = dock(disks(), name="plain")
    zoom_on(viewer, (5000, 5000), 4.0)
    widget.region.value = "visible field of view"
    widget.run.native.click()
    assert not widget.running
    assert widget.status.value.startswith("not started: ")
    assert "region" in widget.status.tooltip


def test_placement_geometry_follows_a_rotated_layer():
    from napari.layers import Image, Labels

    from napari_spectral_seg._widget.layers import result_geometry
    from napari_spectral_seg._widget.levels import Placement, placement_geometry

    image = Image(pyramid(), multiscale=True, rotate=30, shear=[0.2], scale=(2, 3), translate=(5, 7))
    placement = Placement(level=1, factors=(2.0, 2.0), offset=(10, 20), shape=(30, 40))
    geometry = placement_geometry(image, placement, 2, result_geometry(image, 2))
    labels = Labels(np.zeros((30, 40), dtype=int), **geometry)
    for pixel in [(0, 0), (5, 7), (29, 39)]:
        full_resolution = (np.asarray(pixel) + placement.offset) * 2
        np.testing.assert_allclose(labels.data_to_world(pixel), image.data_to_world(full_resolution), atol=1e-9)


def test_a_run_in_a_box_takes_the_frame_mask_and_seed_points_in_the_box():
    from napari.layers import Image, Labels, Points, Shapes

    from napari_spectral_seg._widget.layers import collect_job
    from napari_spectral_seg._widget.levels import Placement
    from napari_spectral_seg.core.params import SegmentationParams

    movie = da.from_array(np.stack([disks(), disks()]), chunks=(1, 128, 128))
    levels = [movie, movie[:, ::2, ::2]]
    layer = Image(levels, multiscale=True)
    placement = Placement(level=1, factors=(2.0, 2.0), offset=(16, 48), shape=(64, 32))
    seeds = Points([[1, 128, 128], [1, 140, 140], [1, 400, 400]])  # the last is outside the box
    job = collect_job(
        layer, None, seeds, SegmentationParams(), dims=2, all_frames=False, dims_point=(1, 0, 0), placement=placement
    )
    assert job.frame_index == (1,)
    assert isinstance(job.image, da.Array) and job.image.shape == (64, 32)  # still lazy
    np.testing.assert_array_equal(job.image.compute(), movie[1, 32:160:2, 96:160:2].compute())
    np.testing.assert_allclose(job.params.seeds, [[48, 16], [54, 22]])
    # A Shapes region is rasterised on the box's grid, a full-resolution Labels mask is strided into it.
    square = Shapes([[[64, 96], [64, 160], [128, 160], [128, 96]]], shape_type="rectangle")
    job = collect_job(
        layer, square, None, SegmentationParams(), dims=2, all_frames=False, dims_point=(0, 0, 0), placement=placement
    )
    mask = job.mask.rasterise()  # vertices on the box's grid, filled by the engine
    assert mask.shape == (64, 32) and mask[20, 10] and not mask[5, 10]
    painted = np.zeros((2, 512, 512), dtype=np.int32)
    painted[:, 100:110, 100:110] = 3
    job = collect_job(
        layer,
        Labels(painted),
        None,
        SegmentationParams(),
        dims=2,
        all_frames=True,
        dims_point=(0, 0, 0),
        placement=placement,
    )
    assert job.image.shape == (2, 64, 32) and job.mask.shape == (2, 64, 32)
    np.testing.assert_array_equal(np.asarray(job.mask), painted[:, 32:160:2, 96:160:2])


def test_field_of_view_of_a_movie_frame_lands_in_its_frame(dock, qtbot):
    viewer, widget = dock(np.stack([disks(), disks()]), name="movie", axis_labels=("t", "y", "x"))
    viewer.dims.set_current_step(0, 1)
    zoom_on(viewer, (128, 128), min(viewer.canvas.size) / 150)
    widget.region.value = "visible field of view"
    run_and_wait(widget, qtbot)
    labels = viewer.layers["movie spectral"]
    assert labels.data.shape[0] == 2 and labels.data.shape[1] < 512
    assert labels.data[0].max() == 0 and labels.data[1].max() > 0  # the frame shown only
    assert label_at(labels, (1, 64, 64)) > 0 and label_at(labels, (1, 448, 448)) == 0  # a disk in view, one out
