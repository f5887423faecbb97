"""Collect the warnings of one task while other tasks run in other threads of the same worker.

``warnings.catch_warnings`` saves and restores the process's filters and
``showwarning``: two tasks in one worker (a ``--scheduler`` cluster with
several threads per worker) swap each other's lists, and the one leaving
last restores the state the first one had changed. Here the process's warning
state is changed once, by one hook installed at the first task and never taken
out; which list a warning goes to is a context variable, so each task (and
the helper threads it starts, which run in a copy of its context,
:func:`napari_spectral_seg.core.progress.iter_waiting`) has its own.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import warnings
from collections.abc import Iterator

__all__ = ["capture_warnings"]

# A task's list, and what ``_showwarnmsg`` handed warnings to when the task
# began (``catch_warnings(record=True)`` swaps that for its log while open).
_COLLECTOR: contextvars.ContextVar[tuple[list[str], object] | None] = contextvars.ContextVar(
    "napari_spectral_seg_task_warnings", default=None
)
_INSTALL_LOCK = threading.Lock()


def _hook_name() -> str:
    # Every warning passes through ``_showwarnmsg`` (also those numpy raises
    # from C), and ``catch_warnings`` in another thread leaves it alone, where
    # it would restore an older ``showwarning`` over ours.
    return "_showwarnmsg" if callable(getattr(warnings, "_showwarnmsg", None)) else "showwarning"


def _forget_shown() -> None:
    # Under the "default" action a warning is shown once per code location per
    # process: without this, a task would not hear a warning an earlier (or a
    # concurrent) task of this worker had at the same line.
    mutated = getattr(warnings, "_filters_mutated", None)
    if callable(mutated):
        mutated()


def _show_impl():
    return getattr(warnings, "_showwarnmsg_impl", None)


def _make_hook(previous):
    def hook(*args, **kwargs):
        task = _COLLECTOR.get()
        if task is None or _show_impl() is not task[1]:
            # Outside a task, or code inside it records warnings itself: theirs.
            return previous(*args, **kwargs)
        collector = task[0]
        message = args[0] if args else kwargs.get("msg", kwargs.get("message"))
        # ``_showwarnmsg`` gets a WarningMessage; ``showwarning`` the warning itself.
        text = str(getattr(message, "message", message))
        if text not in collector:
            collector.append(text)
        _forget_shown()
        return None

    hook.napari_spectral_seg_hook = True
    return hook


def _install() -> None:
    with _INSTALL_LOCK:
        name = _hook_name()
        current = getattr(warnings, name)
        if not getattr(current, "napari_spectral_seg_hook", False):
            setattr(warnings, name, _make_hook(current))


@contextlib.contextmanager
def capture_warnings() -> Iterator[list[str]]:
    """Collect, each message once, the warnings raised in this context; other threads' are not touched.

    Warnings the process's filters ignore stay ignored (and those they turn
    into errors are raised), as for any other code in the worker.
    """
    _install()
    _forget_shown()
    collected: list[str] = []
    token = _COLLECTOR.set((collected, _show_impl()))
    try:
        yield collected
    finally:
        _COLLECTOR.reset(token)
