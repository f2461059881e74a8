import subprocess
import sys
from pathlib import Path

import pytest

from lib.process import huge_pages_disabled, prefer_small_pages

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's prctl")


# The setting is inherited by child processes: each fresh process starts from huge pages allowed.
_RESET = "from lib import process\nprocess._prctl(process._PR_SET_THP_DISABLE, 0)\n"


def _in_fresh_process(code: str, env: dict | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", _RESET + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return out.stdout.strip()


def test_a_fresh_process_is_opted_out_of_huge_pages_only_when_asked():
    code = (
        "from lib.process import huge_pages_disabled, prefer_small_pages\n"
        "before = huge_pages_disabled()\n"
        "done = prefer_small_pages()\n"
        "print(before, done, huge_pages_disabled())"
    )
    assert _in_fresh_process(code) == "False True True"


def test_the_environment_can_keep_huge_pages():
    assert prefer_small_pages({"DASHBOARD_HUGE_PAGES": "1"}) is False
    code = (
        "from lib.process import huge_pages_disabled, prefer_small_pages\n"
        "print(prefer_small_pages({'DASHBOARD_HUGE_PAGES': 'yes'}), huge_pages_disabled())"
    )
    assert _in_fresh_process(code) == "False False"


def test_the_entry_points_opt_out():
    # The CLI opts out before it runs a command; its help is enough to see it.
    code = (
        "import runpy, sys\n"
        "from lib.process import huge_pages_disabled\n"
        "sys.argv = ['lib', '--help']\n"
        "try:\n"
        "    runpy.run_module('lib', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('THP-OFF', huge_pages_disabled())"
    )
    assert _in_fresh_process(code).splitlines()[-1] == "THP-OFF True"
    assert "prefer_small_pages()" in (ROOT / "app.py").read_text()
    assert huge_pages_disabled() in (True, False)
