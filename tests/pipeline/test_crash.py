"""Crash safety: `stationkit run` killed with SIGKILL at random moments, then
run again, leaves lake, ledger and exports byte-identical to an uninterrupted
run -- nothing lost, nothing duplicated, no temporary file left behind.

The kill times are drawn from a seeded generator; the seed is printed and is
in every assertion message (set STATIONKIT_CRASH_SEED to replay a failure).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import CORPUS
from tests.pipeline.helpers import toa5

STATIONKIT = str(Path(sys.executable).parent / "stationkit")
KILLS = 20
#: ledger columns that record when something happened, not what
WALL_CLOCK = {"added_at", "parsed_at", "built_at"}
LEDGER_TABLES = ("files", "parses", "builds")


def build_template(root: Path) -> Path:
    rng = random.Random(7)
    for sid, files in (("S1", 14), ("S2", 10)):
        inc = root / "incoming" / sid
        inc.mkdir(parents=True)
        for i in range(files):
            rows = [
                (
                    f"2024-01-{1 + i:02d} {h:02d}:{m:02d}:00",
                    round(rng.uniform(0, 20), 3),
                    round(rng.uniform(0, 2), 3),
                )
                for h in range(24)
                for m in range(0, 60, 10)
            ]
            (inc / f"day_{i:02d}.dat").write_text(toa5(rows))
    shutil.copy(
        CORPUS / "TOB3" / "alextsfox__camp2ascii__TOB3_partial3.dat",
        root / "incoming" / "S1" / "card.dat",
    )
    shutil.copy(
        CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat",
        root / "incoming" / "S2" / "bad.dat",
    )
    shutil.copy(
        CORPUS
        / "TOA5"
        / "LouisPauchet__UNIS_AWS_CR1000_SN6134_ClimatVUE50__SN6134_ClimatVUE_ClimatVIEW_1min.dat",
        root / "incoming" / "S2" / "oneminute.dat",
    )
    conf = root / "stations.toml"
    conf.write_text(
        "".join(
            f'[stations.{sid}]\nutc_offset_hours = 1\n[stations.{sid}.source]\nkind = "local"\npath = "incoming/{sid}"\n'
            f'[stations.{sid}.export]\nformat = "{fmt}"\n'
            for sid, fmt in (("S1", "windographer"), ("S2", "csv"))
        )
    )
    return conf


def run(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STATIONKIT, "--config", str(conf), "run"], capture_output=True, text=True, timeout=300
    )


def snapshot(root: Path) -> dict[str, object]:
    data = root / "data"
    trees = {}
    for top in ("raw", "lake", "exports", "quarantine", "staging"):
        base = data / top
        trees[top] = (
            {
                p.relative_to(base).as_posix(): (p.read_bytes() if top != "quarantine" else b"")
                for p in sorted(base.rglob("*"))
                if p.is_file()
            }
            if base.exists()
            else {}
        )
    con = sqlite3.connect(data / "state.sqlite")
    ledger = {}
    for table in LEDGER_TABLES:
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})") if r[1] not in WALL_CLOCK]
        ledger[table] = sorted(
            con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr
        )
    con.close()
    return {"trees": trees, "ledger": ledger}


def test_sigkill_at_random_points_then_rerun_is_identical(tmp_path: Path) -> None:
    seed = int(os.environ.get("STATIONKIT_CRASH_SEED", random.SystemRandom().randrange(1 << 30)))
    print(f"crash test seed: {seed}")
    rng = random.Random(seed)
    template = tmp_path / "template"
    build_template(template)

    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    started = time.monotonic()
    first = run(reference / "stations.toml")
    duration = time.monotonic() - started
    assert first.returncode == 3, first.stderr  # bad.dat is quarantined
    expected = snapshot(reference)
    assert expected["trees"]["exports"], "the reference run wrote no exports"  # type: ignore[index]

    killed_mid_run = 0
    for trial in range(KILLS):
        where = tmp_path / f"trial{trial:02d}"
        shutil.copytree(template, where)
        delay = rng.uniform(0.05, duration * 1.05)
        proc = subprocess.Popen(
            [STATIONKIT, "--config", str(where / "stations.toml"), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        killed_mid_run += code == -signal.SIGKILL
        again = run(where / "stations.toml")
        context = f"seed {seed}, trial {trial}, killed after {delay:.3f}s (exit {code})"
        assert again.returncode in (0, 3), f"{context}: {again.stderr}"
        got = snapshot(where)
        assert got["ledger"] == expected["ledger"], context
        assert got["trees"] == expected["trees"], context
        leftovers = [p for p in (where / "data").rglob(".stationkit-tmp-*")]
        assert not leftovers, f"{context}: {leftovers}"
        shutil.rmtree(where)
    assert killed_mid_run >= KILLS // 2, (
        f"seed {seed}: only {killed_mid_run} kills landed inside a run"
    )
