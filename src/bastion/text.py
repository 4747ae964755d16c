"""Names people choose, and any stored text shown back: no control characters.

A name (a user's, a tenant's, a factor's, a service account's, a role's name or
description) is shown in terminals, logs, the console and audit exports. A newline there
forges a log line, an ANSI escape rewrites a terminal, a bidi override makes
``evil‮txt.exe`` read as ``evilexe.txt``. So:

- ``check_name`` refuses them at the door (one validator for every name): Unicode
  categories Cc (C0 and C1 controls, DEL), Cf (format: bidi embeddings, overrides and
  isolates, zero-width characters, the BOM, soft hyphen), Zl and Zp (line and paragraph
  separators), Cs (lone surrogates) and Cn (unassigned code points);
- ``printable`` escapes them wherever text is shown (``\\x1b``, ``\\u202e``), so that text
  stored before the check, or chosen by someone else (a user agent), is shown as what it
  is, never interpreted.
"""

from __future__ import annotations

import logging
import unicodedata

from bastion.errors import ValidationError

__all__ = [
    "UNSAFE_CATEGORIES",
    "PrintableFormatter",
    "check_name",
    "first_unsafe",
    "printable",
    "why_unsafe",
]

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in UNSAFE_CATEGORIES


def _escape(char: str) -> str:
    point = ord(char)
    if point <= 0xFF:
        return f"\\x{point:02x}"
    if point <= 0xFFFF:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def first_unsafe(value: str) -> int | None:
    """The index of the first control or invisible formatting character, or None."""
    for index, char in enumerate(value):
        if _unsafe(char):
            return index
    return None


def why_unsafe(value: str) -> str | None:
    """Why ``value`` cannot be a name (which code point, where; never the value itself,
    which may be meant for a terminal or a log), or None when it can."""
    index = first_unsafe(value)
    if index is None:
        return None
    return (
        "must not contain control characters, line breaks or invisible formatting "
        f"characters (found U+{ord(value[index]):04X} at position {index + 1})"
    )


def check_name(value: str, *, field: str) -> str:
    """``value`` unchanged, or ``ValidationError`` (422) naming ``field`` and saying why."""
    reason = why_unsafe(value)
    if reason is None:
        return value
    raise ValidationError(f"{field} {reason}.", field=field, reason="control_character")


_LAYOUT = frozenset("\t\n\r")


def printable(value: str, *, keep_layout: bool = False) -> str:
    """``value`` with every control or invisible formatting character escaped as
    ``\\x1b`` / ``\\u202e`` (shown as what it is, never interpreted). ``keep_layout``
    keeps tabs and line breaks, which are mere white space in HTML."""
    if first_unsafe(value) is None:
        return value
    return "".join(
        _escape(char) if _unsafe(char) and not (keep_layout and char in _LAYOUT) else char
        for char in value
    )


class PrintableFormatter(logging.Formatter):
    """Log lines whose message holds no control character: a name, a path or a header
    logged as an argument cannot forge a line or rewrite a terminal (a traceback, added
    after the message, keeps its line breaks)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)
