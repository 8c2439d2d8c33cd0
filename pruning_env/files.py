"""Atomic file replacement: readers of a path see its old contents or its new ones, never a part.

    with replacing(path) as temporary:          # any writer: torch.save, a download stream, ...
        torch.save(payload, temporary)
    write_atomic(path, text)                    # the same for a text
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A new empty temporary file beside ``path`` (same folder, created with the parents) for the caller to write;
    when the block ends normally the file is synced to disk and renamed over ``path`` in one step; when it raises
    (a failed check of the written file, say) the file is deleted and ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with temporary.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (``replacing``)."""
    with replacing(path) as temporary:
        temporary.write_text(text)
