"""Column labels: what Windographer (and our reader) recognises, unique, ordered."""

from __future__ import annotations

from pathlib import Path

import pytest

from stationkit.export.labels import clean_text, format_number, make_columns, orientation
from stationkit.parsers.windographer import read_windographer


def labels(keys: list[tuple[str, str | None, str | None, float | None]]) -> list[str]:
    return [c.label for c in make_columns(keys)]


def test_issue_example_qualifier_only_where_two_points_share_type_and_height() -> None:
    keys = [
        ("Dir78mS", "avg", "wind_direction", 78.0),
        ("Spd80mS", "avg", "wind_speed", 80.0),
        ("Spd80mN", "sd", "wind_speed", 80.0),
        ("Spd80mN", "avg", "wind_speed", 80.0),
    ]
    assert labels(keys) == ["WS 80m N Mean", "WS 80m N SD", "WS 80m S Mean", "WD 78m Mean"]


def test_order_types_then_height_descending_then_point_then_statistic() -> None:
    keys = [
        ("BattV", "min", None, None),
        ("Tmp2m", "avg", "air_temperature", 2.0),
        ("Spd40m", "max", "wind_speed", 40.0),
        ("Spd40m", "avg", "wind_speed", 40.0),
        ("Spd100m", "gust", "wind_speed", 100.0),
        ("Spd100m", "ti", "wind_speed", 100.0),
        ("RH", "avg", "relative_humidity", None),
        ("Hs", "avg", "wave_height", None),
    ]
    assert labels(keys) == [
        "WS 100m Gust",
        "WS 100m TI",
        "WS 40m Mean",
        "WS 40m Max",
        "T 2m Mean",
        "RH Mean",
        "Hs Mean",
        "BattV Min",
    ]


def test_points_without_orientation_are_told_apart_by_name() -> None:
    keys = [("Anem_A", "avg", "wind_speed", 80.0), ("Anem_B", "avg", "wind_speed", 80.0)]
    assert labels(keys) == ["WS 80m Anem_A Mean", "WS 80m Anem_B Mean"]
    # the same orientation twice is no help either
    keys = [("WS80mN", "avg", "wind_speed", 80.0), ("WS80mN2", "avg", "wind_speed", 80.0)]
    assert labels(keys) == ["WS 80m WS80mN Mean", "WS 80m WS80mN2 Mean"]


def test_points_whose_labels_leave_the_height_out_are_told_apart_by_name() -> None:
    """Below the datum (a sea-level reference) or unknown, the height is not
    written: such points of one type were told apart only by " #2"."""
    cols = make_columns(
        [
            ("Cur@-5m", "avg", "wind_speed", -5.0),
            ("Cur@-10m", "avg", "wind_speed", -10.0),
            ("Hub", "avg", "wind_speed", None),
        ]
    )
    assert [c.label for c in cols] == ["WS Cur@-5m Mean", "WS Cur@-10m Mean", "WS Hub Mean"]


def test_labels_are_unique_and_free_of_separators() -> None:
    keys = [
        ("WS 80m N", "avg", None, None),  # an untyped point that looks like a label
        ("Spd80mN", "avg", "wind_speed", 80.0),
        ("Spd80mS", "avg", "wind_speed", 80.0),
        ("bad\tname\r\n", None, None, None),
    ]
    got = labels(keys)
    assert got == ["WS 80m N Mean", "WS 80m S Mean", "WS 80m N Mean #2", "bad name"]
    assert len(set(got)) == len(got)


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ("Spd80mN", "N"),
        ("Spd80mNE", "NE"),
        ("WS_80m_SW", "SW"),
        ("Dir78mS", "S"),
        ("WS", None),
        ("Pressure", None),
        ("Spd80m", None),
        ("Anem 60 m NNW", "NNW"),
    ],
)
def test_orientation(point: str, expected: str | None) -> None:
    assert orientation(point) == expected


def test_numbers_and_text() -> None:
    assert [format_number(v) for v in (80.0, 2.5, 120.0, -3.0, 0.1 + 0.2)] == [
        "80",
        "2.5",
        "120",
        "-3",
        "0.30000000000000004",
    ]
    assert clean_text("  a\tb \n c ") == "a b c"


def test_our_reader_recovers_type_height_and_statistic_from_every_label(tmp_path: Path) -> None:
    keys = [
        ("Spd80mN", "avg", "wind_speed", 80.0),
        ("Spd80mN", "sd", "wind_speed", 80.0),
        ("Spd80mS", "max", "wind_speed", 80.0),
        ("Spd80mS", "avg", "wind_speed", 80.0),
        ("Dir78mS", "avg", "wind_direction", 78.0),
        ("Tmp2m", "min", "air_temperature", 2.0),
        ("RH2m", "avg", "relative_humidity", 2.0),
        ("P2m", "avg", "air_pressure", 2.5),
        ("Prcp", "sum", "precipitation", None),
        ("Spd100m", "gust", "wind_speed", 100.0),
        ("Spd100m", "ti", "wind_speed", 100.0),
        # IEA points sharing a name, qualified by height (depth bins below sea level)
        ("WtrSpd@-10.5m", "avg", None, -10.5),
        ("Tilt@0m#2", "avg", None, 0.0),
    ]
    columns = make_columns(keys)
    path = tmp_path / "labels.txt"
    header = "\t".join(["Date/Time", *(c.label for c in columns)])
    path.write_bytes(f"{header}\r\n2024-01-01 00:00:00{chr(9) * len(columns)}\r\n".encode())
    channels = read_windographer(path).channels
    assert [c.name for c in channels] == [c.label for c in columns]
    for column, info in zip(columns, channels, strict=True):
        assert info.statistic == column.statistic, column.label
        assert info.height_m == column.height_m, column.label
        assert info.attrs.get("measurement_type") == column.measurement_type, column.label
