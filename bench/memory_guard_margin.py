"""The memory guard's estimate against a run's measured rise in memory, and where the peak is.

``python bench/memory_guard_margin.py IMAGE.npy [KWARGS-JSON]`` runs
``segment(image, **kwargs)`` and prints one JSON line: the guard's estimate
(``core.memory.check_run``), the rise of the resident memory over the call
(sampled every 5 ms, and ``ru_maxrss``), their ratio, and the package's
functions on the main thread's stack when the highest sample was taken.
Make the 6000 x 6000 nuclei mosaic of ``docs/issue17_rerun.md`` with
``docs/issue17_attacks/make_big.py``.
"""

import json
import os
import resource
import sys
import threading
import time

import numpy as np

from napari_spectral_seg import segment
from napari_spectral_seg.core import pipeline

_PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def main() -> None:
    estimates = []
    real_check = pipeline.check_run

    def recording_check(*args, **kwargs):
        run = real_check(*args, **kwargs)
        estimates.append(run)
        return run

    pipeline.check_run = recording_check
    image = np.load(sys.argv[1])
    kwargs = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    main_id = threading.get_ident()
    peak = {"bytes": 0, "where": []}
    by_step = {}  # the package's innermost function on the stack -> the highest sample there
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            now = resident_bytes()
            frame, where = sys._current_frames().get(main_id), []
            while frame is not None:
                if "napari_spectral_seg" in frame.f_code.co_filename:
                    where.append(f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}")
                frame = frame.f_back
            if where:
                by_step[where[0]] = max(by_step.get(where[0], 0), now)
            if now > peak["bytes"]:
                peak.update(bytes=now, where=where[::-1])

    before = resident_bytes()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    labels = segment(image, **kwargs)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    gib = 2.0**30
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    run = estimates[-1]
    rise = max(peak["bytes"], maxrss) - before
    print(
        json.dumps(
            dict(
                image=sys.argv[1],
                kwargs=kwargs,
                segments=int(labels.max()),
                wall_s=round(wall, 1),
                before_gib=round(before / gib, 3),
                rise_gib=round(rise / gib, 3),
                estimate_gib=round(run.peak_bytes / gib, 3),
                estimate_over_rise=round(run.peak_bytes / rise, 3),
                piece_size=run.piece_size,
                piece_solver=run.piece_solver,
                peak_at=peak["where"],
                rise_gib_by_step={
                    step: round((value - before) / gib, 3)
                    for step, value in sorted(by_step.items(), key=lambda item: -item[1])[:8]
                },
            )
        )
    )


if __name__ == "__main__":
    main()
