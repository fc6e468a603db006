"""Checks that a folder or file can be written, made before the work whose result goes there.

A command that computes for minutes and then cannot save (a read-only run directory, `--out` naming a
file where a folder is wanted, a run directory under a regular file) should say so before it starts, in
one line, not with a traceback after the work is done. The checks create and remove a probe file, since
permission bits alone do not tell (root ignores them; a read-only mount does not show in them).
"""

from __future__ import annotations

import os
from pathlib import Path


class NotWritableError(ValueError):
    """A folder or file that a command needs to write cannot be written (the message is one line)."""


def missing_folders(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first (what `mkdir(parents=True)` makes)."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _probe(folder: Path, what: str) -> None:
    """Create and remove a file in `folder`: NotWritableError when that fails."""
    probe = folder / f".icrl-write-probe.{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise NotWritableError(f"{what} {folder} is not writable ({exc.strerror or exc})") from None


def check_folder_writable(path: str | Path, what: str = "folder") -> None:
    """`path` is a writable folder, or one that can be made (its nearest existing parent is a writable
    folder). Nothing is created but a probe file, which is removed at once."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise NotWritableError(f"{what} {path} is a file, not a folder")
        _probe(path, what)
        return
    parent = missing_folders(path)[-1].parent  # the nearest existing ancestor
    if not parent.is_dir():
        raise NotWritableError(f"{what} {path} cannot be made: {parent} is a file, not a folder")
    _probe(parent, what)


def check_file_writable(path: str | Path, what: str = "file") -> None:
    """`path` can be (re)written: its folder is writable and `path` is not a folder."""
    path = Path(path)
    if path.is_dir():
        raise NotWritableError(f"{what} {path} is a folder, not a file")
    check_folder_writable(path.parent, f"folder of the {what}")
