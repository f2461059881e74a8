"""Truto: the HTTP client, the fetch of every account, validation into tidy tables, the emulator and demo data."""
