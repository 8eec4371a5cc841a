"""Windographer text data files: corpus, fixtures, quirks, round trip, errors."""

from __future__ import annotations

import io
import struct
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stationkit.errors import ParseError
from stationkit.parsers import windographer
from stationkit.parsers.windographer import read_windographer, sniff
from tests.conftest import CORPUS, FIXTURES, corpus_files

FOLDER = "WINDOGRAPHER_TXT"
DEMO = CORPUS / FOLDER / "brightwind-dev__brightwind__windographer_demo_data1.txt"
HERE = FIXTURES / "windographer"


def data_files() -> list[Path]:
    """The corpus folder also holds a flagging log, which is not a data file."""
    return [p for p in corpus_files(FOLDER) if "flagging_log" not in p.name]


def dt(*args: int) -> datetime:
    return datetime(*args)


# --- corpus -------------------------------------------------------------------


def test_corpus_has_the_demo_file() -> None:
    assert DEMO in data_files()


@pytest.mark.parametrize("path", data_files(), ids=lambda p: p.name)
def test_every_corpus_file_parses_and_sniffs(path: Path) -> None:
    assert sniff(path.read_bytes()[:8192])
    result = read_windographer(path)
    assert result.rows > 0
    assert result.frame.get_column("timestamp").null_count() == 0


def test_demo_shape_and_cells() -> None:
    result = read_windographer(DEMO)
    frame = result.frame
    # 201 lines: 12 preamble lines, the header on line 13, data on lines 14-201
    assert frame.shape == (188, 30)
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    first = frame.row(0, named=True)
    assert first["timestamp"].replace(tzinfo=None) == dt(2016, 1, 9, 15, 30)
    assert first["Spd80mN"] == 8.37
    assert first["Spd80mS"] == 7.911
    assert first["BattMin"] == 12.94
    # line 100: 10/01/2016 07:00:00+00:00 ... Dir78mS 209, T2m -0.057, P2m 919, BattMin 12.43
    row = frame.row(100 - 14, named=True)
    assert row["timestamp"].replace(tzinfo=None) == dt(2016, 1, 10, 7, 0)
    assert (row["Dir78mS"], row["T2m"], row["P2m"], row["BattMin"]) == (209.0, -0.057, 919.0, 12.43)
    # the gap 15:40 -> 17:00 on line 15/16 is kept as logged
    assert frame.get_column("timestamp")[2].replace(tzinfo=None) == dt(2016, 1, 9, 17, 0)
    last = frame.row(-1, named=True)
    assert last["timestamp"].replace(tzinfo=None) == dt(2016, 1, 10, 23, 50)
    assert (last["RH2m"], last["BattMin"], last["Spd40mN"]) == (99.1, 12.44, 9.03)


def test_demo_every_cell_is_the_number_as_printed() -> None:
    """Read the text independently and compare every cell exactly."""
    lines = DEMO.read_text().splitlines()
    header = lines[12].split("\t")
    frame = read_windographer(DEMO).frame
    assert frame.columns[1:] == header[1:]
    for i, line in enumerate(lines[13:]):
        fields = line.split("\t")
        for name, text in zip(header[1:], fields[1:], strict=True):
            assert frame.get_column(name)[i] == float(text), (i, name, text)


def test_demo_metadata() -> None:
    result = read_windographer(DEMO)
    meta = result.meta
    assert meta.format == "windographer"
    assert meta.timestamp_is_end_of_period is False
    assert meta.extra["created"] == "10-05-2019 14:36"
    assert meta.extra["created_by"] == "Windographer 4.1.14"
    assert meta.extra["latitude"] == 0.0
    assert meta.extra["longitude"] == 0.0
    assert meta.extra["elevation_m"] == 0.0
    assert meta.extra["calm_threshold"] == "0 m/s"
    assert meta.extra["included_flags"] == "<Unflagged data>"
    assert meta.extra["excluded_flags"] == "Low quality"
    # 09/01/2016 could be 1 September: the regular 10-min steps decide, with a warning
    assert any("ambiguous" in w for w in meta.warnings)


def test_demo_channel_labels() -> None:
    channels = {c.name: c for c in read_windographer(DEMO).channels}
    assert len(channels) == 29
    std = channels["Spd80mNStd"]
    assert (std.statistic, std.height_m) == ("sd", 80.0)
    assert std.attrs["measurement_type"] == "wind_speed"
    assert std.attrs["orientation"] == "N"
    mean = channels["Spd40mS"]
    assert (mean.statistic, mean.height_m, mean.attrs["orientation"]) == ("avg", 40.0, "S")
    assert mean.attrs["statistic_assumed"] is True
    assert channels["Spd60mSMax"].statistic == "max"
    direction = channels["Dir38mSStd"]
    assert (direction.statistic, direction.height_m) == ("sd", 38.0)
    assert direction.attrs["measurement_type"] == "wind_direction"
    temp = channels["T2m"]
    assert (temp.height_m, temp.attrs["measurement_type"]) == (2.0, "air_temperature")
    assert channels["RH2m"].attrs["measurement_type"] == "relative_humidity"
    assert channels["P2m"].attrs["measurement_type"] == "air_pressure"
    rain = channels["PrcpTot"]
    assert (rain.statistic, rain.height_m, rain.attrs["measurement_type"]) == (
        "sum",
        None,
        "precipitation",
    )
    batt = channels["BattMin"]
    assert (batt.statistic, batt.attrs["measurement_type"]) == ("min", "voltage")


def test_forcing_month_first_changes_the_reading() -> None:
    result = read_windographer(DEMO, dayfirst=False)
    assert result.frame.get_column("timestamp")[0].replace(tzinfo=None) == dt(2016, 9, 1, 15, 30)
    assert not any("ambiguous" in w for w in result.meta.warnings)


def test_path_and_file_like_give_the_same_result() -> None:
    from_path = read_windographer(DEMO)
    from_stream = read_windographer(io.BytesIO(DEMO.read_bytes()), name="demo.txt")
    assert from_stream.frame.equals(from_path.frame)
    assert from_stream.channels == from_path.channels


# --- fixtures: exact tables and quirks ------------------------------------------


def test_tiny_exact_table() -> None:
    result = read_windographer(HERE / "tiny.txt")
    expected = pl.DataFrame(
        {
            "timestamp": [
                dt(2024, 1, 31, 23, 50),
                dt(2024, 2, 1, 0, 0),
                dt(2024, 2, 1, 0, 10),
            ],
            "Speed 80 m N Mean": [8.37, None, 7.652],
            # 9999 / -9999 are readings unless missing_markers says otherwise
            "WS 80m N SD": [1.24, 0.875, -9999.0],
            "Direction 78 m S": [114.2, 9999.0, 117.8],
            "Temperature 2 m": [-0.057, 0.63, 1.126],
            # whole fields only: 1019.9999 and 99999 are numbers
            "Pressure 2 m [hPa]": [1019.9999, 1013.25, 99999.0],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert result.frame.equals(expected)
    meta = result.meta
    (warning,) = meta.warnings
    assert warning.startswith("columns WS 80m N SD, Direction 78 m S hold values of exactly 9999")
    assert meta.timestamp_is_end_of_period is True
    assert meta.extra["latitude"] == -33.5
    assert meta.extra["longitude"] == -7.12
    assert meta.extra["elevation_m"] == 120.0
    assert meta.extra["calm_threshold"] == "0.5 m/s"
    assert meta.extra["excluded_flags"] == "Icing, Tower shadow"
    assert meta.extra["created_by"] == "Windographer 4.2.3"
    channels = {c.name: c for c in result.channels}
    speed = channels["Speed 80 m N Mean"]
    assert (speed.statistic, speed.height_m, speed.attrs["orientation"]) == ("avg", 80.0, "N")
    assert "statistic_assumed" not in speed.attrs
    sd = channels["WS 80m N SD"]
    assert (sd.statistic, sd.height_m, sd.attrs["measurement_type"]) == ("sd", 80.0, "wind_speed")
    direction = channels["Direction 78 m S"]
    assert (direction.statistic, direction.height_m) == ("avg", 78.0)
    assert direction.attrs["measurement_type"] == "wind_direction"
    pressure = channels["Pressure 2 m [hPa]"]
    assert (pressure.unit, pressure.height_m) == ("hPa", 2.0)
    assert pressure.attrs["measurement_type"] == "air_pressure"


def test_bom_crlf_day_first_utc_and_trailing_tabs() -> None:
    result = read_windographer(HERE / "bom_crlf_dayfirst_utc.txt")
    expected = pl.DataFrame(
        {
            "timestamp": [dt(2016, 1, 13, 23, 50), dt(2016, 1, 14, 0, 0)],
            "Spd80mN": [8.37, None],  # NaN
            "Spd80mNStd": [1.24, 0.875],
            "Dir78mSStd": [6.1, 5.114],
            "T2m": [0.711, 0.63],
            "PrcpTot": [0.0, 0.2],
            "BattMin": [12.94, 12.95],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    ).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    assert result.frame.equals(expected)
    assert result.meta.timestamp_is_end_of_period is False
    assert result.meta.extra["latitude"] == 53.21
    assert result.meta.extra["longitude"] == 7.12
    assert result.meta.extra["elevation_m"] == pytest.approx(394 * 0.3048)
    assert result.meta.extra["encoding"] == "utf-8-sig"
    assert result.meta.warnings == ()  # 13/01 cannot be month-first


def test_truncated_last_line_is_dropped_with_a_warning() -> None:
    result = read_windographer(HERE / "truncated_last_line.txt")
    assert result.frame.get_column("Spd80mS").to_list() == [7.911, 7.9]
    assert any(w.startswith("line 4: truncated last line dropped") for w in result.meta.warnings)


def test_lone_cr_line_ends_and_missing_final_break() -> None:
    result = read_windographer(HERE / "cr_only_no_final_break.txt")
    # the last line ends in a number without a line break: it may be cut short
    assert result.frame.get_column("timestamp").to_list() == [dt(2024, 2, 1, 0, 0)]
    assert result.frame.get_column("Spd80mN").to_list() == [5.5]
    assert any("truncated last line dropped (no line break" in w for w in result.meta.warnings)


def test_latin1_preamble_and_unit() -> None:
    result = read_windographer(HERE / "latin1_preamble.txt")
    assert result.meta.extra["preamble"]["Site"] == "Mât Bénodet"
    (channel,) = result.channels
    assert (channel.name, channel.unit, channel.height_m) == ("T2m [°C]", "°C", 2.0)
    assert result.frame.get_column("T2m [°C]").to_list() == [-1.5]


def test_twelve_hour_clock_semicolons_and_decimal_commas() -> None:
    path = HERE / "ampm_semicolon_decimal_comma.txt"
    assert sniff(path.read_bytes())
    result = read_windographer(path)
    expected = pl.DataFrame(
        {
            # 1/13/2016 settles the order: month first
            "timestamp": [dt(2016, 1, 9, 15, 30), dt(2016, 1, 9, 15, 40), dt(2016, 1, 13, 0, 0)],
            "Spd80mN": [8.37, 8.1, None],
            "T2m": [-0.5, 1019.9999, 2.0],
        },
        schema_overrides={"timestamp": pl.Datetime("us")},
    )
    assert result.frame.equals(expected)
    assert result.meta.warnings == ()


def test_duplicate_rows_are_kept_as_logged() -> None:
    result = read_windographer(HERE / "duplicate_rows.txt")
    assert result.frame.get_column("Spd80mN").to_list() == [5.5, 5.5, 6.0]


def test_missing_markers_are_whole_field_codes() -> None:
    result = read_windographer(HERE / "tiny.txt", missing_markers=["9999", "-9999"])
    assert result.frame.get_column("Direction 78 m S").to_list() == [114.2, None, 117.8]
    assert result.frame.get_column("WS 80m N SD").to_list() == [1.24, 0.875, None]
    # whole fields only: 1019.9999 and 99999 stay numbers
    assert result.frame.get_column("Pressure 2 m [hPa]").to_list() == [1019.9999, 1013.25, 99999.0]
    assert result.meta.warnings == ()
    only = read_windographer(HERE / "tiny.txt", missing_markers=["-9999"])
    assert only.frame.get_column("Direction 78 m S").to_list() == [114.2, 9999.0, 117.8]


def test_missing_markers_as_one_string_is_refused() -> None:
    with pytest.raises(ParseError, match="missing_markers must be a list"):
        read_windographer(HERE / "tiny.txt", missing_markers="9999")


@pytest.mark.parametrize(
    ("label", "statistic", "height", "kind"),
    [
        ("Speed 80 m N Mean", "avg", 80.0, "wind_speed"),
        ("WS 80m N SD", "sd", 80.0, "wind_speed"),
        ("Direction 78 m S", "avg", 78.0, "wind_direction"),
        ("Temperature 2 m", "avg", 2.0, "air_temperature"),
        ("Speed 10.5 m TI", "ti", 10.5, "wind_speed"),
        ("Spd80mNTI", "ti", 80.0, "wind_speed"),
        ("Speed 60 m A Gust", "gust", 60.0, "wind_speed"),
        ("WS_80m_N_SD", "sd", 80.0, "wind_speed"),
        # labels as stationkit's Windographer export writes them
        ("T 2m Mean", "avg", 2.0, "air_temperature"),
        ("RH 2m Max", "max", 2.0, "relative_humidity"),
        ("P 2m Mean", "avg", 2.0, "air_pressure"),
        ("Density 2m Mean", "avg", 2.0, "air_density"),
        ("GHI 3m Mean", "avg", 3.0, "global_horizontal_irradiance"),
        ("VSpd 80m VecMean", "vector_avg", 80.0, "vertical_wind_speed"),
        ("WS 2.5m Range", "range", 2.5, "wind_speed"),
        ("WD 78m Sample", "sample", 78.0, "wind_direction"),
        ("WD 78m Median", "median", 78.0, "wind_direction"),
        ("WS 80m Count", "count", 80.0, "wind_speed"),
        ("Prcp Sum", "sum", None, "precipitation"),
        ("Batt Min", "min", None, "voltage"),
        ("WS 80m N Mean #2", "avg", 80.0, "wind_speed"),
        ("Status", None, None, None),
        ("Admin", None, None, None),
    ],
)
def test_column_labels(
    label: str, statistic: str | None, height: float | None, kind: str | None
) -> None:
    channel = windographer._channel(label)
    assert channel.name == label
    assert channel.statistic == statistic
    assert channel.height_m == height
    assert channel.attrs.get("measurement_type") == kind


# --- round trip -----------------------------------------------------------------

numbers = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(numbers, numbers), min_size=1, max_size=30), st.booleans())
def test_round_trip_values_are_exact(
    rows: list[tuple[float | None, float | None]], crlf: bool
) -> None:
    """What an export prints (repr or fixed decimals) reads back bit for bit.

    repr and fixed decimals always print a point, so they never equal the
    whole-field missing-data codes 9999 / -9999.
    """
    start = datetime(2024, 1, 1)
    eol = "\r\n" if crlf else "\n"
    lines = ["Time stamps indicate the beginning of the time step.", "", "Date/Time\tSpd80mN\tT2m"]
    expected: list[tuple[float | None, float | None]] = []
    for i, (a, b) in enumerate(rows):
        text_a = "" if a is None else repr(a)
        text_b = "" if b is None else f"{b:.4f}"
        stamp = start + timedelta(minutes=10 * i)
        lines.append(f"{stamp:%Y-%m-%d %H:%M:%S}\t{text_a}\t{text_b}")
        expected.append(
            (None if a is None else float(text_a), None if b is None else float(text_b))
        )
    data = (eol.join(lines) + eol).encode()
    result = read_windographer(io.BytesIO(data), name="roundtrip.txt")
    assert (
        list(
            zip(
                *result.frame.select("Spd80mN", "T2m").to_dict(as_series=False).values(),
                strict=True,
            )
        )
        == expected
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64)),
        min_size=1,
        max_size=40,
    )
)
def test_round_trip_of_polars_written_numbers(values: list[float | None]) -> None:
    """The way stationkit's export prints numbers (polars, no exponent, integers
    without '.0', blank for missing) reads back to the same float64 bits --
    9999 included, since no missing-data code is assumed."""
    start = datetime(2024, 1, 1)
    wide = pl.DataFrame(
        {
            "Date/Time": [start + timedelta(minutes=10 * i) for i in range(len(values))],
            "WS 80m N Mean": pl.Series(values, dtype=pl.Float64),
        }
    )
    buffer = io.BytesIO(b"Time stamps indicate the beginning of the time step.\r\n\r\n")
    buffer.seek(0, io.SEEK_END)
    wide.write_csv(
        buffer,
        separator="\t",
        line_terminator="\r\n",
        datetime_format="%Y-%m-%d %H:%M:%S",
        float_scientific=False,
        null_value="",
        quote_style="never",
    )
    result = read_windographer(io.BytesIO(buffer.getvalue()), name="export.txt")
    got = result.frame.get_column("WS 80m N Mean").to_list()
    assert [None if v is None else struct.pack("<d", v) for v in got] == [
        None if v is None else struct.pack("<d", v) for v in values
    ]
    assert result.frame.get_column("timestamp").to_list() == wide.get_column("Date/Time").to_list()


# --- errors ---------------------------------------------------------------------


def test_no_header_line() -> None:
    with pytest.raises(ParseError, match="expected a header line starting with 'Date/Time'"):
        read_windographer(HERE / "no_header.txt")


def test_bad_number_names_line_and_column() -> None:
    with pytest.raises(
        ParseError, match=r"line 3: column 'Spd80mN': expected a number, found 'fault'"
    ):
        read_windographer(HERE / "bad_number.txt")


def test_bad_timestamp_names_its_line() -> None:
    with pytest.raises(ParseError, match=r"line 4: .*2024-02-31 99:99") as info:
        read_windographer(HERE / "bad_timestamp.txt")
    assert info.value.line == 4


def test_duplicate_column_name() -> None:
    with pytest.raises(ParseError, match=r"line 1: duplicate column name 'Spd80mN'"):
        read_windographer(HERE / "duplicate_column.txt")


def test_unknown_separator() -> None:
    data = b"Date/Time Spd80mN\n2024-01-01 00:00 5\n"
    with pytest.raises(ParseError, match=r"line 1: expected a tab"):
        read_windographer(io.BytesIO(data), name="spaces.txt")


@pytest.mark.parametrize(
    "data",
    [
        b"Date/Time\tSpd80mN\n2024-01-01 00:00\t5\n2024-01-01 00:10\t5\t7\n",
        b"Date/Time\tSpd80mN\t\n2024-01-01 00:00\t5\t\n2024-01-01 00:10\t5\t7\n",
    ],
)
def test_extra_value_beyond_the_header(data: bytes) -> None:
    with pytest.raises(ParseError, match=r"extra.txt, line 3: expected 2 fields"):
        read_windographer(io.BytesIO(data), name="extra.txt")


# --- sniffing -------------------------------------------------------------------


def test_sniff_accepts_fixtures() -> None:
    for name in ("tiny.txt", "bom_crlf_dayfirst_utc.txt", "truncated_last_line.txt"):
        assert sniff((HERE / name).read_bytes()[:8192]), name


def test_sniff_rejects_every_other_corpus_file() -> None:
    ours = set(data_files())
    others = [p for p in CORPUS.rglob("*") if p.is_file() and p not in ours]
    assert others
    for path in others:
        assert not sniff(path.read_bytes()[:8192]), path.name
