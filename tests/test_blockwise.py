"""Blockwise segmentation: the same labels as in memory, object for object; skipped, resumed and killed runs; OME-Zarr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("ome_zarr")
zarr = pytest.importorskip("zarr")

from conftest import read_labels, same_objects, write_zarr  # noqa: E402

from napari_spectral_seg import segment, touching_blobs  # noqa: E402
from napari_spectral_seg.blockwise import BlockwiseError, SourceError, segment_blockwise  # noqa: E402

AUTO = dict(threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto", random_state=0)


@pytest.fixture(scope="module")
def blobs():
    image, _ = touching_blobs((160, 160), 40, seed=5)
    return image.astype(np.float32)


def test_2d_labels_equal_in_memory_object_for_object(tmp_path, client, blobs):
    source = write_zarr(tmp_path / "in.zarr", blobs)
    summary = segment_blockwise(
        source, tmp_path / "out.zarr", block_size=64, client=client, sample_pixels=10**6, **AUTO
    )
    expected = segment(blobs, **AUTO)
    found = read_labels(tmp_path / "out.zarr")
    assert summary["blocks"] == 9 and found.max() == expected.max() == summary["n_labels"]
    assert same_objects(found, expected)
    assert summary["parameters"]["threshold_used"] == pytest.approx(summary["decisions"]["threshold"])
    # Some objects lie across block seams, and come out whole.
    seams = [64, 128]
    crossing = [label for label in range(1, expected.max() + 1) if _crosses(expected == label, seams)]
    assert crossing


def _crosses(mask, seams) -> bool:
    ys, xs = np.nonzero(mask)
    return any(ys.min() < s <= ys.max() or xs.min() < s <= xs.max() for s in seams)


def test_3d_with_spacing_equals_in_memory(tmp_path, client):
    image, _ = touching_blobs((20, 72, 72), 12, seed=2)
    image = image.astype(np.float32)
    params = dict(AUTO, spacing=(2.0, 1.0, 1.0))
    source = write_zarr(tmp_path / "in.zarr", image, chunks=24)
    segment_blockwise(source, tmp_path / "out.zarr", block_size=36, client=client, sample_pixels=10**6, **params)
    expected = segment(image, **params)
    found = read_labels(tmp_path / "out.zarr")
    assert expected.max() > 3
    assert same_objects(found, expected)


def test_objects_on_block_corners_come_out_whole_and_once(tmp_path, client):
    yy, xx = np.mgrid[:128, :128]
    image = (0.1 + 0.01 * np.sin(yy / 7.0) * np.cos(xx / 5.0)).astype(np.float32)
    for cy, cx in [(64, 64), (32, 96), (96, 30)]:  # on the corner of four blocks, and inside blocks
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 12**2
        image[disc] = 1.0 - 0.002 * ((yy - cy) ** 2 + (xx - cx) ** 2)[disc]
    params = dict(threshold="otsu", n_clusters="auto", random_state=0, min_size=20)
    segment_blockwise(
        write_zarr(tmp_path / "in.zarr", image), tmp_path / "o.zarr", block_size=64, client=client, **params
    )
    found = read_labels(tmp_path / "o.zarr")
    assert found.max() == 3
    assert len(np.unique(found[54:75, 54:75])) == 2  # the corner disc: one label (and background)
    assert same_objects(found, segment(image, **params))


def test_blocks_without_foreground_are_skipped(tmp_path, client, blobs):
    image = np.full((160, 320), blobs.min(), np.float32)
    image[:, :160] = blobs  # the right half is background
    summary = segment_blockwise(
        write_zarr(tmp_path / "in.zarr", image), tmp_path / "o.zarr", block_size=64, client=client, **AUTO
    )
    assert summary["skipped_blocks"] >= 3
    skipped = set(b for b in (f"{i}_{j}" for i in range(3) for j in range(5))) - set(summary["decisions"]["foreground"])
    assert {"0_4", "1_4", "2_4"} <= skipped
    assert read_labels(tmp_path / "o.zarr")[:, 200:].max() == 0


def test_an_interrupted_run_resumes_block_by_block(tmp_path, client, blobs):
    source = write_zarr(tmp_path / "in.zarr", blobs)
    output = tmp_path / "out.zarr"

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segment_blockwise(source, output, block_size=64, client=client, progress=stop_after_two, **AUTO)
    assert not output.exists()
    records = list((tmp_path / ".out.zarr.partial" / "_blockwise" / "blocks").glob("*.npz"))
    assert len(records) >= 2
    summary = segment_blockwise(source, output, block_size=64, client=client, **AUTO)
    assert summary["resumed_blocks"] >= 2
    fresh = segment_blockwise(source, tmp_path / "fresh.zarr", block_size=64, client=client, **AUTO)
    assert fresh["resumed_blocks"] == 0
    assert isinstance(summary["parameters"]["object_size"], float)
    assert same_objects(read_labels(output), read_labels(tmp_path / "fresh.zarr"))
    assert not (tmp_path / ".out.zarr.partial").exists()


def test_ome_zarr_round_trip_with_levels_axes_and_voxel_size(tmp_path, client, blobs):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader
    from ome_zarr.writer import write_image

    image = np.concatenate([blobs, blobs], axis=1)  # 160 x 320: levels 1 and 2 are 80 x 160 and 40 x 80
    group = zarr.open_group(str(tmp_path / "image.zarr"), mode="w")
    write_image(
        image,
        group,
        axes="yx",
        axes_units={"y": "micrometer", "x": "micrometer"},
        scale={"y": 0.5, "x": 0.5},
        scale_factors=(2,),
        storage_options={"chunks": (64, 64)},
    )
    params = dict(threshold="otsu", n_clusters="auto", random_state=0, min_size=5)
    summary = segment_blockwise(
        tmp_path / "image.zarr", tmp_path / "out.zarr", block_size=64, client=client, level=1, **params
    )
    labels_path = tmp_path / "out.zarr" / "labels" / "spectral"
    assert summary["labels"] == str(labels_path)
    (node,) = [n for n in Reader(parse_url(str(labels_path)))() if n.data]
    assert any(isinstance(spec, Label) for spec in node.specs) and any(isinstance(s, Multiscales) for s in node.specs)
    assert node.data[0].shape == (80, 160) and len(node.data) >= 1
    attrs = dict(zarr.open_group(str(labels_path), mode="r").attrs)
    ome = attrs.get("ome", attrs)
    scale, shift = ome["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    assert scale["scale"] == [1.0, 1.0]  # level 1 of a 0.5 um image
    source_shift = dict(group.attrs)["ome"]["multiscales"][0]["datasets"][1]["coordinateTransformations"][1]
    assert shift == source_shift  # the labels lie on the pixels they were made from
    assert [a["name"] for a in ome["multiscales"][0]["axes"]] == ["y", "x"]
    assert ome["multiscales"][0]["axes"][0]["unit"] == "micrometer"
    recorded = attrs["spectral_seg"]
    assert recorded["level"] == 1 and recorded["spacing"] == [1.0, 1.0] and recorded["threshold_used"] > 0
    expected = segment(np.asarray(group["s1"]), **dict(params, spacing=(1.0, 1.0)))
    assert same_objects(np.asarray(node.data[0]), expected)


def test_napari_ome_zarr_opens_the_labels_as_a_labels_layer(tmp_path, client, blobs):
    reader = pytest.importorskip("napari_ome_zarr._reader")
    params = dict(threshold="otsu", n_clusters="auto", random_state=0, min_size=5)
    summary = segment_blockwise(
        write_zarr(tmp_path / "in.zarr", blobs), tmp_path / "out.zarr", block_size=64, client=client, **params
    )
    read = reader.napari_get_reader(summary["labels"])
    (layer,) = read(summary["labels"])
    data, kwargs, kind = layer
    assert kind == "labels"
    assert np.asarray(data[0]).max() == summary["n_labels"]


def test_a_tiff_is_read_lazily(tmp_path, client, blobs):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "in.tif", blobs, tile=(64, 64))
    params = dict(threshold="otsu", n_clusters="auto", random_state=0, min_size=20)
    segment_blockwise(
        tmp_path / "in.tif", tmp_path / "out.zarr", block_size=64, client=client, sample_pixels=10**6, **params
    )
    assert same_objects(read_labels(tmp_path / "out.zarr"), segment(blobs, **params))


def test_a_fixed_count_is_one_segment_per_piece_and_refused_when_memory_would_split(tmp_path, client, blobs):
    source = write_zarr(tmp_path / "in.zarr", blobs)
    params = dict(threshold="otsu", n_clusters=4, random_state=0, min_size=20)
    segment_blockwise(source, tmp_path / "out.zarr", block_size=64, client=client, **params)
    assert same_objects(read_labels(tmp_path / "out.zarr"), segment(blobs, **params))
    with pytest.raises(BlockwiseError, match="n_clusters=1000"):
        segment_blockwise(source, tmp_path / "o2.zarr", block_size=64, client=client, **dict(params, n_clusters=1000))


def test_refusals_name_the_parameter(tmp_path, client, blobs):
    source = write_zarr(tmp_path / "in.zarr", blobs)
    with pytest.raises(BlockwiseError, match="threshold=None"):
        segment_blockwise(source, tmp_path / "o.zarr", client=client, threshold=None)
    with pytest.raises(BlockwiseError, match=r"\*\.zarr"):
        segment_blockwise(source, tmp_path / "o.tif", client=client)
    with pytest.raises(SourceError, match="--level 3"):
        segment_blockwise(source, tmp_path / "o.zarr", client=client, level=3)
    (tmp_path / "taken.zarr").mkdir()
    with pytest.raises(BlockwiseError, match="--overwrite"):
        segment_blockwise(source, tmp_path / "taken.zarr", client=client)


def test_command_line_end_to_end_on_a_local_cluster(tmp_path, blobs):
    source = write_zarr(tmp_path / "in.zarr", blobs)
    command = [sys.executable, "-m", "napari_spectral_seg.cli", "segment", str(source), "-o", str(tmp_path / "o.zarr")]
    flags = ["--block-size", "64", "--workers", "1", "--n-clusters", "auto", "--sigma", "auto", "--min-size", "auto"]
    proc = subprocess.run(command + flags, capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "labels/spectral: " in proc.stdout and "9 blocks" in proc.stdout
    expected = segment(blobs, threshold="otsu", n_clusters="auto", sigma="auto", min_size="auto", random_state=0)
    # The sample for sigma/min_size is four blocks here, not the whole image: the figures may differ.
    found = read_labels(tmp_path / "o.zarr")
    assert abs(int(found.max()) - int(expected.max())) <= 0.1 * expected.max()
    again = subprocess.run(command + flags, capture_output=True, text=True, timeout=60, env=_env())
    assert again.returncode == 2 and "--overwrite" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert "not written by napari-spectral-seg" not in again.stderr  # its own output, told apart from another's
    masked = subprocess.run(
        command + flags + ["--mask", str(source)], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert masked.returncode == 2 and "--mask is not supported" in masked.stderr


def _env():
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


KILLER = """
import json, os, signal, sys, logging
import numpy as np
from distributed import Client, LocalCluster
from napari_spectral_seg.blockwise import segment_blockwise
source, output = sys.argv[1], sys.argv[2]
killed = []
def main():
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.CRITICAL) as c, Client(c) as client:
        pids = list(client.run(os.getpid).values())
        def kill_one(done, total):
            if not killed:  # a worker killed while the other blocks run
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
        summary = segment_blockwise(source, output, block_size=48, client=client, progress=kill_one,
                                    threshold="otsu", n_clusters="auto", min_size=20, random_state=0, sample_pixels=10**6)
    print(json.dumps(dict(killed=killed, n_labels=summary["n_labels"], blocks=summary["blocks"])))
if __name__ == "__main__":
    main()
"""


def test_a_killed_worker_is_retried_without_a_corrupt_block(tmp_path, blobs):
    source = write_zarr(tmp_path / "in.zarr", blobs)
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.run(
        [sys.executable, str(script), str(source), str(tmp_path / "o.zarr")],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["killed"]
    expected = segment(blobs, threshold="otsu", n_clusters="auto", min_size=20, random_state=0)
    assert same_objects(read_labels(tmp_path / "o.zarr"), expected)
    assert signal.SIGKILL  # the worker was killed with SIGKILL, not asked to stop


def test_the_package_and_its_blockwise_api_import_without_dask_or_zarr():
    code = (
        "import sys, napari_spectral_seg, napari_spectral_seg.blockwise as b; "
        "assert callable(napari_spectral_seg.segment_blockwise); "
        "heavy = [m for m in ('dask', 'distributed', 'zarr', 'ome_zarr') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr


def test_a_refused_scheduler_leaves_no_partial_store(tmp_path, blobs):
    import socket

    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = write_zarr(tmp_path / "in.zarr", blobs)
    with pytest.raises(Exception, match="--scheduler"):
        segment_blockwise(source, tmp_path / "out.zarr", block_size=64, scheduler=f"tcp://127.0.0.1:{port}", **AUTO)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr"]


def test_two_threads_writing_the_same_block_record_both_finish_with_a_whole_record(tmp_path):
    # A task of an interrupted run may still write a block's record when the resumed run's task
    # for the same block does, in another thread of the same worker process.
    import threading

    from napari_spectral_seg.blockwise.block import _write_atomically, read_record

    path = tmp_path / "1_0.npz"
    record = dict(origin=np.zeros(2, np.int64), labels=np.ones((64, 64), np.int32), count=np.int64(1))
    start, errors = threading.Barrier(2), []

    def write_many():
        start.wait()
        for _ in range(100):
            try:
                _write_atomically(path, record)
            except OSError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=write_many) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert np.array_equal(read_record(path)["labels"], record["labels"])
    assert [p.name for p in tmp_path.iterdir()] == ["1_0.npz"]


def test_a_callers_client_whose_cluster_waits_for_its_workers_is_not_given_up(tmp_path, blobs, monkeypatch):
    # An adaptive or jobqueue cluster starts with no worker and waits in a queue for them: a
    # caller's client was stopped after the --scheduler limit, as if its workers had been killed.
    import threading

    from distributed import Client, LocalCluster

    from napari_spectral_seg.batch import cluster

    monkeypatch.setitem(cluster.NO_WORKERS_TIMEOUT, "scheduler", 1.0)
    monkeypatch.setitem(cluster.NO_WORKERS_TIMEOUT, "local", 1.0)
    source = write_zarr(tmp_path / "in.zarr", blobs)
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=None) as waiting,
        Client(waiting) as dask_client,
    ):
        later = threading.Timer(4.0, waiting.scale, args=(1,))  # the queue gives it a worker after 4 s
        later.start()
        try:
            summary = segment_blockwise(source, tmp_path / "out.zarr", block_size=64, client=dask_client)
        finally:
            later.cancel()
    assert summary["n_labels"] > 0 and read_labels(tmp_path / "out.zarr").max() == summary["n_labels"]
