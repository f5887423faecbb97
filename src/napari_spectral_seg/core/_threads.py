"""One-thread sections for BLAS and OpenMP, with the library scan done once.

``threadpoolctl.threadpool_limits`` rescans the loaded shared libraries on
every call (~3 ms measured); the engine enters such a section once per
connected component, so thousands of small components would pay seconds.
A cached ``ThreadpoolController`` makes entering one ~20 us.
"""

from __future__ import annotations

from threadpoolctl import ThreadpoolController

_controllers: dict[str, ThreadpoolController] = {}


def single_threaded(scope: str, user_api: str | None = None):
    """Context manager limiting native thread pools to one thread.

    Parameters
    ----------
    scope : str
        Cache key: call sites that load different libraries (e.g. scikit-learn's
        OpenMP runtime) use their own key, so the cached scan, taken on first use
        after their imports, includes those libraries.
    user_api : {"blas", "openmp"}, optional
        Limit only this kind of pool; all if omitted.
    """
    controller = _controllers.get(scope)
    if controller is None:
        controller = _controllers[scope] = ThreadpoolController()
    return controller.limit(limits=1, user_api=user_api)
