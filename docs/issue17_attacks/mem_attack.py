"""segment() on a saved image with the defaults (plus given n_clusters); the guard's estimate vs the peak RSS."""

import json
import resource
import sys
import time

import numpy as np

from napari_spectral_seg import segment
from napari_spectral_seg.core import pipeline

estimates = []
real_check = pipeline.check_run


def recording_check(*args, **kwargs):
    run = real_check(*args, **kwargs)
    estimates.append(run)
    return run


pipeline.check_run = recording_check

image = np.load(sys.argv[1])
kwargs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
t0, c0 = time.perf_counter(), time.process_time()
labels = segment(image, **kwargs)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
run = estimates[-1]
print(
    json.dumps(
        dict(
            image=sys.argv[1],
            kwargs=kwargs,
            segments=int(labels.max()),
            wall_s=round(wall, 1),
            cpu_s=round(cpu, 1),
            peak_rss_gib=round(peak, 3),
            rss_before_gib=round(rss_before, 3),
            estimate_gib=round(run.peak_bytes / 2**30, 3),
            estimate_seconds=round(run.seconds, 1),
            piece_size=run.piece_size,
            piece_k=run.piece_k,
            piece_solver=run.piece_solver,
        )
    )
)
