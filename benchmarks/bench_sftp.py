"""SFTP fetch speed: stationkit's SftpFileSource against OpenSSH's own client.

Starts a throwaway sshd on loopback (the test machinery in
tests/fetch/sshd.py; needs /usr/sbin/sshd and root), creates 500 files of
150 kB and one file of 200 MB, and times fetching each set with

* OpenSSH: ``sftp -b BATCH`` running ``get`` of the same files;
* stationkit: a new ``SftpFileSource``: connect, ``list_files()``,
  ``download()`` of every file to a temporary path, ``close()``.

Both times include connecting and authenticating. stationkit also fsyncs
every file (the data-safety contract); OpenSSH's sftp does not. Each
figure is the best of ``--repeat`` runs (default 5), the two clients
alternating. Results go to stdout and to
benchmarks/out/bench_sftp.json.

    .venv/bin/python benchmarks/bench_sftp.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stationkit.config import SftpSource  # noqa: E402
from stationkit.fetch.sftp import SftpFileSource  # noqa: E402
from tests.fetch.sshd import SshServer  # noqa: E402

SMALL_COUNT = 500
SMALL_SIZE = 150 * 1000
BIG_SIZE = 200 * 1000 * 1000


def make_data(root: Path) -> tuple[Path, Path]:
    small = root / "small"
    big = root / "big"
    small.mkdir()
    big.mkdir()
    for i in range(SMALL_COUNT):
        (small / f"M001_{i:04d}.dat").write_bytes(os.urandom(SMALL_SIZE))
    with open(big / "M001_big.dat", "wb") as fh:
        block = os.urandom(1 << 20)
        left = BIG_SIZE
        while left:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return small, big


def timed(run: Callable[[Path], None], out_root: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=out_root))
    t0 = time.perf_counter()
    run(out)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(out)
    return elapsed


def best_of(
    repeat: int, runs: dict[str, Callable[[Path], None]], out_root: Path
) -> dict[str, float]:
    """The best time of each run; the runs alternate, so that a burst of load on
    the machine hits both alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            times[name].append(timed(run, out_root))
    return {name: min(t) for name, t in times.items()}


def openssh(server: SshServer, remote: Path, expect: int) -> Callable[[Path], None]:
    def run(out: Path) -> None:
        batch = out / "batch"
        batch.write_text(f"get {remote}/* {out}/\n")
        subprocess.run(
            [
                "sftp",
                "-q",
                "-b",
                str(batch),
                "-i",
                str(server.user_key),
                "-o",
                f"UserKnownHostsFile={server.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-P",
                str(server.port),
                "root@127.0.0.1",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        got = sum(1 for p in out.iterdir() if p.name != "batch")
        assert got == expect, f"OpenSSH fetched {got} files, expected {expect}"

    return run


def stationkit(server: SshServer, remote: Path, expect: int) -> Callable[[Path], None]:
    config = SftpSource(
        host="127.0.0.1",
        port=server.port,
        username="root",
        remote_dir=str(remote),
        key_file=server.user_key,
        known_hosts=server.known_hosts,
    )

    def run(out: Path) -> None:
        with SftpFileSource(config) as source:
            files = source.list_files()
            errors = [
                err
                for _, err in source.download(files, lambda f: out / f".tmp-{f.path}")
                if err is not None
            ]
        assert not errors, errors[0]
        assert len(files) == expect, f"stationkit listed {len(files)} files, expected {expect}"
        for f in files:
            assert (out / f".tmp-{f.path}").stat().st_size == f.size

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stationkit-bench-sftp-"))
    server = SshServer.create(work / "sshd")
    try:
        server.start()
        remote = server.served_dir()
        small, big = make_data(remote)
        out_root = work / "out"
        out_root.mkdir()
        results: dict[str, dict[str, float]] = {}
        for name, folder, count in (
            (f"{SMALL_COUNT} files of {SMALL_SIZE // 1000} kB", small, SMALL_COUNT),
            (f"1 file of {BIG_SIZE // 1_000_000} MB", big, 1),
        ):
            runs = {
                "openssh": openssh(server, folder, count),
                "stationkit": stationkit(server, folder, count),
            }
            # warm the server's page cache so neither client pays for disk reads
            timed(runs["openssh"], out_root)
            best = best_of(args.repeat, runs, out_root)
            t_ssh, t_sk = best["openssh"], best["stationkit"]
            results[name] = {
                "openssh_sftp_s": round(t_ssh, 3),
                "stationkit_s": round(t_sk, 3),
                "ratio": round(t_sk / t_ssh, 2),
            }
            print(
                f"{name:>22}: OpenSSH sftp {t_ssh:6.3f} s   stationkit {t_sk:6.3f} s   "
                f"ratio {t_sk / t_ssh:4.2f} (target <= 1.5)"
            )
        dest = ROOT / "benchmarks" / "out"
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "bench_sftp.json").write_text(json.dumps(results, indent=2) + "\n")
        return 0 if all(r["ratio"] <= 1.5 for r in results.values()) else 1
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
