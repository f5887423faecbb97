"""Issue 17, the rerun as a new user: command-line and batch attacks that the first round's fixes left open.

Each test names the attack. The batch tests share one local cluster of one
worker process through ``--scheduler``.
"""

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_spectral_seg.cli import main
from napari_spectral_seg.data import four_circles
from napari_spectral_seg.io import stored_parameters

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster.scheduler_address


def sample(path, size=40, seed=0):
    tifffile.imwrite(path, four_circles(size=size, seed=seed)[0].astype(np.float32))
    return path


def test_batch_flags_given_as_none_override_the_file_and_the_default(tmp_path, scheduler):
    # Attack: `batch --threshold none` (the fix our own messages offer) ran with Otsu's threshold,
    # and a parameter file's threshold and sigma survived `--threshold none --sigma none`.
    sample(tmp_path / "img.tif")
    (tmp_path / "p.json").write_text(json.dumps({"threshold": 0.5, "sigma": 1.0}))
    argv = ["batch", str(tmp_path / "img.tif"), "--out", str(tmp_path / "out"), "--scheduler", scheduler]
    flags = ["--params", str(tmp_path / "p.json"), "--threshold", "none", "--sigma", "none", "--n-clusters", "2"]
    assert main([*argv, *flags, "--no-progress"]) == 0
    stored = stored_parameters(tmp_path / "out" / "img_labels.tif")
    assert stored["threshold"] is None and stored["sigma"] is None
    assert stored["frame_info"][0]["threshold_used"] is None


def test_a_batch_input_whose_name_is_not_utf8_is_segmented(tmp_path, scheduler, capfd):
    # Attack: a file named with a byte that is not UTF-8 (b"\xff"): dask could not send the task's
    # name, printed a 20-line serialisation traceback and failed it with "scheduler-connection-lost".
    folder = os.fsdecode(tmp_path)
    name = os.path.join(folder, os.fsdecode(b"bad\xff.tif"))
    try:
        sample(name)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    out = os.path.join(folder, "out")
    assert main(["batch", name, "--out", out, "--scheduler", scheduler, "--no-progress"]) == 0
    assert "Traceback" not in capfd.readouterr().err
    assert len(os.listdir(out)) == 2  # the labels and their table


def test_a_lock_that_cannot_be_written_is_one_line_and_left_behind_nowhere(tmp_path):
    # Attack: a full disk when batch writes its lock: a raw OSError traceback, and an empty lock file
    # left in --out. Here the lock's bytes are refused by a file-size limit of 0 (SIGXFSZ ignored).
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from napari_spectral_seg.batch.lock import output_lock
        from napari_spectral_seg.batch.plan import BatchError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        try:
            with output_lock({str(tmp_path)!r}):
                pass
        except BatchError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.count("\n") == 1 and "cannot write the lock file" in done.stdout
    assert "pass another --out" in done.stdout
    assert os.listdir(tmp_path) == []


def run_cli(*argv, timeout=60):
    """The command in a process of its own, bounded: a read that never ends fails the test, not the suite."""
    command = [sys.executable, "-m", "napari_spectral_seg.cli", *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_as_input_is_refused_not_read_forever(tmp_path):
    # Attack: a FIFO named like an image (or a symlink to one): segment and batch blocked reading it.
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    (tmp_path / "link.npy").symlink_to(fifo)
    image = sample(tmp_path / "img.tif")
    for argv in (
        ("segment", fifo, "-o", tmp_path / "o.tif"),
        ("segment", image, "--mask", tmp_path / "link.npy", "-o", tmp_path / "o.tif"),
    ):
        done = run_cli(*argv)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "is not a regular file (a named pipe or a device)" in done.stderr
    # Both inputs fail at planning, so no cluster is started.
    done = run_cli("batch", fifo, tmp_path / "link.npy", "--out", tmp_path / "out")
    assert done.returncode == 1
    assert done.stderr.count("failed: ") == 2 and done.stderr.count("is not a regular file") == 2


def test_two_segment_runs_on_one_output_the_second_is_refused(tmp_path, capsys):
    # Attack: two `segment` runs writing one -o at once: both said "written", the last rename won and
    # the first run's result was silently gone. Now the second refuses up front, naming the first.
    from napari_spectral_seg.batch.lock import output_file_lock

    image, out = sample(tmp_path / "img.tif"), tmp_path / "labels.tif"
    with output_file_lock(out) as lock:  # the first run, still segmenting
        assert main(["segment", str(image), "-o", str(tmp_path / "." / "labels.tif"), "--seed", "1"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "another segment run (pid" in err and "pass another -o" in err
        assert not out.exists() and lock.exists()
    assert os.listdir(tmp_path) == ["img.tif"]
    # A lock left by a run that was killed (its pid no longer runs) is removed.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = tmp_path / ".labels.tif.lock"
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename}))
    assert main(["segment", str(image), "-o", str(out)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["img.tif", "labels.tif"]


def test_a_warning_is_one_line_from_segment_and_once_per_input_from_batch(tmp_path, scheduler):
    # Attack: an image constant inside its mask: segment printed Python's warning (file, line and
    # source, 2 lines); batch's workers printed it once per frame into their logs.
    flat = np.zeros((5, 30, 30), np.uint8)
    flat[:, 5:20, 5:20] = 200
    tifffile.imwrite(tmp_path / "flat.tif", flat)
    done = run_cli("segment", tmp_path / "flat.tif", "-o", tmp_path / "o.tif", "--n-clusters", "2")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "napari-spectral-seg: warning: image is constant inside the mask (zero gradient everywhere): all edge "
        "weights are equal, so the segments are an arbitrary geometric split of the mask, not objects. Check the "
        "image, channel_axis and threshold."
    ]
    batch = ("batch", tmp_path / "flat.tif", "--out", tmp_path / "out", "--n-clusters", "2", "--no-progress")
    done = run_cli(*batch, "--scheduler", scheduler)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: {tmp_path / 'flat.tif'}: image is constant inside")


@pytest.mark.parametrize("spacing", [(1e307, 0.1), (1.0, 1e-101)])
def test_pixel_sizes_too_far_apart_are_refused_by_name(spacing):
    # Attack: spacing=(1e307, 0.1): numpy's "index can't contain negative values" after overflow warnings.
    from napari_spectral_seg import segment

    with pytest.raises(ValueError, match=r"^spacing=.*more than 1e\+100 times the smallest; give every size in one"):
        segment(four_circles(size=30, seed=0)[0], spacing=spacing)


def test_an_interrupted_zarr_series_is_said_to_keep_its_partial_store(tmp_path, monkeypatch):
    # Attack: Ctrl-C during a zarr series: the message said "no partial file left" while (rightly)
    # keeping DIR/.<name>.partial.zarr, the finished frames of the resume.
    import zarr

    from napari_spectral_seg.batch import cluster, run
    from napari_spectral_seg.batch.plan import InputItem

    item = InputItem(tmp_path / "movie.zarr", "zarr", tmp_path / "movie_labels.zarr", status="running")
    item.partial = tmp_path / ".movie_labels.zarr.partial.zarr"
    zarr.open_array(str(item.partial), mode="w", shape=(2, 4, 4), dtype="int32")

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cluster, "connect", ctrl_c)
    with pytest.raises(run.BatchInterrupted) as stop:
        run._run_on_cluster(run._Run([item], 2, progress=False), [item], None, 1)
    assert str(stop.value) == (
        "interrupted; 0 output(s) complete and the finished frames of 1 zarr series kept in their hidden partial "
        "store; run the same command again to resume."
    )


@pytest.mark.parametrize("shape", [(), (5,)])
def test_an_image_of_fewer_than_two_axes_is_not_told_to_pass_spatial_ndim_2(tmp_path, capsys, shape):
    # Attack: a 0-D or 1-D .npy: "fewer than --spatial-ndim 2; pass --spatial-ndim 2" (the value it had).
    np.save(tmp_path / "img.npy", np.ones(shape))
    assert main(["segment", str(tmp_path / "img.npy"), "-o", str(tmp_path / "o.tif")]) == 2
    err = capsys.readouterr().err
    assert err.endswith("fewer than --spatial-ndim 2; segment takes 2D and 3D images.\n"), err


def test_a_short_write_says_the_disk_may_be_full_and_leaves_the_earlier_output(tmp_path):
    # Attack: a full disk while the labels are written: numpy's "10000 requested and 992 written"
    # was the whole reason. Here a file-size limit (SIGXFSZ ignored) makes the same short write.
    script = textwrap.dedent(
        f"""
        import resource, signal
        import numpy as np
        from napari_spectral_seg.io import InputError, write_labels
        out = {str(tmp_path / "out.npy")!r}
        write_labels(out, np.ones((2, 2), np.int32), {{"random_state": 1}})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            write_labels(out, np.ones((100, 100), np.int32), {{"random_state": 2}})
        except InputError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "cannot write it (only part of it could be written" in done.stdout, done.stdout
    assert "is the disk full? Free some space or write elsewhere" in done.stdout
    assert done.stdout.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["out.npy", "out.npy.json"]
    assert np.load(tmp_path / "out.npy").shape == (2, 2)
    assert json.loads((tmp_path / "out.npy.json").read_text())["random_state"] == 1


def test_an_input_rewritten_while_the_batch_runs_is_not_written_from_two_versions(tmp_path):
    # Attack: an input replaced by other bytes while its frames are being segmented: the output mixed
    # frames of both versions and recorded the first one's identity. Touching it (same bytes) is fine.
    from napari_spectral_seg.batch.plan import InputItem
    from napari_spectral_seg.batch.run import changed_since_planned
    from napari_spectral_seg.io import file_identity

    path = sample(tmp_path / "movie.tif")
    item = InputItem(path, "tif", tmp_path / "movie_labels.tif", identity=file_identity(path))
    assert changed_since_planned(item) is None
    os.utime(path, ns=(1, 1))
    assert changed_since_planned(item) is None
    sample(path, seed=1)  # same size, other bytes
    assert changed_since_planned(item).startswith("it changed while the batch ran (other bytes")


def test_an_object_npy_a_non_utf8_parameter_file_and_a_folder_as_parameters_are_named(tmp_path):
    from napari_spectral_seg.io import InputError, ParameterFileError, load_parameters, read_image

    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="holds Python objects, not numbers"):
        read_image(objects)
    latin = tmp_path / "p.json"
    latin.write_bytes('{"sigma": 1.0, "note": "\xe9"}'.encode("latin-1"))
    with pytest.raises(ParameterFileError, match="not UTF-8 text .* save it as UTF-8"):
        load_parameters(latin)
    with pytest.raises(ParameterFileError, match="is a folder; pass a parameter file"):
        load_parameters(tmp_path)


def test_a_parameter_file_whose_metadata_key_is_not_an_object_says_what_it_should_hold(tmp_path):
    from napari_spectral_seg.io import METADATA_KEY, ParameterFileError, load_parameters

    path = tmp_path / "p.json"
    path.write_text(json.dumps({METADATA_KEY: 5}))
    with pytest.raises(ParameterFileError, match=f'"{METADATA_KEY}" holds 5; it holds the parameters as an object'):
        load_parameters(path)


def test_a_zarr_input_rewritten_while_the_batch_runs_is_not_written_from_two_versions(tmp_path):
    # Issue 17: a zarr store changed during a batch was only noticed at the next run (its folder keeps
    # its time when a chunk is rewritten). Its files' listing is compared now; touching a chunk is fine.
    import zarr

    from napari_spectral_seg.batch.plan import InputItem
    from napari_spectral_seg.batch.run import changed_since_planned
    from napari_spectral_seg.io import file_identity

    path = tmp_path / "movie.zarr"
    array = zarr.open_array(str(path), mode="w", shape=(3, 20, 20), chunks=(1, 20, 20), dtype="float32")
    array[:] = np.random.default_rng(0).random((3, 20, 20))
    item = InputItem(path, "zarr", tmp_path / "movie_labels.zarr", identity=file_identity(path))
    assert "listing" in item.identity
    assert changed_since_planned(item) is None
    chunk = max(
        (p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")), key=lambda p: p.stat().st_size
    )
    os.utime(chunk, ns=(1, 1))  # touched: same bytes
    assert changed_since_planned(item) is None
    array[1] = np.random.default_rng(1).random((20, 20))  # one frame rewritten in place
    assert changed_since_planned(item).startswith("it changed while the batch ran (other bytes")


def test_a_symlink_loop_or_a_dangling_link_as_input_is_named_as_such(tmp_path):
    # Attack: a loop of symbolic links (or a link to a removed file) as input was "no such file",
    # though `ls` shows it.
    from napari_spectral_seg.batch.plan import InputItem, _plan_input
    from napari_spectral_seg.core.params import SegmentationParams
    from napari_spectral_seg.io import InputError, read_image

    (tmp_path / "a.tif").symlink_to(tmp_path / "b.tif")
    (tmp_path / "b.tif").symlink_to(tmp_path / "a.tif")
    (tmp_path / "gone.tif").symlink_to(tmp_path / "removed.tif")
    with pytest.raises(InputError, match=r"a\.tif: a symbolic link that leads back to itself \(a loop of links\)"):
        read_image(tmp_path / "a.tif")
    with pytest.raises(InputError, match=r"gone\.tif: a symbolic link to .*removed\.tif, which does not exist"):
        read_image(tmp_path / "gone.tif")
    item = InputItem(tmp_path / "a.tif", "tif", tmp_path / "out" / "a_labels.tif")
    _plan_input(item, SegmentationParams(), 2)
    assert item.status == "failed" and item.reason.startswith("a symbolic link that leads back to itself")
    with pytest.raises(InputError, match=r"plain\.tif: no such file\.$"):
        read_image(tmp_path / "plain.tif")


def test_a_parameter_file_nested_too_deeply_is_one_line_without_python_words(tmp_path):
    from napari_spectral_seg.io import ParameterFileError, load_parameters

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ParameterFileError) as info:
        load_parameters(deep)
    message = str(info.value)
    assert "nested too deeply: a parameter file is one object of parameters" in message
    assert "Recursion" not in message and "\n" not in message


def test_an_ome_zarr_group_with_a_missing_level_is_named_with_the_array_to_pass(tmp_path):
    # Attack: an OME-Zarr (a group) whose level 0 is missing, given to batch: zarr's
    # "NodeTypeValidationError: Invalid value for 'node_type'" was the reason.
    import zarr

    from napari_spectral_seg.batch.plan import InputItem, _plan_input
    from napari_spectral_seg.core.params import SegmentationParams

    path = tmp_path / "cells.ome.zarr"
    group = zarr.open_group(str(path), mode="w")
    group.create_array("1", shape=(30, 30), dtype="float32")
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": "0"}, {"path": "1"}]}]
    item = InputItem(path, "zarr", tmp_path / "out" / "cells.ome_labels.zarr")
    _plan_input(item, SegmentationParams(), 2)
    assert item.status == "failed"
    assert item.reason == (
        f"is a zarr group (e.g. an OME-Zarr), not an array (its multiscale level(s) 0 are missing); "
        f"pass one of its arrays, e.g. {path / '1'}"
    )


def test_an_input_removed_while_the_batch_runs_fails_in_words_not_errno(tmp_path):
    # Attack: two inputs deleted while a batch ran: "cannot read it as an image (FileNotFoundError:
    # [Errno 2] No such file or directory: ...)" per input.
    from napari_spectral_seg.batch.task import segment_frame
    from napari_spectral_seg.core.params import SegmentationParams

    with pytest.raises(OSError) as info:
        segment_frame(str(tmp_path / "gone.tif"), "tif", (0,), SegmentationParams())
    assert str(info.value) == (
        "it was removed (or moved) while the batch ran; put it back and run the same command again"
    )


def test_a_tif_with_a_truncated_page_fails_with_one_line_and_no_tifffile_log(tmp_path, capsys, caplog):
    # Attack: a multi-page TIFF cut short: tifffile logged "invalid page offset" once per reader
    # (16 lines from one batch input) before our own one-line reason.
    import logging

    import tifffile

    from napari_spectral_seg.io import InputError, probe, read_frame, read_image

    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, np.random.default_rng(0).random((5, 40, 40)).astype(np.float32))
    broken = tmp_path / "broken.tif"
    data = whole.read_bytes()
    broken.write_bytes(data[: len(data) * 3 // 5])
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InputError, match=r"broken\.tif: cannot read it as an image"):
        read_image(broken)
    probe(broken, "tif")
    with pytest.raises(Exception):  # noqa: B017 - the worker turns any reader error into one line
        read_frame(str(broken), "tif", (4,))
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]
    assert logging.getLogger("tifffile").level == logging.NOTSET  # put back


def test_an_output_name_too_long_is_refused_before_any_work_in_one_line(tmp_path):
    # Attack: `segment -o <300 characters>.tif`: a 20-line OSError traceback (ENAMETOOLONG), exit 1.
    from napari_spectral_seg.io import InputError, check_output_path

    with pytest.raises(
        InputError, match=r"the file name is too long \(304 bytes; .* at most \d+ here\); give a shorter"
    ):
        check_output_path(tmp_path / ("x" * 300 + ".tif"))
    deep = tmp_path.joinpath(*["y" * 200] * 25) / "x.tif"
    with pytest.raises(InputError, match=r"cannot write there \(File name too long\); give another -o path"):
        check_output_path(deep)
    assert check_output_path(tmp_path / ("x" * 200 + ".tif")).name.startswith("x")


def test_a_named_pipe_or_a_device_as_parameter_file_is_named_not_missing(tmp_path):
    from napari_spectral_seg.io import ParameterFileError, load_parameters

    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        with pytest.raises(ParameterFileError, match=r"is not a regular file \(a named pipe or a device\)"):
            load_parameters(path)


def test_segment_replaces_its_own_output_but_not_a_file_it_did_not_write(tmp_path, capsys):
    # Attack D2c: `segment img.tif -o fiji.tif` over someone's TIFF replaced it (exit 0), where batch
    # refuses a file it did not write without --overwrite.
    img = sample(tmp_path / "img.tif")
    fiji = tmp_path / "fiji.tif"
    tifffile.imwrite(fiji, np.ones((8, 8), np.uint8), description='{"made": "by hand"}')
    before = fiji.read_bytes()
    capsys.readouterr()
    assert main(["segment", str(img), "-o", str(fiji)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{fiji} exists and was not written by napari-spectral-seg" in err and "--overwrite" in err
    assert fiji.read_bytes() == before
    ours = tmp_path / "ours.tif"
    assert main(["segment", str(img), "-o", str(ours)]) == 0
    assert main(["segment", str(img), "-o", str(ours), "--seed", "1"]) == 0  # a re-run replaces its own
    assert stored_parameters(ours)["random_state"] == 1
    assert main(["segment", str(img), "-o", str(fiji), "--overwrite"]) == 0
    assert stored_parameters(fiji)["n_clusters"] is not None


def test_segment_refuses_an_npy_or_a_sidecar_it_did_not_write(tmp_path, capsys):
    # The .npy kind of D2c: the labels and their sidecar are both replaced, so either, of another's, is refused.
    img = sample(tmp_path / "img.tif")
    theirs = tmp_path / "theirs.npy"
    np.save(theirs, np.arange(4))
    capsys.readouterr()
    assert main(["segment", str(img), "-o", str(theirs)]) == 2
    assert np.array_equal(np.load(theirs), np.arange(4))
    # An .npy alone may be ours with its sidecar lost (an interrupted write): the message says both.
    assert "exists without its theirs.npy.json" in capsys.readouterr().err
    sidecar = tmp_path / "notes.npy.json"
    sidecar.write_text('{"mine": 1}')
    assert main(["segment", str(img), "-o", str(tmp_path / "notes.npy")]) == 2
    assert f"{sidecar} exists and was not written by napari-spectral-seg" in capsys.readouterr().err
    assert sidecar.read_text() == '{"mine": 1}'
    ours = tmp_path / "ours.npy"
    assert main(["segment", str(img), "-o", str(ours)]) == 0
    assert main(["segment", str(img), "-o", str(ours)]) == 0


def zarr_array(path):
    zarr = pytest.importorskip("zarr")
    array = zarr.open_array(str(path), mode="w", shape=(64, 64), chunks=(32, 32), dtype="f4")
    array[:] = four_circles(size=64, seed=0)[0]
    return path


def test_a_blockwise_output_over_a_zarr_not_ours_is_named_as_such(tmp_path, capsys):
    # Attack Z6: `segment img.tif -o arr.zarr` over someone's zarr said only "exists; pass --overwrite".
    img = sample(tmp_path / "img.tif")
    arr = zarr_array(tmp_path / "arr.zarr")
    capsys.readouterr()
    assert main(["segment", str(img), "-o", str(arr)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{arr} exists and was not written by napari-spectral-seg; pass --overwrite" in err


def test_a_blockwise_output_inside_the_input_or_holding_it_is_refused(tmp_path, capsys):
    # Attack Z2: `segment arr.zarr -o arr.zarr/sub.zarr` wrote the labels inside the input's store;
    # the other way round, `-o` a store holding the input, --overwrite would have removed the input.
    arr = zarr_array(tmp_path / "arr.zarr")
    listing = sorted(p.name for p in arr.iterdir())
    capsys.readouterr()
    assert main(["segment", str(arr), "-o", str(arr / "sub.zarr"), "--threshold", "otsu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "-o" in err and "is inside the input" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in arr.iterdir()) == listing
    nested = zarr_array(tmp_path / "store.zarr" / "a.zarr")
    argv = ["segment", str(nested), "-o", str(tmp_path / "store.zarr"), "--overwrite", "--threshold", "otsu"]
    assert main(argv) == 2
    assert "holds the input" in capsys.readouterr().err
    assert nested.exists()


def test_a_batch_out_inside_an_input_store_is_refused_before_anything_is_written(tmp_path, capsys):
    # A reviewer's finding: `batch arr.zarr --out arr.zarr/out` wrote partial files into the input,
    # whose listing then changed, so every run failed with "it changed while the batch ran".
    arr = zarr_array(tmp_path / "arr.zarr")
    listing = sorted(p.name for p in arr.iterdir())
    capsys.readouterr()
    assert main(["batch", str(arr), "--out", str(arr / "out"), "--threshold", "otsu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out" in err and "is inside the input" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in arr.iterdir()) == listing


def test_an_npy_saved_over_ours_beside_our_sidecar_is_not_taken_as_ours(tmp_path, capsys):
    # A user's np.save over our labels.npy left our labels.npy.json beside it: it counted as ours
    # and a re-run replaced it. The sidecar now records the size and hash of the file it describes.
    img = sample(tmp_path / "img.tif")
    ours = tmp_path / "labels.npy"
    assert main(["segment", str(img), "-o", str(ours)]) == 0
    assert main(["segment", str(img), "-o", str(ours), "--seed", "1"]) == 0  # our own: replaced
    np.save(ours, np.zeros((40, 40), np.int32))  # same shape and dtype, other bytes
    capsys.readouterr()
    assert main(["segment", str(img), "-o", str(ours)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{ours} exists and was not written by napari-spectral-seg" in err and "saved over ours" in err
    assert not np.load(ours).any()
    assert stored_parameters(ours)["random_state"] == 1  # the parameters read back without the file's identity
    assert main(["segment", str(img), "-o", str(ours), "--overwrite"]) == 0
    assert np.load(ours).max() == 4


def test_an_older_sidecar_without_the_file_identity_still_counts_for_integer_labels(tmp_path, capsys):
    # Sidecars of earlier versions record no file: their .npy is ours when it holds integers (labels).
    img = sample(tmp_path / "img.tif")
    ours = tmp_path / "labels.npy"
    assert main(["segment", str(img), "-o", str(ours)]) == 0
    sidecar = tmp_path / "labels.npy.json"
    recorded = json.loads(sidecar.read_text())
    recorded.pop("labels_file", None)
    sidecar.write_text(json.dumps(recorded))
    assert main(["segment", str(img), "-o", str(ours), "--seed", "1"]) == 0
    sidecar.write_text(json.dumps(recorded))
    np.save(ours, np.random.default_rng(0).random((40, 40)))  # a float image saved over it
    capsys.readouterr()
    assert main(["segment", str(img), "-o", str(ours)]) == 2
    assert "saved over ours" in capsys.readouterr().err


def test_demo_headless_and_segment_measure_refuse_a_file_they_did_not_write(tmp_path, capsys):
    # `demo --headless OUT` and `segment --measure TABLE.csv` replaced whatever was at their path.
    img = sample(tmp_path / "img.tif")
    notes = tmp_path / "notes.tif"
    tifffile.imwrite(notes, np.ones((8, 8), np.uint8), description="a Fiji image")
    table = tmp_path / "table.csv"
    table.write_text("name,score\nalice,3\n")
    before = notes.read_bytes()
    capsys.readouterr()
    assert main(["demo", "--headless", str(notes)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{notes} exists and was not written by napari-spectral-seg" in err
    assert "--overwrite" in err and notes.read_bytes() == before
    out = tmp_path / "out.tif"
    assert main(["segment", str(img), "-o", str(out), "--measure", str(table)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{table} exists and was not written by napari-spectral-seg" in err
    assert table.read_text() == "name,score\nalice,3\n" and not out.exists()  # refused before any work
    # Our own earlier outputs are replaced; --overwrite replaces another's.
    demo = tmp_path / "demo.npy"
    assert main(["demo", "--headless", str(demo)]) == 0
    assert main(["demo", "--headless", str(demo)]) == 0
    assert main(["segment", str(img), "-o", str(out), "--measure", str(tmp_path / "ours.csv")]) == 0
    assert main(["segment", str(img), "-o", str(out), "--measure", str(tmp_path / "ours.csv")]) == 0
    assert main(["demo", "--headless", str(notes), "--overwrite"]) == 0
    assert main(["segment", str(img), "-o", str(out), "--measure", str(table), "--overwrite"]) == 0
    assert table.read_text().startswith("label,")


def test_our_table_with_a_column_added_by_hand_is_the_users(tmp_path, capsys):
    # A table whose header held our three columns counted as ours, whatever else it held.
    img = sample(tmp_path / "img.tif")
    out, table = tmp_path / "out.tif", tmp_path / "table.csv"
    assert main(["segment", str(img), "-o", str(out), "--measure", str(table)]) == 0
    header, *rows = table.read_text().splitlines()
    annotated = "\n".join([header + ",my_annotation"] + [row + ",tumour" for row in rows]) + "\n"
    table.write_text(annotated)
    capsys.readouterr()
    assert main(["segment", str(img), "-o", str(out), "--measure", str(table)]) == 2
    assert f"{table} exists and was not written by napari-spectral-seg" in capsys.readouterr().err
    assert table.read_text() == annotated


def test_a_batch_refuses_to_replace_a_table_it_did_not_write_beside_its_output(tmp_path, scheduler, capsys):
    # batch wrote DIR/<stem>_labels.csv over a user's file of that name.
    img = sample(tmp_path / "img.tif")
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / "img_labels.csv"
    theirs.write_text("my,notes\n")
    argv = ["batch", str(img), "--out", str(out), "--scheduler", scheduler, "--no-progress"]
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{theirs} exists and was not written by napari-spectral-seg; pass --overwrite or another --out" in err
    assert theirs.read_text() == "my,notes\n" and not (out / "img_labels.tif").exists()
    assert main([*argv, "--overwrite"]) == 0
    assert theirs.read_text().startswith("label,")


def test_a_blockwise_run_whose_cluster_has_no_worker_left_stops_with_one_line(tmp_path, capsys, monkeypatch):
    # Workers killed again and again until their nannies gave up: blockwise waited for ever, silent.
    import threading
    import time

    from napari_spectral_seg.batch import cluster

    img = sample(tmp_path / "img.tif", size=64)
    monkeypatch.setitem(cluster.NO_WORKERS_TIMEOUT, "scheduler", 2.0)
    codes = []
    with distributed.LocalCluster(
        n_workers=0, processes=True, dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}
    ) as empty:  # as a cluster whose every worker was killed and not restarted
        argv = ["segment", str(img), "-o", str(tmp_path / "out.zarr"), "--block-size", "32"]
        run = threading.Thread(target=lambda: codes.append(main([*argv, "--scheduler", empty.scheduler_address])))
        started = time.monotonic()
        run.start()
        run.join(timeout=60)
        assert not run.is_alive(), "the run still waits for a worker"
    assert codes == [2] and time.monotonic() - started < 60
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has had no worker for 2 s" in err and "finished blocks are kept" in err
    assert not (tmp_path / "out.zarr").exists()


def test_an_interrupt_while_the_cluster_shuts_down_says_the_labels_are_complete(
    tmp_path, scheduler, capsys, monkeypatch
):
    # SIGTERM during the cluster's shutdown, after the output was renamed into place, said
    # "finished blocks are kept: run the same command again to resume" of a complete output.
    from napari_spectral_seg.blockwise import run as blockwise_run

    real_client = blockwise_run._client

    def interrupted_at_shutdown(resources, *args):
        def interrupt():
            raise KeyboardInterrupt

        resources.callback(interrupt)  # the first registered: runs last, as the cluster's close does
        return real_client(resources, *args)

    monkeypatch.setattr(blockwise_run, "_client", interrupted_at_shutdown)
    img = sample(tmp_path / "img.tif", size=64)
    out = tmp_path / "out.zarr"
    capsys.readouterr()
    argv = ["segment", str(img), "-o", str(out), "--block-size", "32", "--n-clusters", "auto"]
    assert main([*argv, "--scheduler", scheduler]) == 130
    err = capsys.readouterr().err.strip()
    assert err == (
        f"napari-spectral-seg: interrupted while the dask cluster shut down; the labels were written completely "
        f"({out / 'labels' / 'spectral'})."
    )
    assert (out / "labels" / "spectral").is_dir() and not (tmp_path / ".out.zarr.partial").exists()


def test_an_npy_write_stopped_between_its_two_renames_leaves_our_earlier_output_ours(tmp_path, monkeypatch):
    # The new sidecar was renamed into place before the labels: stopped between the two, it
    # described a file that never arrived, and our own earlier output was refused as saved over ours.
    import napari_spectral_seg.io.labels as labels_io

    out = tmp_path / "out.npy"
    earlier = np.arange(16, dtype=np.int32).reshape(4, 4)
    recorded = {"threshold": None, "n_clusters": 4, "beta": 1.0, "eigen_solver": "auto"}
    labels_io.write_labels(out, earlier, dict(recorded, random_state=1))
    replace = os.replace

    def stopped_at_the_labels(src, dst):
        if Path(dst) == out:
            raise KeyboardInterrupt
        replace(src, dst)

    monkeypatch.setattr(labels_io.os, "replace", stopped_at_the_labels)
    with pytest.raises(KeyboardInterrupt):
        labels_io.write_labels(out, earlier + 1, dict(recorded, random_state=2))
    monkeypatch.undo()
    assert labels_io.check_written_by_us(out, "another -o")["random_state"] == 1
    assert np.array_equal(np.load(out), earlier)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy", "out.npy.json"]


@pytest.mark.parametrize("extra", [[], ["--screenshot", "shot.png"]])
def test_demo_overwrite_without_headless_is_refused_by_name(tmp_path, capsys, monkeypatch, extra):
    # `demo --overwrite` opened the window and ignored the flag, silently.
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--overwrite", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "napari-spectral-seg: error: --overwrite applies to --headless OUT only; "
        "pass --headless OUT.tif --overwrite, or drop it."
    )
    assert os.listdir(tmp_path) == []
