"""Blockwise against in-memory segmentation of one large field of touching nuclei.

    .venv/bin/python bench/blockwise.py            # 3072^2, ~11,900 nuclei, block 1024, 2 workers
    .venv/bin/python bench/blockwise.py --quick    # 1024^2, block 512: a minute
    .venv/bin/python bench/blockwise.py --size 8192 --block-size 2048   # 67 MP, blockwise only

Above 4096^2 the in-memory run is left out (it would need far more than the 2 GiB per process
the blockwise run is held to): only the blockwise run's time, throughput and memory are reported.

The image is 512^2 tiles of ``touching_blobs`` (330 nuclei each, radius 5-9 px, a different
seed per tile) stored as a zarr array. Both runs get the same parameters, the call the README
recommends: ``threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto",
random_state=0``, the dim-object search at its default ``low_threshold="auto"``. Each runs in a fresh process: in memory, ``iter_segment`` on the whole array;
blockwise, ``segment_blockwise`` on a local cluster of ``--workers`` processes (one thread each).

Reported: F1 at IoU 0.5 of the blockwise labels against the in-memory ones (the in-memory
labels as truth), objects identical pixel for pixel, in-memory objects crossing a block seam and
how many of them the blockwise labels split, the wall times and their ratio, and the peak
resident memory (``ru_maxrss``) of the in-memory process, the blockwise client and each worker,
with the bound the README's formula gives for a worker. Results: ``bench/results/blockwise.json``
(a ``--quick`` run or a changed size writes ``blockwise-quick.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench_support import error_text, exit_missing, save_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TILE = 512
PER_TILE = 330
# The defaults otherwise, the dim-object search (low_threshold="auto") included.
PARAMS = dict(threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto", random_state=0)
# What both runs record of their decisions, compared.
DECIDED = ("threshold_used", "sigma_used", "min_size_used", "low_threshold_used", "dim_objects")
# The README's bound on a worker's peak memory: BASE plus BYTES_PER_PIXEL per pixel of the
# largest region or sample it holds (see "Blockwise" in the README).
BASE_BYTES = 400 * 2**20
BYTES_PER_PIXEL = 300

IN_MEMORY = """
import json, resource, sys, time
import numpy as np, zarr
from napari_spectral_seg.core import iter_segment
from napari_spectral_seg.core.progress import run_to_end
from napari_spectral_seg.core.auto import recipe
image_path, out, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
# The typical size the run takes, recorded as it is taken (segment() does not report it).
typical, measure = [], recipe._typical
recipe._typical = lambda *args: typical.append(measure(*args)) or typical[-1]
started = time.perf_counter()
image = np.asarray(zarr.open_array(image_path, mode="r"))
result = run_to_end(iter_segment(image, None, **params))
seconds = time.perf_counter() - started
np.save(out, result.labels)
keep = ("threshold_used", "sigma_used", "min_size_used", "typical_radius", "low_threshold_used", "dim_objects")
print(json.dumps(dict(seconds=seconds, peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      n_labels=int(result.labels.max()), object_size=typical[-1] if typical else None,
                      **{k: result.parameters.get(k) for k in keep})))
"""

BLOCKWISE = """
import json, logging, resource, sys, time
from distributed import Client, LocalCluster
from napari_spectral_seg.blockwise import segment_blockwise
image_path, out, params, block, workers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sample = json.loads(sys.argv[6])
def peak():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                  silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
    idle = list(client.run(peak).values())
    started = time.perf_counter()
    summary = segment_blockwise(image_path, out, block_size=block, client=client, sample_pixels=sample, **params)
    seconds = time.perf_counter() - started
    worker_peaks = list(client.run(peak).values())
summary.pop("block_summaries")
print(json.dumps(dict(seconds=seconds, client_peak_rss=peak(), worker_peak_rss=worker_peaks, worker_idle_rss=idle,
                      summary=summary)))
"""


def make_image(size: int, path: Path) -> int:
    """A ``size``^2 float32 zarr array of touching-nuclei tiles; returns the number of nuclei."""
    import zarr

    from napari_spectral_seg import touching_blobs

    store = zarr.create_array(str(path), shape=(size, size), chunks=(TILE, TILE), dtype="f4", overwrite=True)
    n = 0
    # Tiles start half a tile before the origin, so the seams between tiles (where objects are
    # clipped) fall in the middle of blocks and objects lie across the block seams.
    starts = range(-TILE // 2, size, TILE)
    for i, y in enumerate(starts):
        for j, x in enumerate(starts):
            tile, truth = touching_blobs((TILE, TILE), PER_TILE, radius_range=(5.0, 9.0), seed=1000 + i * 64 + j)
            ys, xs = slice(max(y, 0), min(y + TILE, size)), slice(max(x, 0), min(x + TILE, size))
            part = (slice(ys.start - y, ys.stop - y), slice(xs.start - x, xs.stop - x))
            store[ys, xs] = tile[part].astype("f4")
            n += len(np.unique(truth[part])) - 1
    store.attrs["nuclei"] = n
    return n


def _run(code: str, *args) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def seam_objects(reference: np.ndarray, found: np.ndarray, block: int) -> tuple[int, int]:
    """In-memory objects whose box crosses a block seam, and how many of them ``found`` splits."""
    import scipy.ndimage as ndi

    crossing = split = 0
    for label, where in enumerate(ndi.find_objects(reference), start=1):
        if where is None:
            continue
        if not any((s.start // block) != ((s.stop - 1) // block) for s in where):
            continue
        crossing += 1
        inside = found[where][reference[where] == label]
        values, counts = np.unique(inside[inside > 0], return_counts=True)
        # Split: a second blockwise label holds a tenth of the object or more.
        if len(values) > 1 and np.sort(counts)[-2] >= 0.1 * inside.size:
            split += 1
    return crossing, split


def identical_objects(reference: np.ndarray, found: np.ndarray) -> int:
    """Objects of ``reference`` that ``found`` has exactly (same pixels), up to the label numbers."""
    ref = reference.ravel().astype(np.int64)
    got = found.ravel().astype(np.int64)
    both = (ref > 0) | (got > 0)
    pairs, counts = np.unique(np.stack([ref[both], got[both]]), axis=1, return_counts=True)
    size_ref = np.bincount(ref)
    size_got = np.bincount(got)
    a, b = pairs
    exact = (a > 0) & (b > 0) & (counts == size_ref[a]) & (counts == size_got[b])
    return int(exact.sum())


def compare(reference: np.ndarray, found: np.ndarray, block: int) -> dict:
    from _scoring import score

    s = score(reference, found)
    f1 = 2 * s["tp"] / max(s["n_true"] + s["n_pred"], 1)
    crossing, split = seam_objects(reference, found, block)
    return dict(
        f1=round(f1, 5),
        objects_in_memory=s["n_true"],
        objects_blockwise=s["n_pred"],
        identical=identical_objects(reference, found),
        seam_objects=crossing,
        seam_objects_split=split,
    )


def worker_bound(summary: dict, block: int) -> int:
    """The README's bound for a worker: base + bytes per pixel of its largest region, sample or typical-size box."""
    decisions = summary["decisions"]
    region = (block + 2 * decisions["overlap"]) ** 2
    box = decisions["sample_box"] or [[0, 0], [0, 0]]
    sample = int(np.prod([b - a for a, b in box]))
    typical = decisions.get("typical") or {}
    reach = max([typical.get("start_reach", 0), *typical.get("grown_blocks", {}).values()])
    return BASE_BYTES + BYTES_PER_PIXEL * max(region, sample, (block + 2 * reach) ** 2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1024^2, block 512")
    parser.add_argument("--size", type=int, default=None, help="image side, a multiple of 512 (default 3072)")
    parser.add_argument("--block-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="keep the image and outputs here (default: a temporary folder)")
    parser.add_argument(
        "--sample-pixels", type=int, default=None, help="sample for the image-chosen settings (default: 4 blocks)"
    )
    parser.add_argument(
        "--in-memory",
        choices=("auto", "yes", "no"),
        default="auto",
        help="also segment in memory and compare (auto: up to 4096^2)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the image and the in-memory run an earlier run left in --workdir (same size)",
    )
    parser.add_argument("--out", default=None, help="results JSON (default: bench/results/blockwise.json, or -quick)")
    args = parser.parse_args(argv)
    try:
        import distributed  # noqa: F401
        import ome_zarr  # noqa: F401
        import zarr  # noqa: F401

        import napari_spectral_seg  # noqa: F401
    except ImportError as err:
        exit_missing(err, "bench/blockwise.py")
    size = args.size or (1024 if args.quick else 3072)
    block = args.block_size or (512 if args.quick else 1024)
    tracked = size == 3072 and block == 1024 and args.workers == 2 and args.sample_pixels is None
    with_memory = args.in_memory == "yes" or (args.in_memory == "auto" and size <= 4096)
    default_name = "blockwise.json" if tracked else "blockwise-quick.json"
    if size >= 8192:
        default_name = f"blockwise-{size}.json"
    out = Path(args.out) if args.out else RESULTS / default_name
    started = dict(utc=_utc(), load=os.getloadavg()[0])
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.workdir or temporary)
        work.mkdir(parents=True, exist_ok=True)
        try:
            row = run_case(work, size, block, args.workers, args.sample_pixels, with_memory, args.reuse)
            failures = []
        except Exception as exc:
            row, failures = dict(size=size, block=block, error=error_text(exc)), [error_text(exc)]
    print(json.dumps(row, indent=1))
    payload = dict(command=" ".join(["bench/blockwise.py", *(argv if argv is not None else sys.argv[1:])]), **row)
    payload.update(
        commit=_commit(),
        utc=f"{started['utc']} - {_utc()}",
        load_average=f"{started['load']:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (1-min)",
    )
    return save_results([out], payload, failures, indent=1)


def _utc() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def _commit() -> str:
    """The checked-out commit, marked when the engine or this script differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        changed = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "bench/blockwise.py"],
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    commit = head.stdout.strip() or "unknown"
    return f"{commit} with uncommitted changes" if changed.stdout.strip() else commit


def run_case(
    work: Path,
    size: int,
    block: int,
    workers: int,
    sample_pixels: int | None = None,
    with_memory: bool = True,
    reuse: bool = False,
) -> dict:
    image = work / f"nuclei-{size}.zarr"
    started = time.perf_counter()
    n_nuclei = reused_image(image, size) if reuse else None
    if n_nuclei is None:
        n_nuclei = make_image(size, image)
    print(f"image {size}^2: {n_nuclei} nuclei ({time.perf_counter() - started:.0f} s to make or reuse)", flush=True)
    params = json.dumps(PARAMS)
    output = work / "blockwise.zarr"
    if output.exists():
        import shutil

        shutil.rmtree(output)
    blockwise = _run(BLOCKWISE, image, output, params, block, workers, json.dumps(sample_pixels))
    print(f"blockwise: {blockwise['seconds']:.1f} s", flush=True)
    row = dict(size=size, block=block, workers=workers, nuclei=n_nuclei)
    if with_memory:
        row.update(in_memory_row(work, image, params, output, block, blockwise["seconds"], reuse))
    return dict(row, **blockwise_row(blockwise, size, block, workers))


def reused_image(image: Path, size: int) -> int | None:
    """The number of nuclei of an image made before in the work folder (None: there is none of that size)."""
    import zarr

    try:
        array = zarr.open_array(str(image), mode="r")
    except Exception:  # no store there, or not an array
        return None
    return array.attrs.get("nuclei") if array.shape == (size, size) else None


def in_memory_row(
    work: Path, image: Path, params: str, output: Path, block: int, seconds_blockwise: float, reuse: bool = False
) -> dict:
    """Segment ``image`` in memory in a fresh process (or reuse that of an earlier run) and compare."""
    import zarr

    saved = work / "in_memory.json"
    if reuse and saved.exists() and (work / "in_memory.npy").exists():
        memory = json.loads(saved.read_text())
    else:
        memory = _run(IN_MEMORY, image, work / "in_memory.npy", params)
        saved.write_text(json.dumps(memory))
    print(f"in memory: {memory['seconds']:.1f} s, {memory['n_labels']} labels", flush=True)
    found = np.asarray(zarr.open_group(str(output), mode="r")["labels/spectral/s0"])
    reference = np.load(work / "in_memory.npy")
    return dict(
        **compare(reference, found, block),
        seconds_in_memory=round(memory["seconds"], 2),
        time_ratio=round(seconds_blockwise / memory["seconds"], 3),
        peak_rss_in_memory_gib=round(memory["peak_rss"] / 2**30, 3),
        in_memory_decisions={k: memory.get(k) for k in (*DECIDED, "object_size")},
    )


def blockwise_row(blockwise: dict, size: int, block: int, workers: int) -> dict:
    """Time, throughput, memory and decisions of the blockwise run."""
    summary = blockwise["summary"]
    megapixels = size * size / 1e6
    return dict(
        objects_found=summary.get("n_labels"),
        seconds_blockwise=round(blockwise["seconds"], 2),
        megapixels_per_second=round(megapixels / blockwise["seconds"], 4),
        megapixels_per_second_per_worker=round(megapixels / blockwise["seconds"] / workers, 4),
        peak_rss_client_gib=round(blockwise["client_peak_rss"] / 2**30, 3),
        peak_rss_workers_gib=[round(v / 2**30, 3) for v in blockwise["worker_peak_rss"]],
        idle_rss_workers_gib=[round(v / 2**30, 3) for v in blockwise["worker_idle_rss"]],
        worker_bound_gib=round(worker_bound(summary, block) / 2**30, 3),
        within_bound=max(blockwise["worker_peak_rss"]) <= worker_bound(summary, block),
        below_2_gib=max([blockwise["client_peak_rss"], *blockwise["worker_peak_rss"]]) < 2 * 2**30,
        blockwise_decisions={
            **{k: summary["parameters"].get(k) for k in DECIDED},
            "object_size": summary["parameters"]["object_size"],
            "overlap": summary["decisions"]["overlap"],
            "sample_box": summary["decisions"]["sample_box"],
            "typical": summary["decisions"].get("typical"),
        },
        decision_seconds=summary["decisions"]["seconds"],
        phase_seconds={k: round(v, 2) for k, v in summary["phase_seconds"].items()},
        blocks=summary["blocks"],
        skipped_blocks=summary["skipped_blocks"],
        glass=summary["decisions"].get("glass"),
    )


if __name__ == "__main__":
    sys.exit(main())
