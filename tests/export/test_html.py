"""The static HTML fleet report: layout, relative links, escaping, status and
problems shown, deterministic bytes, incremental pictures, the CLI and run."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from stationkit.cli import cli
from stationkit.config import Config, load_config
from stationkit.export.html import png_size
from stationkit.ledger import Ledger
from stationkit.pipeline.html_report import MANIFEST, HtmlReport, write_html_report
from tests.conftest import CORPUS
from tests.pipeline.helpers import make_station, suspect_station, toa5

BAD = CORPUS / "TOA5" / "haukex__pytoa5__TestLogger_Hourly_Bad12.dat"
NOW = datetime(2024, 2, 3, 12, 0, tzinfo=UTC)
HOSTILE = 'Mast <b>"2"</b> & co'


def fleet(tmp_path: Path) -> Config:
    """M1 from a real run (a bad file among its files); M002 with lake/clean
    only (a suspect anemometer), its name full of HTML."""
    _, incoming = make_station(tmp_path)
    rows = [
        (f"2024-02-0{d} {h:02d}:{m:02d}:00", 5.0 + h % 3, 0.5)
        for d in (1, 2)
        for h in range(24)
        for m in (0, 10, 20, 30, 40, 50)
    ]
    (incoming / "a.dat").write_text(toa5(rows[1:]))
    (incoming / "bad.dat").write_bytes(BAD.read_bytes())
    conf = tmp_path / "stations.toml"
    text = conf.read_text()
    other = tmp_path / "other"
    other.mkdir()
    suspect_station(other)  # lake/clean of M001 in other/data: moved below as M002
    src = other / "data" / "lake" / "clean" / "station=M001"
    dest = tmp_path / "data" / "lake" / "clean" / "station=M002"
    dest.parent.mkdir(parents=True, exist_ok=True)
    src.rename(dest)
    conf.write_text(
        text + f"\n[stations.M002]\nname = {json.dumps(HOSTILE)}\n"
        "utc_offset_hours = 1\naveraging_period_minutes = 10\n"
    )
    config = load_config(conf)
    result = CliRunner().invoke(cli, ["--config", str(conf), "run", "M1"])
    assert result.exit_code == 3, result.stderr  # bad.dat
    return config


def write(config: Config, folder: Path, now: datetime = NOW) -> HtmlReport:
    with Ledger(config.data_dir, readonly=True) as ledger:
        return write_html_report(config, config.select(), ledger, folder, now=now)


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_layout_links_and_content(tmp_path: Path) -> None:
    config = fleet(tmp_path)
    site = tmp_path / "site"
    done = write(config, site)
    assert done.stations == ["M002", "M1"] and done.drawn == ["M002", "M1"]
    assert sorted(files(site)) == [
        MANIFEST,
        "index.html",
        "stations/M002/index.html",
        "stations/M002/last-30-days.png",
        "stations/M002/points.png",
        "stations/M002/recovery.png",
        "stations/M1/index.html",
        "stations/M1/last-30-days.png",
        "stations/M1/points.png",
        "stations/M1/recovery.png",
    ]
    for page in ("index.html", "stations/M1/index.html", "stations/M002/index.html"):
        html = (site / page).read_text()
        assert "<script" not in html and "://" not in html  # self-contained, no scheme
        links = re.findall(r'(?:href|src)="([^"]+)"', html)
        assert links
        for link in links:
            assert not link.startswith("/"), link
            target, _, anchor = link.partition("#")
            linked = (site / page).parent / target if target else site / page
            assert linked.resolve().is_file(), (page, link)
            if anchor:
                assert f'id="{anchor}"' in linked.read_text(), (page, link)
    index = (site / "index.html").read_text()
    assert "Status as of 2024-02-03 12:00 UTC. 2 station(s)" in index
    assert "Mast &lt;b&gt;&quot;2&quot;&lt;/b&gt; &amp; co" in index and HOSTILE not in index
    assert '<a href="stations/M1/index.html#failed">1 failed file</a>' in index
    assert '<a href="stations/M002/index.html#suspect">suspect: Spd80mN</a>' in index
    assert '<li>Failed files: <a href="#station-M1">M1</a></li>' in index  # needs attention
    m1 = (site / "stations/M1/index.html").read_text()
    assert "<code>raw/M1/bad.dat</code>" in m1 and "duplicate column name" in m1
    assert "quarantine/M1/" in m1
    m2 = (site / "stations/M002/index.html").read_text()
    assert "<td>Spd80mN</td><td>wind_speed</td><td>qc_icing 30%</td>" in m2
    # image sizes in the page are the files' own
    for src, w, h in re.findall(r'src="\.\./\.\./([^"]+)" width="(\d+)" height="(\d+)"', m2):
        assert png_size((site / src).read_bytes()) == (int(w), int(h))


def test_same_data_and_time_give_the_same_bytes(tmp_path: Path) -> None:
    config = fleet(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    write(config, a)
    write(config, b)
    fa, fb = files(a), files(b)
    fa.pop(MANIFEST)
    fb.pop(MANIFEST)
    assert fa == fb
    write(config, tmp_path / "c", NOW.replace(hour=18))
    later = files(tmp_path / "c")
    changed = sorted(k for k in fa if fa[k] != later[k])
    assert changed == ["index.html", "stations/M002/index.html", "stations/M1/index.html"]


def test_pictures_are_drawn_again_only_when_clean_data_changed(tmp_path: Path) -> None:
    config = fleet(tmp_path)
    site = tmp_path / "site"
    write(config, site)
    again = write(config, site)
    assert (again.drawn, again.written) == ([], [])
    clean = sorted((config.data_dir / "lake" / "clean" / "station=M1").glob("*.parquet"))[0]
    os.utime(clean, ns=(clean.stat().st_atime_ns, clean.stat().st_mtime_ns + 10**9))
    assert write(config, site).drawn == ["M1"]
    (site / "stations/M002/points.png").unlink()  # a picture lost: drawn again
    assert write(config, site).drawn == ["M002"]


def test_cli_report_html_and_run_regenerates_it(tmp_path: Path) -> None:
    config = fleet(tmp_path)
    conf = str(config.path)
    result = CliRunner().invoke(
        cli,
        ["--config", conf, "report", "--html", str(tmp_path / "site")],
        env={"SOURCE_DATE_EPOCH": "1706961600"},
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"2 station(s), 2 drawn -> {tmp_path / 'site' / 'index.html'}\n"
    assert "Status as of 2024-02-03 12:00 UTC" in (tmp_path / "site" / "index.html").read_text()
    bad = CliRunner().invoke(
        cli, ["--config", conf, "report", "--html", "x", "--start", "2024-01-01"]
    )
    assert (
        bad.exit_code == 2
        and "stationkit: error: --html shows whole station histories" in bad.stderr
    )
    # [report] html: every run writes the report again
    config.path.write_text('[report]\nhtml = "fleet-report"\n' + config.path.read_text())
    result = CliRunner().invoke(cli, ["--config", conf, "run", "M002"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "fleet-report" / "stations" / "M1" / "index.html").is_file()


def test_a_report_that_cannot_be_written_is_a_run_failure(tmp_path: Path) -> None:
    config = fleet(tmp_path)
    (tmp_path / "blocked").write_text("a file where the folder should be")
    config.path.write_text('[report]\nhtml = "blocked"\n' + config.path.read_text())
    result = CliRunner().invoke(cli, ["--config", str(config.path), "run", "M002"])
    assert result.exit_code == 3
    # the settings check's warning (M002 has no source), then the failure
    warning, error = result.stderr.splitlines()
    assert warning.startswith("stationkit: warning: stations.M002.source: not set")
    assert error.startswith(f"stationkit: error: fleet: report: {tmp_path / 'blocked'}: ")


def test_one_stations_unreadable_data_does_not_cost_the_others_their_report(
    tmp_path: Path,
) -> None:
    config = fleet(tmp_path)
    broken = config.data_dir / "lake" / "clean" / "station=M002" / "2024-03.parquet"
    broken.write_bytes(b"PAR1 not really parquet PAR1")
    site = tmp_path / "site"
    result = CliRunner().invoke(cli, ["--config", str(config.path), "report", "--html", str(site)])
    assert result.exit_code == 3
    assert result.stderr.startswith("stationkit: error: M002: pictures not drawn: ")
    assert (site / "stations" / "M1" / "recovery.png").is_file()
    page = (site / "stations" / "M002" / "index.html").read_text()
    assert (
        "Pictures not drawn: " in page
        and 'Suspect sensors</h2>\n<p class="muted">Not known: ' in page
    )
    status = CliRunner().invoke(cli, ["--config", str(config.path), "status", "M002"])
    assert (
        status.exit_code == 0
        and "  suspect sensors not known: lake/clean unreadable (" in status.stdout
    )
