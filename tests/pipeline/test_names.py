"""Untrusted file names: a line break in a name never forges a line of the
failure summary, the --log-file, on_failure's stdin or `status`; names as long
as the file system allows (255 bytes) are fetched, unpacked, versioned and
quarantined like any other (temporary names stay within the limit)."""

from __future__ import annotations

import html
import io
import json
import sys
import zipfile
from pathlib import Path

from click.testing import CliRunner, Result

from stationkit.atomic import NAME_MAX, fit_name
from stationkit.cli import cli
from stationkit.textsafe import SafeFormatter, show_name
from tests.pipeline.helpers import HEADER, toa5

GOOD = toa5([("2024-01-01 00:10:00", 5.0, 0.5)])
BAD = HEADER.replace('"WS_Std"', '"WS_Avg"') + '"2024-01-01 00:10:00",0,5.0,0.5,"x"\r\n'
NEWLINE_NAME = "bad\n  M1 parse forged.dat = all fine.dat"


def configure(root: Path, source: str) -> tuple[str, Path]:
    received = root / "hook.txt"
    code = f"import sys; open({str(received)!r}, 'w').write(sys.stdin.read())"
    conf = root / "stations.toml"
    conf.write_text(
        f"on_failure = {json.dumps([sys.executable, '-c', code])}\n"
        f"[stations.M1]\nutc_offset_hours = 0\n[stations.M1.source]\n{source}"
    )
    return str(conf), received


def local_station(root: Path) -> tuple[str, Path, Path]:
    incoming = root / "incoming"
    incoming.mkdir()
    conf, received = configure(root, 'kind = "local"\npath = "incoming"\n')
    return conf, received, incoming


def invoke(conf: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", conf, *args])


def check_newline_name_is_escaped(root: Path, conf: str, received: Path) -> None:
    """After a source offered NEWLINE_NAME with bad content: every output shows
    it on one line, escaped."""
    log_file = root / "run.log"
    result = invoke(conf, "run", "--log-file", str(log_file))
    assert result.exit_code == 3, result.output
    shown = show_name(f"raw/M1/{NEWLINE_NAME}")
    assert "\\n" in shown and "\n" not in shown
    for text in (result.stderr, received.read_text(), log_file.read_text()):
        assert shown in text
        assert not [ln for ln in text.splitlines() if ln.lstrip().startswith("M1 parse forged")]
    summary = received.read_text().splitlines()
    assert summary[0] == "stationkit run: 1 failure(s), exit code 3" and len(summary) == 2
    status = invoke(conf, "status")
    assert status.exit_code == 0 and shown in status.stdout
    assert "forged" not in "".join(ln for ln in status.stdout.splitlines() if "\\n" not in ln)
    failed = invoke(conf, "status", "--failed")
    assert failed.exit_code == 0 and shown in failed.stdout
    assert "forged" not in "".join(ln for ln in failed.stdout.splitlines() if "\\n" not in ln)
    report = invoke(conf, "report", "--html", str(root / "report"))
    assert report.exit_code == 0, report.output
    page = (root / "report" / "stations" / "M1" / "index.html").read_text()
    assert html.escape(shown) in page and NEWLINE_NAME not in page
    assert "forged" not in "".join(ln for ln in page.splitlines() if "\\n" not in ln)
    # JSON keeps the real name: json.dumps escapes it
    (st,) = json.loads(invoke(conf, "status", "--json").stdout)
    assert st["last_error"]["file"] == f"raw/M1/{NEWLINE_NAME}"


def test_show_name_escapes_what_could_break_a_line() -> None:
    assert show_name("CR1000_Table1.dat") == "CR1000_Table1.dat"
    assert show_name("Mast ü 中.dat") == "Mast ü 中.dat"
    assert show_name("a\nb\r\tc") == "a\\nb\\r\\tc"
    assert show_name("x\x1b[31my\x7f") == "x\\x1b[31my\\x7f"
    assert show_name("p\u2028q\u202er\x85") == "p\\u2028q\\u202er\\x85"
    assert show_name("raw\udcff.dat") == "raw\\xff.dat"  # an undecodable byte


def test_safe_formatter_keeps_one_record_on_one_line() -> None:
    import logging

    record = logging.LogRecord("stationkit", logging.WARNING, "", 0, "%s: bad", ("a\nb",), None)
    assert SafeFormatter("%(levelname)s %(message)s").format(record) == "WARNING a\\nb: bad"


def test_newline_in_a_local_file_name(tmp_path: Path) -> None:
    conf, received, incoming = local_station(tmp_path)
    (incoming / NEWLINE_NAME).write_text(BAD)
    check_newline_name_is_escaped(tmp_path, conf, received)


def long_name(n: int, ext: str = ".dat") -> str:
    return "L" * (n - len(ext)) + ext


def test_longest_legal_names_from_a_local_folder(tmp_path: Path) -> None:
    conf, _, incoming = local_station(tmp_path)
    names = [long_name(243), long_name(NAME_MAX), long_name(NAME_MAX - 5, ".zip")]
    (incoming / names[0]).write_text(GOOD)
    (incoming / names[1]).write_text(GOOD)
    member = "M" * 250 + ".dat"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, toa5([("2024-01-02 00:10:00", 7.0, 0.5)]))
    (incoming / names[2]).write_bytes(buf.getvalue())
    result = invoke(conf, "run")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    data = tmp_path / "data"
    assert sorted(p.name for p in (data / "raw" / "M1").iterdir()) == sorted(names)
    assert (data / "staging" / "M1" / names[2] / member).exists()
    (st,) = json.loads(invoke(conf, "status", "--json").stdout)
    assert st["files"]["ok"] == 3 and st["files"]["archive"] == 1

    # a new version of a 255-byte name: "name.~2~" is shortened to fit
    (incoming / names[1]).write_text(BAD)
    result = invoke(conf, "run")
    assert result.exit_code == 3 and "duplicate column name" in result.stderr
    v2 = fit_name(names[1], NAME_MAX - 4) + ".~2~"
    assert len(v2.encode()) == NAME_MAX and (data / "raw" / "M1" / v2).read_bytes() == BAD.encode()
    (quarantined,) = (data / "quarantine" / "M1").iterdir()
    assert len(quarantined.name.encode()) <= NAME_MAX and quarantined.read_bytes() == BAD.encode()
    assert not list(data.rglob(".stationkit-tmp-*"))


def test_fit_name_is_stable_unique_and_keeps_the_extension() -> None:
    a, b = "é" * 200 + "a.dat", "é" * 200 + "b.dat"
    assert fit_name(a) == fit_name(a) != fit_name(b)
    assert fit_name(a).endswith("a.dat") and len(fit_name(a).encode()) <= NAME_MAX
    assert fit_name("short.dat") == "short.dat"
    fit_name(a, 100).encode("utf-8")  # never cuts a character in half
