"""load_table: the shared loader's own rules."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from stationkit.errors import ParseError
from stationkit.parsers.table import TableLayout, load_table, max_line_bytes

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


CAMPBELL = TableLayout(
    columns=("t", "a", "s"), numeric=frozenset({"a"}), first_data_line=2, required="t"
)
NUMBER_LAST = TableLayout(
    columns=("t", "s", "a"), numeric=frozenset({"a"}), first_data_line=2, required="t"
)


@pytest.mark.parametrize(
    ("layout", "last", "kept", "why"),
    [
        # a number at the end proves nothing: "12." may be the start of "12.93"
        (NUMBER_LAST, b'"y","ok",12.', False, "no line break, and its last value '12.' may be"),
        (NUMBER_LAST, b'"y","ok",', False, "no line break, and its last value '' may be"),
        # a separator after it ends the number
        (NUMBER_LAST, b'"y","ok",12,', True, "kept: a separator ends its last field"),
        # a closing quote ends the field
        (CAMPBELL, b'"y",12,"ok"', True, "kept: its last field is a quoted string with its"),
        (CAMPBELL, b'"y",12,"o', False, "no line break, and its last field lacks its closing"),
        (CAMPBELL, b'"y",12', False, "it has 2 of 3 fields and no line break"),
        # a last column that is not read as numbers holds no reading to cut
        (CAMPBELL, b'"y",12,ok', True, "kept: its last field holds no reading"),
    ],
)
def test_a_last_line_without_line_break_is_kept_only_when_proven_complete(
    layout: TableLayout, last: bytes, kept: bool, why: str
) -> None:
    first = b'"x",1,"ok"' if layout is CAMPBELL else b'"x","ok",1'
    data = b"t,a,s\n" + first + b"\n" + last
    frame, warnings = load_table(data, layout, "f.dat")
    assert frame.height == (2 if kept else 1)
    assert warnings[0].startswith("line 3: ")
    assert why in warnings[0]
    if not kept:
        assert "truncated last line dropped" in warnings[0]


FIXED = replace(LAYOUT, fixed_decimals=True)


@pytest.mark.parametrize(
    ("last", "kept"),
    [
        (b"z\t1.0000\t2.5000", True),  # the column's 4 decimals: complete
        (b"z\t1.0000\t2.500", False),  # 3 of 4: cut
        (b"z\t1.0000\t2.", False),
        (b"z\t1.0000\t2", False),
    ],
)
def test_fixed_decimals_prove_a_last_line_complete(last: bytes, kept: bool) -> None:
    data = b"t\ta\tb\nx\t1.2500\t0.0000\ny\t3.0000\tnan\n" + last
    frame, warnings = load_table(data, FIXED, "f.txt")
    assert frame.height == (3 if kept else 2)
    assert ("the 4 decimals every value of its column has" in warnings[0]) is kept


def test_fixed_decimals_need_every_earlier_value_to_agree() -> None:
    data = b"t\ta\tb\nx\t1.2500\t0.000\ny\t3.0000\t1.0000\nz\t1.0000\t2.5000"
    frame, warnings = load_table(data, FIXED, "f.txt")
    assert frame.height == 2
    assert "truncated last line dropped" in warnings[0]


def test_quoted_missing_markers_are_missing_in_unquoted_layouts_too() -> None:
    layout = replace(LAYOUT, null_values=("NAN", ""))
    data = b't\ta\tb\nx\t"NAN"\t2\ny\t3\tNAN\n'
    frame, _ = load_table(data, layout, "f.txt")
    assert frame.rows() == [("x", None, 2.0), ("y", 3.0, None)]


def test_a_huge_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"t\ta\tb\nx\t1\t2\n" + b"7" * 200_000 + b"\ny\t3\t4\n")
    with pytest.raises(
        ParseError, match=r"f\.txt, line 3: a line of 200000 bytes, far longer than a row"
    ):
        load_table(path, LAYOUT, "f.txt")


def test_max_line_bytes_grows_with_the_header() -> None:
    wide = TableLayout(
        columns=[f"channel_{i:04d}" for i in range(1000)], numeric=frozenset(), first_data_line=2
    )
    assert max_line_bytes(LAYOUT) == 65536
    assert max_line_bytes(wide) == 64 * 1000 * (12 + 3)
