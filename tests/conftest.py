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

import pytest  # noqa: E402

from lib.emulator import Emulator  # noqa: E402


@pytest.fixture
def emulator():
    """Start emulators on free loopback ports: ``emulator(dataset, **options)``; all stopped after the test."""
    started = []

    def start(data, **options):
        from tests.factories import TOKEN

        options.setdefault("token", TOKEN)
        emu = Emulator(data, **options).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
