"""Failures recorded by a run that is then killed (SIGKILL) are reported by the
next complete run: on stderr, in its exit code and to on_failure. Real
`stationkit run` processes, really killed."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.pipeline.helpers import HEADER, toa5

STATIONKIT = str(Path(sys.executable).parent / "stationkit")
BAD = HEADER.replace('"WS_Std"', '"WS_Avg"') + '"2024-01-01 00:10:00",0,5.0,0.5,"x"\r\n'
TRIALS = 6


def fleet(root: Path, hook_code: str, files: int = 40) -> Path:
    for sid in ("S1", "S2"):
        (root / "incoming" / sid).mkdir(parents=True)
    # S1 fails at once; S2 keeps the run busy for a while after
    (root / "incoming" / "S1" / "bad.dat").write_text(BAD)
    for i in range(files):
        rows = [(f"2024-01-{1 + i % 28:02d} {h:02d}:{m:02d}:00", 5.0, 0.5) for h in range(24)
                for m in (0, 30)]  # fmt: skip
        (root / "incoming" / "S2" / f"d{i:03d}.dat").write_text(toa5(rows))
    return configure(root, hook_code)


def configure(root: Path, hook_code: str) -> Path:
    conf = root / "stations.toml"
    hook = json.dumps([sys.executable, "-c", hook_code])
    conf.write_text(
        f"on_failure = {hook}\n"
        + "".join(
            f'[stations.{sid}.source]\nkind = "local"\npath = "incoming/{sid}"\n'
            for sid in ("S1", "S2")
        )
    )
    return conf


def recording_hook(out: Path) -> str:
    return f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read() + '--\\n')"


def reported_in_ledger(root: Path) -> bool:
    db = root / "data" / "state.sqlite"
    if not db.exists():
        return False
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute(
            "SELECT COUNT(*) FROM failures WHERE file LIKE '%bad.dat' AND reported_at IS NOT NULL"
        ).fetchone()
    except sqlite3.OperationalError:  # killed before the tables were made
        return False
    finally:
        con.close()
    return bool(row[0])


def shown_bad(root: Path) -> str:
    """How stderr names the failure of S1's bad file (its path valid from the
    current directory: absolute, as the data directory is not below it)."""
    return f"stationkit: error: S1: parse: {root / 'data' / 'raw' / 'S1' / 'bad.dat'}, line "


def run(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STATIONKIT, "--config", str(conf), "run"], capture_output=True, text=True, timeout=300
    )


def test_killed_while_reporting_then_the_next_run_reports(tmp_path: Path) -> None:
    """Killed after its failures were recorded, while on_failure was running."""
    started = tmp_path / "hook-started"
    blocking = (
        f"import os, sys, time; open({str(started)!r}, 'w').write(str(os.getpid())); "
        "time.sleep(120)"
    )
    conf = fleet(tmp_path, blocking, files=2)
    proc = subprocess.Popen([STATIONKIT, "--config", str(conf), "run"], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not started.exists() or not started.read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    os.kill(int(started.read_text()), signal.SIGKILL)  # the orphaned hook
    assert not reported_in_ledger(tmp_path)

    received = tmp_path / "hook.txt"
    conf = configure(tmp_path, recording_hook(received))
    again = run(conf)
    assert again.returncode == 3, again.stderr
    assert shown_bad(tmp_path) in again.stderr
    assert "recorded by an earlier run that was interrupted" in again.stderr
    assert "S1 parse raw/S1/bad.dat" in received.read_text()
    assert reported_in_ledger(tmp_path)

    third = run(conf)  # reported once: not again
    assert (third.returncode, third.stderr) == (0, "")
    assert received.read_text().count("--\n") == 1


def test_sigkill_at_random_moments_never_loses_a_failure(tmp_path: Path) -> None:
    seed = int(os.environ.get("STATIONKIT_CRASH_SEED", random.SystemRandom().randrange(1 << 30)))
    rng = random.Random(seed)
    reference = tmp_path / "reference"
    received = reference / "hook.txt"
    reference.mkdir()
    conf = fleet(reference, recording_hook(received))
    t0 = time.monotonic()
    first = run(conf)
    duration = time.monotonic() - t0
    assert first.returncode == 3 and "S1 parse raw/S1/bad.dat" in received.read_text()

    for trial in range(TRIALS):
        where = tmp_path / f"trial{trial}"
        where.mkdir()
        received = where / "hook.txt"
        conf = fleet(where, recording_hook(received))
        delay = rng.uniform(0.05, duration)
        proc = subprocess.Popen(
            [STATIONKIT, "--config", str(conf), "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        context = f"seed {seed}, trial {trial}, killed after {delay:.3f}s (exit {code})"
        already = reported_in_ledger(where)
        again = run(conf)
        assert again.returncode in (0, 3), f"{context}: {again.stderr}"
        if not already:  # the killed run did not report it: the complete one must
            assert again.returncode == 3, context
            assert shown_bad(where) in again.stderr, context
            assert "S1 parse raw/S1/bad.dat" in received.read_text(), context
        assert reported_in_ledger(where), context
        assert run(conf).returncode == 0, context  # and never twice
