"""Atomic file writes: a crash leaves the old content or the new, never half."""

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644, gid: int = -1) -> None:
    """Write `data` to `path` via a temp file, fsync and rename.

    `gid` (when not -1) is set before the rename, so a group-readable file
    never appears under its final name with the wrong group.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        if gid != -1:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)

    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
