"""Settings for the dashboard's own processes (the Streamlit app, ``python -m lib``), made at start.

:func:`prefer_small_pages`: on the project's machines (virtual, two cores), the first touch of memory
backed by a transparent huge page costs about 2-3 ms per MB (the host backs 2 MB of fresh memory at
once), against about 0.5 ms per MB for ordinary 4 KB pages, and NumPy and Arrow ask for huge pages for
their large arrays. A fresh process's first million-row build touches some 500 MB of new memory, so
it paid about 0.9 s more than the same build run again (``bench/metrics.py``: "cold" against "warm").
Opting the process out of transparent huge pages removes that difference; the later runs are no
slower. ``DASHBOARD_HUGE_PAGES=1`` in the environment keeps them. Child processes inherit the setting.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Mapping

HUGE_PAGES_ENV = "DASHBOARD_HUGE_PAGES"
_PR_SET_THP_DISABLE = 41  # linux/prctl.h
_PR_GET_THP_DISABLE = 42


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int = 0) -> int:
    return int(_libc().prctl(option, arg, 0, 0, 0))


def prefer_small_pages(env: Mapping[str, str] | None = None) -> bool:
    """Ask Linux not to back this process's memory with transparent huge pages (see the module's note).

    True when the process is now opted out; False elsewhere than Linux, when the environment keeps
    huge pages, or when the kernel refuses. Never raises: it only changes how fast memory is first
    touched, never what is computed.
    """
    found = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    if found.get(HUGE_PAGES_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    try:
        return _prctl(_PR_SET_THP_DISABLE, 1) == 0
    except (OSError, AttributeError):
        return False


def huge_pages_disabled() -> bool | None:
    """Whether this process is opted out of transparent huge pages (None: cannot tell here)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        found = _prctl(_PR_GET_THP_DISABLE)
    except (OSError, AttributeError):
        return None
    return None if found < 0 else bool(found)
