"""One exclusive lock on a file, held while a block of code runs: the `filelock` package's
FileLock, kept in place and labelled.

    with exclusive_lock(cache_dir / "cifar10.lock", note=str(root)):
        ...   # one process at a time on this machine

The lock is `filelock.FileLock` (`fcntl.flock` on Unix, `msvcrt` on Windows): released by the
kernel when the holder exits or dies (a SIGKILL leaves nothing stale behind), exclusive between
the processes of one machine. Across machines it holds only where the file system forwards flock
(NFSv4 clients on Linux do; many others do not): a claim that must hold across nodes uses
`pipelines.claim` instead. The lock file is kept after release (`preserve_lock_file`), so that
the note it holds can be read later (`lottery_core.data.folder.forget_vanished`).
"""
import contextlib
import os
from pathlib import Path

from filelock import FileLock

__all__ = ["exclusive_lock"]


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, note: str | None = None):
    """Hold an exclusive lock on `path` (created, with its folder, when missing) for the block.

    `note`: text that replaces the file's content once the lock is held (e.g. what it guards, so
    that a later reader can tell); without it the content is left as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def label(fd: int) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{note}\n".encode(), 0)

    with FileLock(path, preserve_lock_file=True, on_acquired=label if note is not None else None):
        yield
