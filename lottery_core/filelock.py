"""One exclusive lock on a file, held while a block of code runs (the only flock in the project).

    with exclusive_lock(cache_dir / "cifar10.lock", note=str(root)):
        ...   # one process at a time on this machine

The lock is `fcntl.flock`: advisory, released by the kernel when the holder exits or dies (a
SIGKILL leaves nothing stale behind), exclusive between the processes of one machine. Across
machines it holds only where the file system forwards flock (NFSv4 clients on Linux do; many
others do not): a claim that must hold across nodes uses `pipelines.claim` instead. Where
`fcntl` is missing (Windows) the block runs without a lock.
"""
import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, note: str | None = None):
    """Hold an exclusive flock on `path` (created, with its folder, when missing) for the block.

    `note`: text that replaces the file's content once the lock is held (e.g. what it guards, so
    that a later reader can tell); without it the content is left as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if note is not None:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{note}\n")
                handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
