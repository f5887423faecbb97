"""What a fresh process pays: the command line's `segment` against a warm call plus interpreter start.

Run: `.venv/bin/python bench/cold_start.py [--size 1600] [--repeat 5]`

Each figure is the median of ``--repeat`` fresh processes, measured side by
side in the same run (so a busy machine slows all of them alike):

* ``interpreter``: ``python -c "import napari_spectral_seg.cli"`` (Python and
  the command line's imports), wall time of the process;
* ``cli``: ``python -m napari_spectral_seg.cli segment`` on the four circles
  (``--size``², with their mask, 4 segments, seed 0) saved as .npy, wall
  time of the process;
* ``first_call`` / ``warm_call``: in one fresh process, the first and the
  third ``segment()`` call on the same image; ``first_call_prepared``: the
  first call after :func:`napari_spectral_seg.core.warm.prepare` (what the
  command line does before it reads the image);
* CPU time (user + system) of each process (and of each call) beside its
  wall time: a loaded machine inflates wall time, much less CPU time.

``cli_ratio`` = cli / (interpreter + warm_call): the target is <= 1.10
(``cli_ratio_cpu`` the same in CPU time).
Prints and writes bench/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench_support import error_text, exit_missing, save_results

try:
    import numpy as np

    from napari_spectral_seg.data import four_circles
except ImportError as _err:
    exit_missing(_err, __file__)

CALLS = """
import sys, time, numpy as np
from napari_spectral_seg import segment
image, mask = np.load(sys.argv[1]), np.load(sys.argv[2])
if sys.argv[3] == "prepared":
    from napari_spectral_seg.core.warm import prepare
    prepare()
times = []
for _ in range(3):
    started, cpu = time.perf_counter(), time.process_time()
    segment(image, mask, n_clusters=4, random_state=0)
    times += [time.perf_counter() - started, time.process_time() - cpu]
print(" ".join(str(t) for t in times))
"""


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system) of a child process, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def one_round(folder: Path) -> dict:
    image, mask = folder / "image.npy", folder / "mask.npy"
    python = sys.executable
    row = {}
    row["interpreter"], row["interpreter_cpu"], _ = timed([python, "-c", "import napari_spectral_seg.cli"])
    cli = [python, "-m", "napari_spectral_seg.cli", "segment", str(image), "--mask", str(mask)]
    cli += ["--n-clusters", "4", "--seed", "0", "-o", str(folder / "labels.npy")]
    row["cli"], row["cli_cpu"], _ = timed(cli)
    _, _, out = timed([python, "-c", CALLS, str(image), str(mask), "plain"])
    calls = [float(v) for v in out.split()]
    row["first_call"], row["first_call_cpu"], row["warm_call"], row["warm_call_cpu"] = calls[:2] + calls[4:]
    _, _, out = timed([python, "-c", CALLS, str(image), str(mask), "prepared"])
    row["first_call_prepared"], row["first_call_prepared_cpu"] = (float(v) for v in out.split()[:2])
    return row


def measure(size: int, repeat: int) -> dict:
    image, mask, _ = four_circles(size=size, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        np.save(folder / "image.npy", image)
        np.save(folder / "mask.npy", mask)
        rounds = [one_round(folder) for _ in range(repeat)]
    medians = {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}
    medians["cli_ratio"] = round(medians["cli"] / (medians["interpreter"] + medians["warm_call"]), 3)
    medians["cli_ratio_cpu"] = round(medians["cli_cpu"] / (medians["interpreter_cpu"] + medians["warm_call_cpu"]), 3)
    for suffix in ("", "_cpu"):
        warm = medians[f"warm_call{suffix}"]
        medians[f"first_over_warm{suffix}"] = round(medians[f"first_call{suffix}"] - warm, 3)
        medians[f"first_prepared_over_warm{suffix}"] = round(medians[f"first_call_prepared{suffix}"] - warm, 3)
    return dict(size=size, repeat=repeat, target_cli_ratio=1.10, medians=medians, rounds=rounds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1600)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cold_start.json")
    args = parser.parse_args(argv)
    try:
        result, failures = measure(args.size, args.repeat), []
    except Exception as exc:  # reported, and the run fails
        result = dict(size=args.size, error=error_text(exc))
        failures = [result["error"]]
    print(json.dumps(result, indent=2))
    return save_results([args.out], result, failures, indent=2)


if __name__ == "__main__":
    sys.exit(main())
