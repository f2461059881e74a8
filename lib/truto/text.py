"""Vendor text made safe to show and export: :func:`clean_text`, :func:`unsafe_character`."""

from __future__ import annotations

import re
from typing import Any

# Vendor text is shown in tables and written to CSV files: characters that would break a row (CR, LF), hide
# text (NUL and other C0/C1 controls) or disguise it (bidi controls such as U+202E, which can make
# "gpj.exe" read as "exe.jpg") are not kept. A control becomes a space (NUL is dropped: PostgreSQL text cannot
# hold it); a bidi control is dropped; an unpaired UTF-16 surrogate, which no encoder accepts, becomes U+FFFD.
_CONTROLS = "\x01-\x1f\x7f-\x9f"
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_TEXT = re.compile(f"[\x00{_CONTROLS}{_BIDI}\ud800-\udfff]")
_UNSAFE_RE2 = (
    r"[\x{0}-\x{1f}\x{7f}-\x{9f}\x{61c}\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]"
)


def _safe_char(m: re.Match) -> str:
    c = m.group()
    if c == "\x00" or "\u061c" <= c <= "\u2069":
        return ""
    if "\ud800" <= c <= "\udfff":
        return "\ufffd"
    return " "


def clean_text(value: str) -> str:
    """Vendor text without line breaks, control or bidi characters and unpaired surrogates (see above)."""
    return _UNSAFE_TEXT.sub(_safe_char, value) if _UNSAFE_TEXT.search(value) else value


def unsafe_character(value: str) -> str | None:
    """The first character :func:`clean_text` would not keep, as U+XXXX, or None."""
    m = _UNSAFE_TEXT.search(value)
    return f"U+{ord(m.group()):04X}" if m else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = clean_text(value).strip()
        return value or None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return None
