"""Facts shared by the Campbell Scientific formats (TOA5, TOB1, TOB3, TOACI1).

The processing line of a Campbell header names the output instruction that
made each column. :func:`statistic_for` maps it onto DESIGN's vocabulary.

``WVc`` (the WindVector instruction) makes several outputs whose names the
logger builds from the variable name: ``_S_WVT`` mean horizontal speed,
``_U_WVT`` resultant mean speed, ``_D1_WVT`` / ``_DU_WVT`` mean direction,
``_SD1_WVT`` / ``_SDU_WVT`` standard deviation of direction. The standard
deviation outputs map to ``sd`` (and so calibrate with the slope ratio only);
the others are means (``avg``). Renamed columns ending in ``Std`` or ``SD``
are taken as standard deviations too.
"""

from __future__ import annotations

from typing import Any

#: Campbell output processing -> DESIGN statistic
PROCESSING = {
    "Avg": "avg",
    "Std": "sd",
    "Max": "max",
    "Min": "min",
    "Smp": "sample",
    "Tot": "sum",
    "Med": "median",
    "Cnt": "count",
}

#: the processing of columns that hold timestamps (time of max / min)
TIME_PROCESSING = frozenset({"TMx", "TMn"})

_WVC_SD_SUFFIXES = ("SD1_WVT", "SDU_WVT", "Std", "SD", "_sd", "StdDev")

#: names Campbell gives the timestamp and record columns across formats
TIMESTAMP_NAMES = frozenset({"TIMESTAMP", "TMSTAMP"})
RECORD_NAMES = frozenset({"RECORD", "RECNBR"})


def statistic_for(processing: str, name: str) -> str | None:
    """DESIGN's statistic for a column with this processing and name."""
    processing = processing.strip()
    if not processing:
        return None
    if processing == "WVc":
        return "sd" if name.endswith(_WVC_SD_SUFFIXES) else "avg"
    return PROCESSING.get(processing, processing.lower())


def environment(fields: list[str]) -> dict[str, Any]:
    """FileMeta keyword arguments from a TOA5/TOB1/TOB3 first header line.

    ``"TOA5",station,model,serial,os,program,signature,table`` -- TOB3 puts
    the file creation time where TOA5 has the table name.
    """
    padded = [*fields, *([""] * 8)]

    def value(i: int) -> str | None:
        v = padded[i].strip()
        return v or None

    program = value(5)
    if program and program.startswith("CPU:"):
        program = program[4:]
    return {
        "station_name": value(1),
        "logger_model": value(2),
        "logger_serial": value(3),
        "logger_os": value(4),
        "program": program,
        "extra": {"program_signature": value(6)},
    }
