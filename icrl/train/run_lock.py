"""One training process per run directory: an exclusive advisory lock on `<run_dir>/.lock`.

Two processes training into one run directory (an `icrl resume` started while the run is still going, or
twice) would interleave checkpoints, replay files and metrics. The lock is a `flock`, which the operating
system drops when its process dies, so a run stopped by `kill -9` or a crash never leaves a stale lock.
Readers (`icrl eval`, `icrl plot`) do not take it. Where `fcntl` is missing (Windows) it does nothing.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


class RunInUseError(RuntimeError):
    """Another process holds the run directory's lock."""


class RunLock:
    """Hold `<run_dir>/.lock` from construction until `release()` (or the process's end)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        # O_NOFOLLOW: a run directory is data, and a `.lock` symlink shipped in one must not make the lock
        # truncate and overwrite the file it points to (ELOOP instead); a non-regular file is refused too.
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as exc:
            if self.path.is_symlink():
                raise RunInUseError(
                    f"{self.path} is a symbolic link, not a lock file: remove it (a run directory holds only "
                    "plain files)"
                ) from None
            raise exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunInUseError(f"{self.path} is not a plain file: remove it")
        self._file = os.fdopen(fd, "a+")  # held open for the lock's lifetime
        if fcntl is None:
            return
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise RunInUseError(
                f"{run_dir} is in use by {holder}: one training process per run directory "
                "(stop it first, or train into another --run-dir)"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        self._file.flush()

    def release(self) -> None:
        """Give the lock up (idempotent); the file stays, empty of meaning until the next holder writes."""
        if not self._file.closed:
            if fcntl is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
