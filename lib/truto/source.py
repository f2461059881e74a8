"""Where the data comes from: Truto when a token is configured, else the demo emulator."""

from __future__ import annotations

from lib.config import Settings
from lib.truto.fetch import FetchResult, Progress, fetch_all


def effective_settings(settings: Settings) -> Settings:
    """Demo settings point the same client at the local demo emulator."""
    if settings.demo:
        from lib.truto.demo import demo_settings

        return demo_settings(settings)
    return settings


def fetch(settings: Settings, progress: Progress | None = None) -> FetchResult:
    return fetch_all(effective_settings(settings), progress=progress)
