"""One batch at a time per output directory, and one ``segment`` run at a time per output file.

``DIR/.napari-spectral-seg.lock`` is created atomically (``O_CREAT | O_EXCL``)
by the run that writes into ``DIR`` and removed when it ends, whatever the
end (done, failed, Ctrl-C, SIGTERM). It names the process holding it (pid,
host, start time), so a second run refuses with a message saying who writes
there, and the lock of a process that died without removing it (SIGKILL, a
crash, a reboot) is recognised and removed: on the same host, a pid that no
longer runs, or that now belongs to a process started at another time.
``segment`` holds ``.<name>.lock`` next to its ``-o`` the same way, from
before the work until the output is written: a second run writing the same
file at once would silently replace the first one's result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
import uuid
from collections.abc import Generator
from pathlib import Path

from .plan import BatchError

__all__ = ["LOCK_NAME", "output_file_lock", "output_lock"]

LOCK_NAME = ".napari-spectral-seg.lock"
# A lock file found empty may be one another run has just created and is
# writing; it is stale only if it stays empty this long.
_EMPTY_GRACE = 1.0  # seconds


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: dict) -> bool:
    """Whether the process that wrote a lock still runs (always assumed on another host)."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # runs, as another user
    started = owner.get("process_start")
    return started is None or _start_time(pid) in (None, started)  # a reused pid is another process


def _read(lock: Path) -> tuple[bytes, dict | None]:
    """A lock file's bytes and what they say (None: empty or not a lock's content)."""
    content = lock.read_bytes()
    try:
        owner = json.loads(content)
    except ValueError:
        return content, None
    return content, owner if isinstance(owner, dict) else None


def _break(lock: Path, content: bytes) -> None:
    """Remove a stale lock, but only if it still holds ``content`` (another run may have just replaced it)."""
    grave = lock.with_name(f"{lock.name}.stale-{os.getpid()}-{uuid.uuid4().hex}")
    try:
        os.rename(lock, grave)
    except FileNotFoundError:
        return  # another run removed it first
    try:
        if grave.read_bytes() != content:  # a fresh lock of another run: put it back
            try:
                os.link(grave, lock)
            except FileExistsError:
                pass
            except OSError:  # no hard links on this file system
                if not lock.exists():
                    os.replace(grave, lock)
    finally:
        grave.unlink(missing_ok=True)


def _who(owner: dict) -> str:
    started = owner.get("started")
    since = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, float) else ""
    return f"pid {owner.get('pid')} on {owner.get('host')}{since}"


@dataclasses.dataclass(frozen=True)
class _Target:
    """What a lock guards, for its messages: the flag that named it, the run kind, and the place."""

    flag: str  # "--out" or "-o"
    run: str  # "batch run" or "segment run"
    what: str  # how the place is named after "writing": "into this --out directory", "this output"
    place: Path  # the directory or file passed with ``flag``

    def refusal(self, lock: Path, owner: dict) -> BatchError:
        return BatchError(
            f"{self.flag} {self.place}: another {self.run} ({_who(owner)}) is writing {self.what}; wait for it "
            f"to end or pass another {self.flag} (if no run is active, remove {lock})."
        )


def _acquire(target: _Target, lock: Path, mine: bytes) -> None:
    empty_since = None
    for _ in range(1000):  # a few tries normally; bounded so that nothing spins forever
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                content, owner = _read(lock)
                if owner is None and content.strip() == b"":
                    empty_since = empty_since or time.monotonic()
                    if time.monotonic() - empty_since < _EMPTY_GRACE:
                        time.sleep(0.05)  # another run is writing its lock
                        continue
                elif owner is not None and _alive(owner):
                    raise target.refusal(lock, owner) from None
                _break(lock, content)
            except FileNotFoundError:
                pass  # removed in between: try again
            except OSError as exc:
                raise BatchError(f"{lock}: cannot read or remove this stale lock ({exc.strerror or exc}).") from exc
            continue
        except OSError as exc:
            raise BatchError(
                f"{target.flag} {target.place}: cannot create the lock file {lock} ({exc.strerror or exc})."
            ) from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(mine)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:  # e.g. a full disk: an empty lock would hold the next run for a while
            lock.unlink(missing_ok=True)
            raise BatchError(
                f"{target.flag} {target.place}: cannot write the lock file {lock} ({exc.strerror or exc}); "
                f"free some space there or pass another {target.flag}."
            ) from exc
        return
    raise BatchError(f"{lock}: cannot take this lock; remove it if no {target.run} is writing {target.what}.")


@contextlib.contextmanager
def output_lock(out_dir: str | os.PathLike) -> Generator[Path, None, None]:
    """Hold the lock of ``out_dir`` (an existing directory) for the duration of the ``with`` block.

    Raises
    ------
    BatchError
        Another live process holds it (the message names the process and
        the fix), or the lock file cannot be created.
    """
    out_dir = Path(out_dir)
    target = _Target("--out", "batch run", "into this --out directory", out_dir)
    with _holding(out_dir / LOCK_NAME, lambda mine: _acquire(target, out_dir / LOCK_NAME, mine)) as lock:
        yield lock


@contextlib.contextmanager
def output_file_lock(output: str | os.PathLike) -> Generator[Path, None, None]:
    """Hold ``.<name>.lock`` next to ``output`` (in an existing directory): one ``segment`` run per output at a time.

    Raises
    ------
    BatchError
        Another live process writes that output (the message names it and
        the fix), or the lock file cannot be created.
    """
    output = Path(output)
    lock = output.with_name(f".{output.name}.lock")

    target = _Target("-o", "segment run", "this output", output)
    with _holding(lock, lambda mine: _acquire(target, lock, mine)) as held:
        yield held


@contextlib.contextmanager
def _holding(lock: Path, acquire) -> Generator[Path, None, None]:
    """Take ``lock`` with ``acquire(content)`` and remove it at the end, unless another run's content is in it."""
    owner = dict(
        pid=os.getpid(),
        host=socket.gethostname(),
        process_start=_start_time(os.getpid()),
        started=time.time(),
        token=uuid.uuid4().hex,
    )
    mine = json.dumps(owner).encode()
    acquire(mine)
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError):
            if lock.read_bytes() == mine:  # never remove another run's lock
                lock.unlink()
