"""The suite's own set-up: browser tests run one after another on one xdist worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_browser_tests_share_one_worker_under_xdist(tmp_path):
    """Two Streamlit servers and two Chromiums at once made page loads time out; pytest 9 dropped the
    id xdist 3.8 groups by, so every browser test was spread over both workers (tests/conftest.py)."""
    log = tmp_path / "workers.txt"
    (tmp_path / "test_spread.py").write_text(
        "import os, pytest\n"
        "pytestmark = pytest.mark.browser\n"
        "@pytest.mark.parametrize('i', range(8))\n"
        "def test_where(i):\n"
        f"    open({str(log)!r}, 'a').write(os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n"
        "@pytest.mark.parametrize('i', range(8))\n"
        "def test_free(i):\n"
        "    pass\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(ROOT),
            "-n",
            "2",
            "--dist",
            "loadgroup",
            str(tmp_path / "test_spread.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workers = log.read_text().split()
    assert len(workers) == 8 and len(set(workers)) == 1, workers
