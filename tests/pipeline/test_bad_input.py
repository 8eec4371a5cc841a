"""Hundreds of corrupted files mixed with good ones: no traceback, every bad
file quarantined with a reason, every good file's readings present, exit 3."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from stationkit.cli import cli
from stationkit.ledger import Ledger
from tests.conftest import CORPUS, corpus_files
from tests.pipeline.helpers import toa5

GOOD_ROWS = [("2024-01-01 00:10:00", 5.0, 0.5), ("2024-01-01 00:20:00", 6.0, 0.6)]


def corruptions(rng: random.Random, good: bytes, samples: list[bytes]) -> list[tuple[str, bytes]]:
    """(kind, bytes) pairs: every way a logger file arrives broken."""
    out: list[tuple[str, bytes]] = []
    for i in range(40):
        src = samples[i % len(samples)]
        cut = rng.randrange(1, max(2, len(src) // 3))
        out.append(("truncated-header", src[:cut]))
    for _ in range(40):
        out.append(("random-bytes", rng.randbytes(rng.randrange(1, 5000))))
    for _ in range(20):
        out.append(("empty", b""))
    for i in range(30):
        src = samples[i % len(samples)]
        out.append(("wrong-encoding", src.decode("latin-1").encode("utf-16")))
    for _ in range(20):
        out.append(("huge-line", good[:400] + b"9" * rng.randrange(100_000, 400_000) + b"\r\n"))
    for i in range(40):
        src = samples[i % len(samples)]
        at = rng.randrange(len(src) // 2, len(src))
        out.append(("binary-inside-text", src[:at] + rng.randbytes(64) + src[at:]))
    for _ in range(20):
        out.append(("header-only", good.split(b'\r\n"2024')[0] + b"\r\n"))
    for _ in range(20):
        lines = good.split(b"\r\n")
        out.append(
            ("missing-fields", b"\r\n".join([*lines[:4], b'"2024-01-01 00:10:00",1', *lines[5:]]))
        )
    return out


def test_hundreds_of_bad_files_are_quarantined_and_good_ones_parsed(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    good = toa5(GOOD_ROWS).encode()
    samples = [
        p.read_bytes()
        for fmt in ("TOA5", "NRG_SYMPRO_TXT", "WINDCUBE_STA")
        for p in corpus_files(fmt)
    ][:12]
    bad = corruptions(rng, good, samples)
    assert len(bad) >= 200
    for i, (kind, data) in enumerate(bad):
        (incoming / f"bad_{i:03d}_{kind}.dat").write_bytes(data)
    for i in range(60):
        (incoming / f"good_{i:03d}.dat").write_bytes(good)
    (incoming / "real_1h.dat").write_bytes(
        (
            CORPUS
            / "TOA5"
            / "LouisPauchet__UNIS_AWS_CR1000_SN6134_ClimatVUE50__SN6134_ClimatVUE_ClimatVIEW_1h.dat"
        ).read_bytes()
    )
    (tmp_path / "stations.toml").write_text(
        '[stations.X.source]\nkind = "local"\npath = "incoming"\n'
    )
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "stations.toml"), "run"])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == 3
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr

    data = tmp_path / "data"
    with Ledger(data) as ledger:
        rows = ledger.conn.execute(
            "SELECT f.source_path, p.status, p.error, p.rows FROM files f JOIN parses p ON p.file_id=f.id"
        ).fetchall()
    by_name = {r["source_path"]: r for r in rows}
    assert len(by_name) == len(bad) + 61  # every file has an outcome
    for name, r in by_name.items():
        if name.startswith("good_") or name == "real_1h.dat":
            assert r["status"] == "ok", (name, r["error"])
        elif r["status"] == "failed":
            assert r["error"] and r["error"].startswith(f"raw/X/{name}"), (name, r["error"])
    failed = [n for n, r in by_name.items() if r["status"] == "failed"]
    assert len(failed) >= 150
    quarantined = {p.name.split("-", 1)[1] for p in (data / "quarantine" / "X").iterdir()}
    assert quarantined == set(failed)
    # every good file's readings are in the lake
    lake = pl.read_parquet(data / "lake" / "readings" / "station=X")
    good_ids = {r["source_path"] for r in rows if r["source_path"].startswith("good_")}
    assert len(good_ids) == 60
    per_file = lake.group_by("file_id").len()
    assert per_file.height >= 61
    assert lake.filter(pl.col("channel") == "WS_Avg").height >= 120
