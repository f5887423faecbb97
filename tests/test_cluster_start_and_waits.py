"""Issue 17, still open after session 11: a local dask cluster's start-up, long waits and the final write.

The command-line tests run the command in a process of its own, with a
worker preload (dask's ``distributed.worker.preload``) that marks a file and
then sleeps, so that the cluster's start-up lasts as long as the test needs.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from napari_spectral_seg.data import four_circles

pytest.importorskip("distributed")

SLOW_PRELOAD = """
import pathlib, time
pathlib.Path({mark!r}).touch()
time.sleep({seconds})
"""


def sample(path, size=64):
    tifffile.imwrite(path, four_circles(size=size, seed=0)[0].astype(np.float32))
    return path


def slow_start_env(tmp_path, seconds: float) -> tuple[dict, object]:
    """An environment whose dask workers take ``seconds`` to start, and the file each touches when it starts."""
    mark = tmp_path / "worker-starting"
    preload = tmp_path / "slow_preload.py"
    preload.write_text(SLOW_PRELOAD.format(mark=str(mark), seconds=seconds))
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__PRELOAD=json.dumps([str(preload)]))
    return env, mark


def start_cli(argv, env) -> subprocess.Popen:
    command = [sys.executable, "-m", "napari_spectral_seg.cli", *map(str, argv)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {timeout} s"
        time.sleep(0.05)


@pytest.mark.parametrize("command", ["batch", "blockwise"])
def test_sigterm_while_the_local_cluster_starts_ends_with_our_one_line(tmp_path, command):
    # SIGTERM while the LocalCluster started: our one line, then distributed's close_clusters
    # atexit traceback (AssertionError: Status.init) of the half-started cluster.
    img = sample(tmp_path / "img.tif")
    env, mark = slow_start_env(tmp_path, seconds=60)
    if command == "batch":
        argv = ["batch", img, "--out", tmp_path / "out", "--workers", "1", "--no-progress"]
    else:
        argv = ["segment", img, "-o", tmp_path / "out.zarr", "--block-size", "32", "--workers", "1"]
    process = start_cli(argv, env)
    try:
        wait_for(mark)
        time.sleep(0.5)  # the worker process is in its preload: the cluster is still starting
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143
    # What it was doing ("starting 1 local dask worker process(es)..."), then our one line.
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("starting ")]
    assert len(lines) == 1 and lines[0].startswith("napari-spectral-seg: terminated (SIGTERM)"), err
    if command == "blockwise":
        assert lines[0].endswith("while the dask cluster started; nothing was written."), err
    assert not (tmp_path / ".out.zarr.partial").exists() and not (tmp_path / "out.zarr").exists()


def test_workers_lost_during_the_final_labels_write_stop_the_run_with_one_line(tmp_path, capsys, monkeypatch):
    # Every block finished, then the workers were gone (killed and not restarted) while the
    # labels image was painted and written: the run waited on the write for ever, silent.
    import threading

    import distributed

    from napari_spectral_seg.batch import cluster
    from napari_spectral_seg.blockwise import assemble
    from napari_spectral_seg.cli import main

    img = sample(tmp_path / "img.tif")
    monkeypatch.setitem(cluster.NO_WORKERS_TIMEOUT, "scheduler", 2.0)
    real_entries = assemble.chunk_entries
    codes = []
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as local:

        def entries_then_no_worker(*args):
            local.scale(0)  # as workers killed and not restarted, once the blocks are done
            end = time.monotonic() + 30
            while local.scheduler.workers and time.monotonic() < end:
                time.sleep(0.05)
            return real_entries(*args)

        monkeypatch.setattr(assemble, "chunk_entries", entries_then_no_worker)
        argv = ["segment", str(img), "-o", str(tmp_path / "out.zarr"), "--block-size", "32"]
        argv += ["--n-clusters", "auto", "--scheduler", local.scheduler_address]
        run = threading.Thread(target=lambda: codes.append(main(argv)))
        started = time.monotonic()
        run.start()
        run.join(timeout=90)
        assert not run.is_alive(), "the final write still waits for a worker"
        assert codes == [2] and time.monotonic() - started < 90
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "has had no worker for 2 s" in err, err
        assert "finished blocks are kept" in err
        assert not (tmp_path / "out.zarr").exists()
        # The same command with a worker back resumes every block and writes the labels.
        monkeypatch.setattr(assemble, "chunk_entries", real_entries)
        local.scale(1)
        local.wait_for_workers(1, timeout=60)
        assert main(argv) == 0
        assert "4 done before" in capsys.readouterr().out


def test_a_slow_local_cluster_start_is_said_at_once_and_every_ten_seconds(tmp_path):
    # Under load a local cluster took over 30 s to start, with nothing printed meanwhile.
    img = sample(tmp_path / "img.tif")
    env, _ = slow_start_env(tmp_path, seconds=12)
    argv = ["batch", img, "--out", tmp_path / "out", "--workers", "1", "--no-progress"]
    process = start_cli(argv, env)
    try:
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lines = err.splitlines()
    assert lines[0] == "starting 1 local dask worker process(es)...", err
    assert "starting 1 local dask worker process(es): 10 s so far" in lines, err
    assert "1 written" in out


def test_a_phase_says_what_it_does_then_how_long_it_has_lasted_until_it_ends():
    from napari_spectral_seg.batch.heartbeat import phase

    said = []
    with phase(said.append, "deciding", every=0.1, detail=lambda: "3 of 9 done"):
        time.sleep(0.35)
    time.sleep(0.2)  # nothing more once it has ended
    assert said[0] == "deciding..." and len(said) in (3, 4), said
    assert said[1] == "deciding: 0 s so far, 3 of 9 done"
    quiet = []
    with phase(quiet.append, "writing", every=10, at_once=False):
        pass
    with phase(None, "nothing to say", every=0.01):
        time.sleep(0.05)
    assert quiet == []
