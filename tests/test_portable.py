"""stationkit runs where POSIX-only modules do not exist (Windows, where
LoggerNet and Windographer live). CI cannot run Windows, so the CLI runs here
in a Python whose fcntl, termios, pwd, grp and resource cannot be imported
and whose os lacks the POSIX-only calls (pwrite, pread, O_NOFOLLOW,
O_CLOEXEC, pathconf, getuid, ...)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.pipeline.helpers import toa5

#: run before stationkit: what Windows does not have is made missing
WINDOWS_LIKE = """
import os, sys
for name in ("fcntl", "termios", "pwd", "grp", "resource", "tty", "pty"):
    sys.modules[name] = None
for attr in ("pwrite", "pread", "O_NOFOLLOW", "O_CLOEXEC", "pathconf", "getuid", "geteuid",
             "getgid", "statvfs", "fchmod", "fchown", "chown", "lchown", "killpg", "setsid"):
    if hasattr(os, attr):
        delattr(os, attr)
"""
CLI = (
    WINDOWS_LIKE
    + """
from stationkit.cli import main
sys.argv = ["stationkit", *sys.argv[1:]]
main()
"""
)
MISSING = (
    WINDOWS_LIKE
    + """
import stationkit.cli, stationkit.lock  # import fine without them
print("stationkit imported")
import fcntl  # must fail: the modules are really missing
"""
)
CONTENTION = (
    WINDOWS_LIKE
    + """
from pathlib import Path
from stationkit.errors import LockedError
from stationkit.lock import RunLock
with RunLock(Path(sys.argv[1])):
    try:
        RunLock(Path(sys.argv[1])).acquire()
    except LockedError as exc:
        print("locked:", exc)
with RunLock(Path(sys.argv[1])):  # released: free again
    print("free again")
"""
)


def stationkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=300
    )


def test_the_modules_are_really_missing() -> None:
    done = subprocess.run([sys.executable, "-c", MISSING], capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == "stationkit imported\n"
    assert "ModuleNotFoundError: import of fcntl halted" in done.stderr


def test_run_status_export_without_posix_modules(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "a.dat").write_text(
        toa5([("2024-01-01 00:10:00", 5.0, 0.5), ("2024-01-01 00:20:00", 6.0, 0.4)])
    )
    conf = tmp_path / "stations.toml"
    conf.write_text(
        '[stations.M1]\nutc_offset_hours = 1\n[stations.M1.source]\nkind = "local"\n'
        'path = "incoming"\n[stations.M1.export]\nformat = ["windographer", "csv"]\n'
    )
    first = stationkit("--config", str(conf), "run")
    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    assert stationkit("--config", str(conf), "run").returncode == 0  # nothing to do
    status = stationkit("--config", str(conf), "status", "--json")
    assert status.returncode == 0, status.stderr
    (st,) = json.loads(status.stdout)
    assert st["files"]["ok"] == 1 and st["readings"] == 4 and st["last_error"] is None
    out = tmp_path / "out"
    export = stationkit("--config", str(conf), "export", "--format", "csv", "--out", str(out))
    assert export.returncode == 0, export.stderr
    assert (out / "M1.csv").read_bytes() == (
        tmp_path / "data" / "exports" / "M1" / "M1.csv"
    ).read_bytes()
    assert (tmp_path / "data" / "exports" / "M1" / "M1.txt").exists()


def test_the_run_lock_still_excludes_without_fcntl(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CONTENTION, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "locked:" in done.stdout and "another stationkit process" in done.stdout
    assert "free again" in done.stdout
