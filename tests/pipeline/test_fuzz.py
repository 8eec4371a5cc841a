"""Seeded fuzzing of the parse and calibrate stages (issue 12: no silent wrong data).

Small good files of many formats and a few hundred mutants of them (cut,
bytes flipped, inserted or appended, lines shuffled or dropped, line ends
mixed, numbers made infinite or huge, years made absurd, markers quoted) go
through the real parse stage into a real data directory, then the real
calibrate stage. Whatever a mutant holds:

* nothing crashes: every file is parsed, skipped or refused with a message,
  never "internal error" (a parser traceback caught by the stage);
* every good file is parsed and all its readings are in lake/readings;
* no value in lake/readings or lake/clean is infinite or NaN;
* no timestamp in lake/readings or lake/clean lies outside the plausibility
  rule (:mod:`stationkit.plausible`).
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl

from stationkit.config import load_config
from stationkit.export.select import clean_files
from stationkit.ledger import Ledger
from stationkit.pipeline.calibrate import calibrate_station
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_one, parse_station
from stationkit.plausible import window
from tests.conftest import FIXTURES

SEED = 20260412
MUTANTS = 360
#: the modification time every file gets [s]: 2025-01-01 00:00 UTC
MTIME = 1_735_689_600

GOOD = [
    "toa5/minimal_crlf.dat",
    "toa5/bom_lf_empty_units.dat",
    "toaci1/cr_only_bom.dat",
    "csixml/tiny.xml",
    "tob1/tiny.dat",
    "tob1/secnano_timestamp.dat",
    "tob3/tiny.dat",
    "tob3/ring.dat",
    "nrg_symphonie/export_service_tiny.txt",
    "nrg_logr/one_second_crlf.dat",
    "windcube_sta/tiny_v2_latin1.sta",
    "zephir_csv/tiny_crlf_sentinels.csv",
    "aq500/tiny.txt",
    "scintec_mnd/tiny.mnd",
    "mixed_array/two_arrays_crlf.dat",
    "kintech_wnd/tiny.wnd",
    "triton_csv/latin1_crlf.csv",
    "molas/tiny_gb2312_crlf.txt",
]

_NUMBER = re.compile(rb"(?<![\w.])-?\d+\.\d+(?![\w.])")
_YEAR = re.compile(rb"20[0-3]\d(?=[-/.])")


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _cut(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, max(2, len(data)))]


def _flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.randbytes(rng.randrange(1, 64)) + data[at:]


def _append(rng: random.Random, data: bytes) -> bytes:
    return data + rng.randbytes(rng.randrange(1, 200))


def _shuffle(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    rng.shuffle(lines)
    return b"".join(lines)


def _drop_or_repeat_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    if rng.random() < 0.5:
        del lines[i]
    else:
        lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return b"".join(lines)


def _mixed_line_ends(rng: random.Random, data: bytes) -> bytes:
    out = bytearray()
    for line in _lines(data):
        body = line.rstrip(b"\r\n")
        out += body + (rng.choice([b"\r", b"\n", b"\r\n"]) if body != line else b"")
    return bytes(out)


def _absurd_number(rng: random.Random, data: bytes) -> bytes:
    hits = list(_NUMBER.finditer(data))
    if not hits:
        return _flip(rng, data)
    m = rng.choice(hits)
    new = rng.choice([b"inf", b"-inf", b"1e309", b"-1e309", b"9.9e300", b"nan", b'"NAN"'])
    return data[: m.start()] + new + data[m.end() :]


def _absurd_year(rng: random.Random, data: bytes) -> bytes:
    hits = list(_YEAR.finditer(data))
    if not hits:
        return _flip(rng, data)
    m = rng.choice(hits)
    return data[: m.start()] + rng.choice([b"1900", b"2200", b"1975", b"2099"]) + data[m.end() :]


MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    _cut,
    _flip,
    _insert,
    _append,
    _shuffle,
    _drop_or_repeat_line,
    _mixed_line_ends,
    _absurd_number,
    _absurd_year,
]


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    os.utime(path, (MTIME, MTIME))


def test_mutants_of_every_format_never_crash_or_store_wrong_data(tmp_path: Path) -> None:
    print(f"fuzz seed {SEED}")
    rng = random.Random(SEED)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (tmp_path / "stations.toml").write_text(
        '[stations.F]\n[stations.F.source]\nkind = "local"\npath = "incoming"\npatterns = ["*"]\n'
    )
    sources = [(name, (FIXTURES / name).read_bytes()) for name in GOOD]
    for name, data in sources:
        _write(incoming / f"good_{name.replace('/', '_')}", data)
    for i in range(MUTANTS):
        name, data = sources[i % len(sources)]
        mutate = MUTATIONS[rng.randrange(len(MUTATIONS))]
        _write(
            incoming / f"m{i:03d}_{mutate.__name__[1:]}_{name.replace('/', '_')}", mutate(rng, data)
        )

    cfg = load_config(tmp_path / "stations.toml")
    st = cfg.stations["F"]
    with Ledger(cfg.data_dir) as ledger:
        assert fetch_station(cfg, st, ledger).fetched == len(GOOD) + MUTANTS
        summary = parse_station(cfg, st, ledger)
        assert summary.parsed + summary.failed + summary.skipped == len(GOOD) + MUTANTS
        assert summary.failed > 0 and summary.parsed > len(GOOD)  # both kinds of outcome
        rows = ledger.conn.execute(
            "SELECT f.id, f.source_path, f.mtime, p.status, p.error, p.readings "
            "FROM files f JOIN parses p ON p.file_id = f.id"
        ).fetchall()
        crashes = [
            (r["source_path"], r["error"]) for r in rows if "internal error" in (r["error"] or "")
        ]
        assert crashes == []
        # every good file parsed, with all its readings in the lake
        good = {r["source_path"]: r for r in rows if r["source_path"].startswith("good_")}
        assert {p: r["status"] for p, r in good.items()} == dict.fromkeys(good, "ok")
        for path, r in good.items():
            file = ledger.get_file(r["id"])
            _, frame, _ = parse_one(cfg, st, file)
            part = pl.read_parquet(
                cfg.data_dir / "lake" / "readings" / "station=F" / f"part-{r['id']:019d}.parquet"
            )
            assert part.height == r["readings"] > 0, path
            assert (
                part.get_column("timestamp").n_unique() == frame.get_column("timestamp").n_unique()
            )
        calibrate_station(cfg, st, ledger)
        bounds = {r["id"]: window(st, r["mtime"]) for r in rows}

    lake = pl.read_parquet(cfg.data_dir / "lake" / "readings" / "station=F")
    assert lake.height > 0
    assert not lake.get_column("value").is_infinite().any()
    assert not lake.get_column("value").is_nan().any()
    for file_id, part in lake.group_by("file_id"):
        b = bounds[int(file_id[0])]  # type: ignore[call-overload]
        stamps = part.get_column("timestamp")
        assert stamps.min() >= b.start  # type: ignore[operator]
        assert b.end is not None and stamps.max() < b.end  # type: ignore[operator]
    clean = pl.concat([pl.read_parquet(p) for p in clean_files(cfg.data_dir, "F")])
    assert clean.height > 0
    for column in ("value", "raw_value"):
        assert not clean.get_column(column).is_infinite().any()
        assert not clean.get_column(column).is_nan().any()
    latest = max(b.end for b in bounds.values() if b.end is not None)
    assert clean.get_column("timestamp").min() >= window(st, None).start  # type: ignore[operator]
    assert clean.get_column("timestamp").max() < latest  # type: ignore[operator]
