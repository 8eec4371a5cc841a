"""Scintec sodar main-data files (``.mnd``, ``FORMAT-1``), as written by APRun.

Layout::

    FORMAT-1
    2023-04-04 00:15:00 0          file start time, file count
    MFAS                           instrument type
    6 26 58                        comment lines, variables (without z), height levels
    # file information
    device serial number        : A-C-0417        (comment lines "key : value")
    ...
    # variable definitions
    height # z # m # Z1 # 0 # 99999               label # symbol # unit # type # mask # missing
    wind speed # speed # m/s # G1 # 0 # 99.99
    ...
    # beginning of data block

    2023-04-04 00:15:00 00:15:00   END of the averaging period, averaging duration
    #    z  speed    dir ...       the block's column symbols
        30   3.67  129.9 ...       one whitespace-separated row per height

Reading rules:

* Profile data is long (time x height); the frame is wide: one channel per
  (variable, height) named ``<symbol>_<height>m`` with the symbol as the
  block's column line spells it (``speed_30m``, ``sigW_40m``, ``CT^2_600m``),
  in variable-major order (all heights of ``speed``, then of ``dir``, ...),
  heights ascending. ``height_m`` is the row's ``z`` [m]; ``unit`` is the
  definition's unit (None when empty); ``attrs`` keep label, type code,
  missing value and error mask. A height a profile lacks is null there.
* Statistic: ``sigma ...`` variables are ``sd``, ``turbulence intensity``
  is ``ti``, the wind components/speed/direction are ``avg``; the rest
  (backscatter, shear, TKE, EDR, CT^2, stability class, error code) None.
* Missing values are per variable (the definition's last field: 99.99,
  999.9, 9.99E+37, 99999, ...): a field equal to it as a number becomes
  null (whole-field comparison, never substring stripping).
* Time labels are naive logger-clock labels marking the END of the averaging
  period (the file of 2023-04-04 runs 00:15 .. 2023-04-05 00:00 with 15 min
  durations): ``timestamp_is_end_of_period=True`` and ``interval_s`` from the
  duration when every block states the same one. The file states no zone.
* Non-profile (type ``NS``) variables and ``FORMAT-1.1`` (scintillometer)
  files are not supported: ParseError, resp. not sniffed.
* UTF-8 BOM, CRLF/LF/CR are accepted. A truncated last row (fewer fields)
  is dropped with a warning, and so is a last row without a line break
  (its last number may be cut short: ``12.`` of ``12.93``).
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from stationkit.errors import ParseError
from stationkit.parsers.base import TIMESTAMP, ChannelInfo, FileMeta, ParseResult, Source
from stationkit.parsers.sources import decode, read_bytes, source_name, split_lines
from stationkit.parsers.timeparse import parse_timestamps_first_fit

FORMAT = "scintec_mnd"
MAGIC = "FORMAT-1"
DEF_MARKER = "# variable definitions"
DATA_MARKER = "# beginning of data block"
HEIGHT_SYMBOL = "z"
NON_PROFILE_TYPE = "NS"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_BLOCK_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})\s+(\d+):(\d{2}):(\d{2})\s*$")
_SNIFF_DATE = re.compile(rb"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
AVG_LABELS = ("wind speed", "wind direction", "wind w", "wind u", "wind v")


def sniff(head: bytes) -> bool:
    """True for a Scintec FORMAT-1 file: magic line, then a date-time line."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    lines = re.split(rb"\r\n|\r|\n", head, maxsplit=2)
    return (
        len(lines) >= 2
        and lines[0].rstrip() == MAGIC.encode()
        and _SNIFF_DATE.match(lines[1]) is not None
    )


def read_scintec_mnd(source: Source, *, name: str | None = None) -> ParseResult:
    """Read one Scintec FORMAT-1 main-data file into the wide ParseResult."""
    fname = source_name(source, name)
    text, _ = decode(read_bytes(source))
    lines = split_lines(text)
    if not lines or lines[0].strip() != MAGIC:
        raise ParseError(fname, f"expected {MAGIC!r} on the first line", line=1)
    extra, variables, first_data = _header(lines, fname)
    profile_vars = [v for v in variables if v["type"] != NON_PROFILE_TYPE]
    if len(profile_vars) != len(variables):
        raise ParseError(fname, "non-profile (NS) variables are not supported")
    ends_with_break = text.endswith(("\n", "\r")) or text[-1:].isspace()
    return _data(lines, first_data, variables, extra, fname, ends_with_break=ends_with_break)


def _header(lines: list[str], fname: str) -> tuple[dict[str, object], list[dict[str, str]], int]:
    """Header details, variable definitions, index of the first data-block line."""
    if len(lines) < 4:
        raise ParseError(fname, "expected the four fixed header lines", line=len(lines))
    extra: dict[str, object] = {"start_time": lines[1].strip(), "instrument": lines[2].strip()}
    counts = lines[3].split()
    if len(counts) != 3 or not all(c.isdigit() for c in counts):
        raise ParseError(
            fname, f"expected 'comment-lines variables heights', found {lines[3]!r}", line=4
        )
    extra["n_variables"], extra["n_heights"] = int(counts[1]), int(counts[2])
    variables: list[dict[str, str]] = []
    info: dict[str, str] = {}
    section = ""
    for i in range(4, len(lines)):
        line = lines[i].strip()
        if line == DATA_MARKER:
            break
        if line.startswith("#"):
            section = line.lstrip("# ").lower() or section
            continue
        if not line:
            continue
        if section == "variable definitions":
            parts = [p.strip() for p in line.split("#")]
            if len(parts) < 5:
                raise ParseError(
                    fname,
                    "expected a variable definition 'label # symbol # unit # type # mask # missing'",
                    line=i + 1,
                )
            variables.append(
                {
                    "label": parts[0],
                    "symbol": parts[1],
                    "unit": parts[2],
                    "type": parts[3],
                    "mask": parts[4],
                    "missing": parts[5] if len(parts) > 5 else "",
                }
            )
        elif section == "file type":
            extra["file_type"] = line
        elif ":" in line:
            key, _, value = line.partition(":")
            info[key.strip()] = value.strip()
    else:
        raise ParseError(fname, f"expected a {DATA_MARKER!r} line after the header")
    if not variables or variables[0]["symbol"] != HEIGHT_SYMBOL:
        raise ParseError(fname, "expected the variable definitions to start with height 'z'")
    extra["file_information"] = info
    return extra, variables, i + 1


def _data(
    lines: list[str],
    start: int,
    variables: list[dict[str, str]],
    extra: dict[str, object],
    fname: str,
    *,
    ends_with_break: bool = True,
) -> ParseResult:
    width = len(variables)
    times: list[str] = []
    durations: set[int] = set()
    rows: list[str] = []
    row_lines: list[int] = []
    row_block: list[int] = []
    symbols: list[str] | None = None
    warnings: list[str] = []
    for i in range(start, len(lines)):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            names = stripped[1:].split()
            if not names:
                continue
            if symbols is None:
                if len(names) != width or names[0] != HEIGHT_SYMBOL:
                    raise ParseError(
                        fname,
                        f"expected a column line of {width} symbols starting with 'z'",
                        line=i + 1,
                    )
                symbols = names
            elif names != symbols:
                raise ParseError(fname, "column line differs from the first block's", line=i + 1)
            continue
        m = _BLOCK_TIME.match(stripped)
        if m:
            times.append(m.group(1))
            durations.add(int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4)))
            continue
        if not times:
            raise ParseError(
                fname, "expected a 'YYYY-MM-DD HH:MM:SS HH:MM:SS' profile time line", line=i + 1
            )
        rows.append(stripped)
        row_lines.append(i + 1)
        row_block.append(len(times) - 1)
    if symbols is None:
        symbols = [v["symbol"] for v in variables]

    last_cut = rows and row_lines[-1] == len(lines) and not ends_with_break
    if last_cut and len(rows[-1].split()) >= width:
        # "... 12." may be the start of "... 12.93": a file copied while written
        warnings.append(
            f"line {row_lines[-1]}: truncated last line dropped (no line break, and its "
            f"last value {rows[-1].split()[-1][:24]!r} may be cut short; the file's next "
            "version brings the line)"
        )
        rows, row_lines, row_block = rows[:-1], row_lines[:-1], row_block[:-1]
    values = _numbers(rows, row_lines, width, fname, warnings, last_line=len(lines))
    keep = len(values) // width
    blocks = np.asarray(row_block[:keep], dtype=np.int64)
    matrix = values.reshape(keep, width)
    for j, var in enumerate(variables):
        try:
            marker = float(var["missing"])
        except ValueError:
            continue
        col = matrix[:, j]
        col[col == marker] = np.nan
    heights = matrix[:, 0]
    if np.isnan(heights).any():
        bad = int(np.flatnonzero(np.isnan(heights))[0])
        raise ParseError(fname, "expected a height in column 'z'", line=row_lines[bad])
    levels = np.unique(heights)
    level_idx = np.searchsorted(levels, heights)
    key = blocks * len(levels) + level_idx
    if len(np.unique(key)) != len(key):
        order = np.argsort(key, kind="stable")
        dup = order[1:][key[order][1:] == key[order][:-1]][0]
        raise ParseError(
            fname, f"height {heights[dup]:g} m appears twice in one profile", line=row_lines[dup]
        )

    n_time = len(times)
    cube = np.full((n_time, width - 1, len(levels)), np.nan)
    cube[blocks, :, level_idx] = matrix[:, 1:]
    channels: list[ChannelInfo] = []
    columns: dict[str, pl.Series] = {}
    ts, ts_warn = parse_timestamps_first_fit(
        pl.Series(TIMESTAMP, times, dtype=pl.String),
        name=fname,
        first_line=start + 1,
        formats=(TIME_FORMAT,),
    )
    warnings.extend(ts_warn)
    columns[TIMESTAMP] = ts.alias(TIMESTAMP)
    for j, var in enumerate(variables[1:]):
        symbol = symbols[j + 1]
        for k, height in enumerate(levels):
            cname = f"{symbol}_{height:g}m"
            channels.append(
                ChannelInfo(
                    name=cname,
                    statistic=_statistic(var["label"]),
                    unit=var["unit"] or None,
                    height_m=float(height),
                    attrs={
                        "symbol": symbol,
                        "label": var["label"],
                        "type": var["type"],
                        "missing": var["missing"],
                        "mask": var["mask"],
                    },
                )
            )
            columns[cname] = pl.Series(cname, cube[:, j, k], dtype=pl.Float64, nan_to_null=True)
    if len({c.name for c in channels}) != len(channels):
        raise ParseError(fname, "two variables share a symbol; channel names would collide")
    interval = float(next(iter(durations))) if len(durations) == 1 else None
    if len(durations) > 1:
        warnings.append(f"profiles state different averaging durations {sorted(durations)} s")
    extra["heights_m"] = [float(h) for h in levels]
    meta = FileMeta(
        format=FORMAT,
        logger_model=str(extra["instrument"]) or None,
        logger_serial=_info(extra, "device serial number"),
        logger_os=_info(extra, "software version"),
        station_name=_info(extra, "station code"),
        interval_s=interval,
        timestamp_is_end_of_period=True,
        warnings=tuple(warnings),
        extra=extra,
    )
    return ParseResult(
        meta=meta, channels=tuple(channels), frame=pl.DataFrame(list(columns.values()))
    )


def _numbers(
    rows: list[str],
    row_lines: list[int],
    width: int,
    fname: str,
    warnings: list[str],
    last_line: int,
) -> np.ndarray:
    """All data rows as one flat float array (rows x width)."""
    if not rows:
        return np.empty(0)
    series = pl.Series("r", rows, dtype=pl.String).str.extract_all(r"\S+")
    counts = series.list.len().to_numpy()
    short = np.flatnonzero(counts != width)
    if len(short):
        first = int(short[0])
        if first == len(rows) - 1 and counts[first] < width and row_lines[first] == last_line:
            warnings.append(
                f"line {row_lines[first]}: truncated last line dropped "
                f"(it has {counts[first]} of {width} fields)"
            )
            series = series.head(first)
        else:
            raise ParseError(
                fname,
                f"expected {width} fields, found {counts[first]}",
                line=row_lines[first],
            )
    flat = series.explode()
    try:
        return flat.cast(pl.Float64, strict=True).to_numpy().copy()
    except pl.exceptions.InvalidOperationError:
        bad = int(flat.cast(pl.Float64, strict=False).is_null().arg_max() or 0)
        raise ParseError(
            fname,
            f"expected a number, found {flat[bad]!r}",
            line=row_lines[bad // width],
        ) from None


def _statistic(label: str) -> str | None:
    low = label.lower()
    if low.startswith("sigma"):
        return "sd"
    if low == "turbulence intensity":
        return "ti"
    if low.startswith(AVG_LABELS):
        return "avg"
    return None


def _info(extra: dict[str, object], key: str) -> str | None:
    info = extra.get("file_information")
    if isinstance(info, dict):
        value = info.get(key)
        return str(value) if value else None
    return None
