"""Files the dock widget writes, written whole or not at all."""

from __future__ import annotations

import os

__all__ = ["write_atomically"]


def write_atomically(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in its folder: a reader never sees half a file."""
    import tempfile

    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
