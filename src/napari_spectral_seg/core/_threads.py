"""One-thread sections for BLAS and OpenMP, with the library scan done once.

``threadpoolctl.threadpool_limits`` rescans the loaded shared libraries on
every call (~3 ms measured); the engine enters such a section once per
connected component, so thousands of small components would pay seconds.
A cached ``ThreadpoolController`` makes entering one ~20 us.

Thread pools are process-wide, so sections that overlap in threads (two
``segment()`` calls at once) share one limit: the first to enter records
each library's thread count and sets it to 1, the last to leave puts the
recorded counts back. Each section restoring what it saw on entry would
leave the pools at 1 thread when the sections end out of order (the second
one saw the first one's limit). threadpoolctl's own guard (only one
"controlling" thread may set OpenBLAS's pool) ignored the second section's
limit instead, and left its restore to it.
"""

from __future__ import annotations

import threading

from threadpoolctl import ThreadpoolController

__all__ = ["single_threaded"]

_controllers: dict[str, ThreadpoolController] = {}
_selected: dict[tuple[str, str | None], list] = {}  # (scope, user_api) -> the libraries it limits
_lock = threading.Lock()
_depth = 0  # sections open, in every thread
_saved: dict[str, tuple] = {}  # library path -> (its controller, thread count before the first section)


def _libraries(scope: str, user_api: str | None):
    selected = _selected.get((scope, user_api))
    if selected is None:
        controller = _controllers.get(scope)
        if controller is None:
            controller = _controllers[scope] = ThreadpoolController()
        if user_api is not None:
            controller = controller.select(user_api=user_api)
        # select() builds a new controller on every call: keep its libraries.
        selected = _selected[(scope, user_api)] = list(controller.lib_controllers)
    return selected


def _set_threads(library, count: int) -> None:
    """Set one library's pool, whichever thread asks (under ``_lock``).

    threadpoolctl lets only one "controlling" thread set OpenBLAS's
    process-wide pool and ignores the others; the sections here are
    serialised by ``_lock``, so the caller takes control and gives it back.
    """
    release = getattr(type(library), "clear_controlling_thread", None)
    if release is not None:
        release(force=True)
    library.set_num_threads(count)
    if release is not None:
        release(force=True)


class single_threaded:  # noqa: N801 - used as a function: ``with single_threaded(...)``
    """Context manager limiting native thread pools to one thread.

    A class rather than a generator function: auto mode enters a section per
    small eigen-solve, thousands per image, and a generator's set-up costs
    several times the section itself.

    Parameters
    ----------
    scope : str
        Cache key: call sites that load different libraries (e.g. scikit-learn's
        OpenMP runtime) use their own key, so the cached scan, taken on first use
        after their imports, includes those libraries.
    user_api : {"blas", "openmp"}, optional
        Limit only this kind of pool; all if omitted.
    """

    __slots__ = ("_scope", "_user_api")

    def __init__(self, scope: str, user_api: str | None = None):
        self._scope, self._user_api = scope, user_api

    def __enter__(self):
        global _depth
        with _lock:
            _depth += 1
            for library in _libraries(self._scope, self._user_api):
                if library.filepath not in _saved:
                    _saved[library.filepath] = (library, library.num_threads)
                    _set_threads(library, 1)
        return self

    def __exit__(self, *exc) -> bool:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                for library, count in _saved.values():
                    _set_threads(library, count)
                _saved.clear()
        return False
