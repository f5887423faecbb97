"""A process-wide setting held while any thread has a section open.

Some settings that make a step cheaper belong to the whole process (numpy's
huge-page advice, glibc's heap thresholds), while steps run in several
threads at once. :class:`SharedSection` applies such a setting when the
first section opens and takes it back when the last one closes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager

__all__ = ["SharedSection"]


class SharedSection:
    """Nested, thread-shared sections of one setting: ``enter()`` at the first open, ``leave()`` at the last close.

    ``lock`` serialises the two with anything else that changes the same setting.
    """

    def __init__(self, enter: Callable[[], None], leave: Callable[[], None]):
        self._enter, self._leave = enter, leave
        self.lock = threading.Lock()
        self._depth = 0

    @contextmanager
    def open(self):
        with self.lock:
            if self._depth == 0:
                self._enter()
            self._depth += 1
        try:
            yield
        finally:
            with self.lock:
                self._depth -= 1
                if self._depth == 0:
                    self._leave()
