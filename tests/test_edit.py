"""Editing a segmentation: split_label and merge_labels refuse what they cannot do right."""

import numpy as np
import pytest

from napari_spectral_seg.core import merge_labels, split_label
from napari_spectral_seg.data import four_circles


@pytest.fixture
def two_circles():
    """An image and a label image holding its four circles as one segment (label 1)."""
    image, mask, _ = four_circles(size=40, seed=0)
    labels = np.zeros(image.shape, np.int32)
    labels[mask] = 1
    return image, labels


@pytest.mark.parametrize("dtype, label", [(np.uint8, 255), (np.int8, 127), (np.uint16, 65535)])
def test_split_refuses_labels_whose_dtype_cannot_hold_the_new_part(two_circles, dtype, label):
    image, labels = two_circles
    small = (labels * label).astype(dtype)
    with pytest.raises(ValueError, match=f"labels has dtype {np.dtype(dtype)}.*wider dtype"):
        split_label(image, small, label, random_state=0)


@pytest.mark.parametrize("dtype, wider", [(np.uint8, "int32"), (np.int32, "int64"), (np.uint32, "int64")])
def test_the_refusal_names_a_dtype_wider_than_the_labels_one(two_circles, dtype, wider):
    # Attack (rerun): int32 labels at 2**31 - 1 were told to convert to np.int32, the dtype they had.
    image, labels = two_circles
    top = int(np.iinfo(dtype).max)
    full = labels.astype(dtype) * dtype(top)
    with pytest.raises(ValueError, match=rf"e\.g\. labels\.astype\(np\.{wider}\)\.$"):
        split_label(image, full, top, random_state=0)
    indices, values = split_label(image, full.astype(wider), top, random_state=0)
    assert set(np.unique(values)) == {top, top + 1}


def test_split_at_the_top_of_a_dtype_works_once_the_labels_are_wider(two_circles):
    image, labels = two_circles
    wide = (labels * 255).astype(np.uint8).astype(np.int32)
    indices, values = split_label(image, wide, 255, random_state=0)
    assert values.dtype == np.int32 and set(np.unique(values)) == {255, 256}
    assert len(indices[0]) == int((labels == 1).sum())  # every pixel keeps a segment: none becomes background


def test_split_keeps_the_labels_dtype_where_the_new_part_fits(two_circles):
    image, labels = two_circles
    indices, values = split_label(image, labels.astype(np.uint8), 1, random_state=0)
    assert values.dtype == np.uint8 and set(np.unique(values)) == {1, 2}


def test_split_refuses_labels_of_another_shape_than_the_image(two_circles):
    image, labels = two_circles
    with pytest.raises(ValueError, match=r"labels has shape \(40, 39\) but the image's spatial shape is \(40, 40\)"):
        split_label(image, labels[:, :-1], 1, random_state=0)
    rgb = np.stack([image] * 3, axis=-1)
    with pytest.raises(ValueError, match="labels has shape"):
        split_label(rgb, labels, 1, random_state=0)  # without channel_axis the image is 3D
    indices, values = split_label(rgb, labels, 1, channel_axis=-1, random_state=0)
    assert set(np.unique(values)) == {1, 2}


def test_split_refuses_a_label_that_is_not_a_segment(two_circles):
    image, labels = two_circles
    with pytest.raises(ValueError, match="label=3 is not a segment"):
        split_label(image, labels, 3)
    with pytest.raises(ValueError, match="integer label image"):
        split_label(image, labels.astype(float), 1)


def test_merge_refuses_labels_that_do_not_exist():
    labels = np.array([[1, 1, 2], [0, 2, 2]], np.int32)
    indices, value = merge_labels(labels, 1, 2)
    assert value == 1 and len(indices[0]) == 3
    with pytest.raises(ValueError, match="keep=5 is not a segment"):
        merge_labels(labels, 5, 2)
    with pytest.raises(ValueError, match="other=7 is not a segment"):
        merge_labels(labels, 1, 7)
    with pytest.raises(ValueError, match="two different segments"):
        merge_labels(labels, 2, 2)


@pytest.mark.parametrize("label", [None, "1", 1.5, True])
def test_a_label_that_is_not_a_whole_number_is_refused_by_name(two_circles, label):
    # issue 17: None or a string gave "'<=' not supported between instances of 'NoneType' and 'int'".
    image, labels = two_circles
    with pytest.raises(ValueError, match=r"^label=.* must be a whole number"):
        split_label(image, labels, label)
    with pytest.raises(ValueError, match=r"^keep=.* must be a whole number"):
        merge_labels(labels, label, 1)
    with pytest.raises(ValueError, match=r"^other=.* must be a whole number"):
        merge_labels(labels, 1, label)
