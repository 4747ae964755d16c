"""Names refuse control characters; stored text is escaped where it is shown (issue 11.11)."""

from __future__ import annotations

import logging

import pytest

from bastion.errors import ValidationError
from bastion.text import PrintableFormatter, check_name, printable


@pytest.mark.parametrize(
    ("value", "point"),
    [
        ("a\nb", "U+000A"),
        ("a\x00", "U+0000"),
        ("\x1b[2Jx", "U+001B"),
        ("a\x7f", "U+007F"),
        ("a\x85", "U+0085"),  # C1 next line
        ("evil\u202etxt.exe", "U+202E"),
        ("a\u2066b", "U+2066"),
        ("a\u2028b", "U+2028"),
        ("a\u200bb", "U+200B"),
        ("a\ufeff", "U+FEFF"),
        ("a\ud800", "U+D800"),
        ("a\U000e0001", "U+E0001"),
    ],
)
def test_a_name_with_a_control_or_invisible_character_is_refused(value: str, point: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_name(value, field="name")
    assert refused.value.fields == {"field": "name", "reason": "control_character"}
    assert point in refused.value.detail
    assert value not in refused.value.detail


@pytest.mark.parametrize(
    "value", ["ops team", "Équipe d'audit — lecture seule", "日本語", "😀 phone"]
)
def test_letters_of_every_script_and_symbols_are_names(value: str) -> None:
    assert check_name(value, field="name") == value


def test_printable_escapes_what_it_finds_and_leaves_the_rest() -> None:
    assert printable("plain") == "plain"
    assert printable("eve\x1b[2J\u202egnp\U000e0001") == "eve\\x1b[2J\\u202egnp\\U000e0001"
    assert printable("a\nb\tc") == "a\\x0ab\\x09c"
    assert printable("a\nb\tc\u202e", keep_layout=True) == "a\nb\tc\\u202e"


def test_log_lines_cannot_be_forged_by_an_argument() -> None:
    formatter = PrintableFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord(
        "bastion", logging.INFO, __file__, 1, "export of %s", ("docs\nERROR forged",), None
    )
    assert formatter.format(record) == "INFO export of docs\\x0aERROR forged"
