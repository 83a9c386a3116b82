"""Shared fixtures: folders that refuse writes (read-only, full disk) for the output tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _mount_tmpfs(where: Path, options: str) -> bool:
    """Mount a tmpfs at `where` (root only); False where mounting is not allowed."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, check=False)
    return res.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True, check=False)


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder no file can be written into: a read-only tmpfs as root, else a folder of mode 0555."""
    where = tmp_path / "readonly"
    where.mkdir()
    if os.geteuid() == 0:
        if not _mount_tmpfs(where, "ro,size=1m"):
            pytest.skip("running as root without permission to mount a read-only tmpfs")
        yield where
        _umount(where)
    else:
        where.chmod(0o555)
        yield where
        where.chmod(0o755)


@pytest.fixture
def full_dir(tmp_path):
    """A folder on a nearly full disk: a 64 KiB tmpfs already filled to the last block (root only)."""
    where = tmp_path / "full"
    where.mkdir()
    if not _mount_tmpfs(where, "size=64k"):
        pytest.skip("needs root and permission to mount a tmpfs to simulate a full disk")
    try:
        with open(where / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
            except OSError:
                pass
    except OSError:
        pass
    yield where
    _umount(where)
