"""6000^2 mosaic of touching_blobs tiles (~11,000 pieces) and a 3,600-nuclei image; saved as .npy."""

import numpy as np

from napari_spectral_seg.data import touching_blobs


def mosaic(size, tile, per_tile, radius, touch, seed0):
    image = np.zeros((size, size), np.float32)
    truth_n = 0
    for i, y in enumerate(range(0, size, tile)):
        for j, x in enumerate(range(0, size, tile)):
            t, truth = touching_blobs(
                (tile, tile), per_tile, radius_range=radius, touch_fraction=touch, seed=seed0 + i * 100 + j
            )
            image[y : y + tile, x : x + tile] = t[: size - y, : size - x]
            truth_n += truth.max()
    return image, truth_n


big, n = mosaic(6000, 400, 70, (9.0, 15.0), 0.2, 1000)
np.save("big6000.npy", big)
print("big6000", big.shape, n, "objects")
small, n = mosaic(1200, 200, 100, (5.0, 7.5), 0.0, 5000)
np.save("nuc3600.npy", small)
print("nuc3600", small.shape, n, "objects")
