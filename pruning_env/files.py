"""Atomic file replacement: readers of a path see its old contents or its new ones, never a part.

    with replacing(path) as temporary:          # any writer: torch.save, a download stream, ...
        torch.save(payload, temporary)
    write_atomic(path, text)                    # the same for a text
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A new empty temporary file beside ``path`` (same folder, created with the parents) for the caller to write;
    when the block ends normally the file is synced to disk and renamed over ``path`` in one step; when it raises
    (a failed check of the written file, say) the file is deleted and ``path`` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _new_file(path.parent, f".{path.name}.")
    try:
        yield temporary
        with temporary.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _new_file(folder: Path, prefix: str) -> Path:
    """A new empty file ``<folder>/<prefix><random token>.tmp``, created exclusively with the permissions of any
    plainly created file (0666 less the umask; ``tempfile.mkstemp`` would give 0600)."""
    while True:
        candidate = folder / f"{prefix}{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return candidate


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (``replacing``)."""
    with replacing(path) as temporary:
        temporary.write_text(text)
