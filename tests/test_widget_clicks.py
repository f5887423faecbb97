"""Click-to-split / merge on plain napari layers (no viewer, no Qt)."""

import numpy as np
import pytest
from napari.components import LayerList
from napari.layers import Image, Labels, Points

from napari_spectral_seg import segment
from napari_spectral_seg._widget.clicks import ClickEditor, clicked_frame, in_frame, label_under
from napari_spectral_seg._widget.layers import METADATA_KEY
from napari_spectral_seg.data import four_circles


def result_of(labels, **metadata):
    return Labels(
        labels, name="result", metadata={METADATA_KEY: dict(image="img", beta=1.0, random_state=0, **metadata)}
    )


def test_label_under_a_world_position_and_the_frame_it_is_in():
    layer = result_of(np.array([[[0, 1], [2, 2]], [[3, 0], [0, 0]]]), spacing=[1.0, 1.0])
    layer.scale = (1, 2, 2)
    assert label_under(layer, (1, 0, 0)) == ((1, 0, 0), 3)
    assert label_under(layer, (0, 2, 2)) == ((0, 1, 1), 2)
    with pytest.raises(ValueError, match="outside the segmentation"):
        label_under(layer, (0, 9, 9))
    assert clicked_frame(layer, (1, 0, 0)) == (1,)
    assert clicked_frame(result_of(np.zeros((3, 4, 5), int), spacing=None), (1, 2, 3)) == ()  # a volume
    rows, cols = np.array([0, 1]), np.array([2, 3])
    stacked = in_frame((4,), (rows, cols))
    assert [a.tolist() for a in stacked] == [[4, 4], [0, 1], [2, 3]]
    assert in_frame((), (rows, cols)) == (rows, cols)


def test_merge_then_split_with_undo_on_a_layer_list():
    image, mask, _ = four_circles(seed=0)
    layers = LayerList()
    layers.append(Image(image, name="img"))
    labels = segment(image, mask, n_clusters=4, random_state=0)
    layer = result_of(labels, spacing=[1.0, 1.0], sigma=None)
    layers.append(layer)
    statuses = []
    editor = ClickEditor(layers, lambda: None, statuses.append)
    editor.install("merge")
    assert editor.on_click in layer.mouse_drag_callbacks
    editor.merge_at((28, 24))
    editor.merge_at((40, 50))
    assert layer.data[28, 24] == layer.data[40, 50] and len(np.unique(layer.data)) == 4
    assert statuses[-1].startswith("merged label")
    editor.install("split")
    editor.split_at((28, 24))
    assert layer.data[28, 24] != layer.data[40, 50] and statuses[-1].startswith("split label")
    layer.undo()
    layer.undo()
    np.testing.assert_array_equal(layer.data, labels)
    with pytest.raises(ValueError, match="on the background"):
        editor.split_at((0, 0))
    editor.install("off")
    assert editor.on_click not in layer.mouse_drag_callbacks


def test_split_follows_two_seed_points_inside_the_segment():
    image, mask, _ = four_circles(seed=0)
    layers = LayerList()
    layers.append(Image(image, name="img"))
    labels = segment(image, mask, n_clusters=4, random_state=0)
    merged = labels.copy()
    merged[labels == labels[40, 50]] = labels[28, 24]
    layer = result_of(merged, spacing=[1.0, 1.0], sigma=None)
    layers.append(layer)
    points = Points(np.array([(40, 50), (28, 24)]))
    editor = ClickEditor(layers, lambda: points, lambda status: None)
    editor.install("split")
    editor.split_at((28, 24))
    assert layer.data[40, 50] == labels[28, 24]  # the first point's part keeps the label
    assert layer.data[28, 24] not in (0, labels[28, 24])
