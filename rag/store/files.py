"""Immutable files shared between index generations by hard links (rag/index.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def link_or_copy(src: Path, dst: Path) -> None:
    """Give the next generation a file unchanged since the last: a hard link (no bytes copied,
    and generations stay independent: removing the old folder leaves the inode to the new one),
    or a copy where the file system has no hard links."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths are one inode (a hard link made by `link_or_copy`)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
