"""load_table: the shared loader's own rules."""

from __future__ import annotations

import pytest

from stationkit.errors import ParseError
from stationkit.parsers.table import TableLayout, load_table

LAYOUT = TableLayout(
    columns=("t", "a", "b"),
    numeric=frozenset({"a", "b"}),
    first_data_line=2,
    separator="\t",
    quote_char=None,
    required="t",
)


def test_rows_ending_with_a_separator_lose_only_the_empty_fields() -> None:
    data = b"t\ta\tb\nx\t1\t2\t\ny\t3\t4\n"  # the first row ends with a TAB
    frame, warnings = load_table(data, LAYOUT, "f.txt")
    assert frame.rows() == [("x", 1.0, 2.0), ("y", 3.0, 4.0)]
    assert warnings == [
        "rows end with extra empty fields (a trailing TAB); the empty fields were ignored"
    ]


def test_an_extra_field_with_a_value_is_still_an_error() -> None:
    with pytest.raises(ParseError, match=r"f\.txt, line 2: expected 3 fields, found 4"):
        load_table(b"t\ta\tb\nx\t1\t2\t9\ny\t3\t4\n", LAYOUT, "f.txt")
