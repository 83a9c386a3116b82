"""`.ci/find-python.sh`: finds a Python >= 3.12 from a clean environment (`env -i`, any HOME) and says where."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FINDER = ROOT / ".ci" / "find-python.sh"

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or not Path("/usr/bin/env").exists(), reason="needs bash and env"
)


def find(home: Path, **env: str) -> subprocess.CompletedProcess:
    """Run find_python under `env -i` with only HOME, PATH=/usr/bin:/bin, SPARKBANDIT_NO_INSTALL and `env`."""
    assigns = [
        f"{k}={v}"
        for k, v in {"HOME": str(home), "PATH": "/usr/bin:/bin", "SPARKBANDIT_NO_INSTALL": "1", **env}.items()
    ]
    return subprocess.run(
        ["env", "-i", *assigns, "bash", "-c", f"source {FINDER}; find_python"],
        capture_output=True,
        text=True,
        check=False,
    )


def version_of(python: str) -> tuple[int, int]:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1])


def test_finds_a_python_312_from_env_i_with_a_foreign_home(tmp_path):
    res = find(tmp_path / "h")
    if res.returncode != 0:
        pytest.skip(f"no Python >= 3.12 installed where the finder looks: {res.stderr.strip()}")
    python = res.stdout.strip()
    assert version_of(python) >= (3, 12)
    assert re.fullmatch(rf"found Python 3\.1\d\.\d+ at {re.escape(python)} \(.+\)", res.stderr.strip())


def test_pyenv_root_comes_first_and_is_named(tmp_path):
    root = tmp_path / "pyenv"
    (root / "versions" / "3.12.99" / "bin").mkdir(parents=True)
    (root / "versions" / "3.12.99" / "bin" / "python").symlink_to(sys.executable)  # this test's Python (>= 3.12)
    res = find(tmp_path / "h", PYENV_ROOT=str(root))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{root}/versions/3.12.99/bin/python"
    assert res.stderr.strip().endswith(f"at {root}/versions/3.12.99/bin/python (pyenv at {root})")


def test_sparkbandit_python_overrides_and_a_bad_one_is_reported(tmp_path):
    res = find(tmp_path / "h", SPARKBANDIT_PYTHON=sys.executable)
    assert res.returncode == 0 and res.stdout.strip() == sys.executable
    assert res.stderr.strip().endswith("(SPARKBANDIT_PYTHON)")
    bad = find(tmp_path / "h", SPARKBANDIT_PYTHON="/nonexistent/python")
    assert bad.stderr.splitlines()[0] == (
        "SPARKBANDIT_PYTHON=/nonexistent/python is not a Python >= 3.12 with venv; looking elsewhere"
    )


def test_an_old_python_is_skipped(tmp_path):
    root = tmp_path / "pyenv"
    old = root / "versions" / "3.12.0" / "bin"
    old.mkdir(parents=True)
    # a "python" that says it is 3.11: the finder must run it and refuse it
    (old / "python").write_text("#!/bin/sh\nexit 1\n")
    (old / "python").chmod(0o755)
    res = find(tmp_path / "h", PYENV_ROOT=str(root))
    assert f"{old}/python" not in res.stdout
