import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from napari_spectral_seg.data import four_circles


def ari_against_truth(labels, truth):
    """Adjusted Rand index on the pixels that belong to exactly one true segment."""
    inside = truth > 0
    return adjusted_rand_score(truth[inside], labels[inside])


@pytest.fixture
def circles():
    """The seed example: (image, mask, truth), noise seed 0."""
    return four_circles(size=100, noise=0.2, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
