"""Sample data for napari's File > Open Sample menu."""

from __future__ import annotations

from .data import four_circles


def four_circles_sample():
    """The scikit-learn example's image (100 x 100, noise 0.2) and its mask.

    Returns
    -------
    list of napari LayerDataTuple
        An image layer "four circles" and a labels layer "four circles mask"
        (the union of the circles, the example's mask).
    """
    image, mask, _ = four_circles(size=100, noise=0.2, seed=0)
    return [
        (image, {"name": "four circles", "colormap": "gray"}, "image"),
        (mask.astype("uint8"), {"name": "four circles mask", "opacity": 0.3, "visible": False}, "labels"),
    ]
