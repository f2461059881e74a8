"""Shared test setup: the project root on sys.path, and no real secrets leaking into tests."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests never read the developer's real Truto settings from the environment.
for _name in list(os.environ):
    if _name.startswith("TRUTO_"):
        del os.environ[_name]
