"""Atomic file writes: a reader sees the old file or the whole new one, never half of it.

    write_atomic(path, data)               # bytes
    with atomic_writer(path) as handle:    # anything that writes to a binary file object
        torch.save(obj, handle)

The data goes to a temporary file in the same folder (`.<name>.<pid>.tmp`), is flushed and
fsynced, then renamed over `path` with `os.replace` (atomic on one filesystem, NFS included); on
an error the temporary file is removed and `path` is left as it was.
"""
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_writer", "replace_synced", "temporary_beside", "write_atomic"]


def temporary_beside(path: Path, tag: str = "") -> Path:
    """A temporary name in `path`'s folder, hidden and unique to this process (and `tag`)."""
    return path.with_name(f".{path.name}.{os.getpid()}{tag}.tmp")


def replace_synced(handle: BinaryIO, tmp: Path, path: Path) -> None:
    """Flush, fsync and close `handle` (open on `tmp`), then rename `tmp` over `path`."""
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(tmp, path)


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces `path` when the block ends without an error."""
    path = Path(path)
    tmp = temporary_beside(path)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            replace_synced(handle, tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Replace `path` by `data` atomically (see the module docstring)."""
    with atomic_writer(path) as handle:
        handle.write(data)
