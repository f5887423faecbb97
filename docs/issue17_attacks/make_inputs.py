import sys
from pathlib import Path

import numpy as np
import tifffile

from napari_spectral_seg.data import touching_blobs

out = Path(sys.argv[1])
out.mkdir(exist_ok=True)
n = int(sys.argv[2])
size = int(sys.argv[3])
for i in range(n):
    image, _ = touching_blobs((size, size), size * size // 1500, seed=i)
    tifffile.imwrite(out / f"img{i}.tif", image.astype(np.float32))
