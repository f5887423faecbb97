"""Seeds from points, split by click, merge by click: core and widget."""

import numpy as np
import pytest
from conftest import ari_against_truth
from napari.utils.notifications import notification_manager

from napari_spectral_seg import segment
from napari_spectral_seg.core import merge_labels, split_label
from napari_spectral_seg.data import four_circles

# One point inside each circle, in an order that is not the circles' order.
POINTS = [(67, 58), (28, 24), (24, 70), (40, 50)]
TRUE_ID = [3, 1, 4, 2]


def test_one_circle_per_point_in_point_order(circles):
    image, mask, truth = circles
    labels = segment(image, mask, seeds=POINTS, random_state=0)
    for i, (point, true_id) in enumerate(zip(POINTS, TRUE_ID), start=1):
        assert labels[point] == i
        # segment i is circle true_id
        inside = truth == true_id
        assert np.mean(labels[inside] == i) > 0.95
    assert ari_against_truth(labels, truth) >= 0.97


def test_two_points_never_share_a_segment(circles):
    image, mask, _ = circles
    # Two points in the same circle: still two segments, each holding its point.
    points = [(28, 20), (28, 28), (67, 58)]
    labels = segment(image, mask, seeds=points, random_state=0)
    assert [labels[p] for p in points] == [1, 2, 3]


def test_components_without_points_are_left_out():
    mask = np.zeros((30, 60), bool)
    mask[5:25, 5:25] = True
    mask[5:25, 35:55] = True
    labels = segment(mask.astype(float), mask, seeds=[(15, 45)], random_state=0)
    assert np.all(labels[5:25, 35:55] == 1) and np.all(labels[5:25, 5:25] == 0)


def test_point_outside_the_mask_is_a_clear_error(circles):
    image, mask, _ = circles
    with pytest.raises(ValueError, match="seed point 2 .* lies outside the mask"):
        segment(image, mask, seeds=[(28, 24), (2, 2)])
    with pytest.raises(ValueError, match="outside the image"):
        segment(image, mask, seeds=[(500, 2)])
    with pytest.raises(ValueError, match=r"seeds has shape"):
        segment(image, mask, seeds=[(1, 2, 3)])


def test_split_of_a_merged_pair_gives_the_two_circles_back(circles):
    image, mask, truth = circles
    labels = segment(image, mask, n_clusters=4, random_state=0)
    a, b = labels[28, 24], labels[40, 50]
    indices, value = merge_labels(labels, a, b)
    merged = labels.copy()
    merged[indices] = value
    assert merged.max() == labels.max() and len(np.unique(merged)) == 4  # 0 + three segments
    indices, values = split_label(image, merged, int(a), random_state=0)
    split = merged.copy()
    split[indices] = values
    assert ari_against_truth(split, truth) >= 0.97
    assert np.all(split[merged != a] == merged[merged != a])  # other segments untouched


def test_split_with_seeds_uses_one_part_per_point(circles):
    image, mask, truth = circles
    labels = mask.astype(np.int32)  # everything is segment 1
    indices, values = split_label(image, labels, 1, seeds=POINTS)
    out = labels.copy()
    out[indices] = values
    assert ari_against_truth(out, truth) >= 0.97
    assert out[POINTS[0]] == 1  # the first point's part keeps the label


def test_merge_refuses_background_and_same_label():
    labels = np.array([[1, 1, 2], [0, 2, 2]])
    with pytest.raises(ValueError, match="two different segments"):
        merge_labels(labels, 1, 1)
    with pytest.raises(ValueError, match="two different segments"):
        merge_labels(labels, 0, 2)


# ---------------------------------------------------------------- widget
PLUGIN = "napari-spectral-seg"


@pytest.fixture
def viewer_widget(viewer_and_widget):
    viewer, widget = viewer_and_widget
    widget.mask.value = viewer.layers["four circles mask"]
    return viewer, widget


def run(widget, qtbot):
    widget.run.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)


def test_widget_seeds_from_a_points_layer(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    image = viewer.layers["four circles"]
    image.scale = (0.5, 0.5)  # points are placed in world coordinates
    viewer.add_points(np.array(POINTS) * 0.5, name="clicks")
    widget.seeds.value = viewer.layers["clicks"]
    run(widget, qtbot)
    labels = viewer.layers["four circles spectral"].data
    assert [labels[p] for p in POINTS] == [1, 2, 3, 4]
    _, _, truth = four_circles(seed=0)
    assert ari_against_truth(labels, truth) >= 0.97


def test_widget_point_outside_mask_notifies(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    viewer.add_points(np.array([(28, 24), (2, 2)]), name="clicks")
    widget.seeds.value = viewer.layers["clicks"]
    run(widget, qtbot)
    assert "four circles spectral" not in viewer.layers
    assert any("lies outside the mask" in str(n.message) for n in notification_manager.records)


def test_widget_merge_then_split_by_clicking_with_undo(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    run(widget, qtbot)
    layer = viewer.layers["four circles spectral"]
    original = layer.data.copy()
    widget.click_mode.value = "merge"
    assert widget._clicks.on_click in layer.mouse_drag_callbacks
    widget.merge_at((28, 24))
    widget.merge_at((40, 50))
    widget.wait()  # edits are computed by the engine
    assert layer.data[28, 24] == layer.data[40, 50]
    assert len(np.unique(layer.data)) == 4
    widget.click_mode.value = "split"
    widget.split_at((28, 24))
    widget.wait()
    _, _, truth = four_circles(seed=0)
    assert ari_against_truth(layer.data, truth) >= 0.97
    layer.undo()  # undo the split
    assert layer.data[28, 24] == layer.data[40, 50]
    layer.undo()  # undo the merge
    np.testing.assert_array_equal(layer.data, original)


def test_widget_split_uses_the_seed_points_inside_the_segment(viewer_widget, qtbot):
    viewer, widget = viewer_widget
    run(widget, qtbot)
    layer = viewer.layers["four circles spectral"]
    a = layer.data[28, 24]
    widget.click_mode.value = "merge"
    widget.merge_at((28, 24))
    widget.merge_at((40, 50))
    widget.wait()
    # Two clicks, as points, say where the two objects are; the split follows them.
    viewer.add_points(np.array([(40, 50), (28, 24)]), name="two clicks")
    widget.seeds.value = viewer.layers["two clicks"]
    widget.click_mode.value = "split"
    widget.split_at((28, 24), layer)
    widget.wait()
    assert layer.data[40, 50] == a  # the first point's part keeps the label
    assert layer.data[28, 24] != a and layer.data[28, 24] > 0
    _, _, truth = four_circles(seed=0)
    assert ari_against_truth(layer.data, truth) >= 0.97
