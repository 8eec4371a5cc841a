"""Progress: the library's callback contract, the terminal display (rich),
log lines routed through it, and silence when not on a terminal."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from stationkit.cli import cli
from stationkit.cli.progress import progress_done, progress_to
from stationkit.config import load_config
from stationkit.ledger import Ledger
from stationkit.pipeline.fetch import fetch_station
from stationkit.pipeline.parse import parse_station
from stationkit.pipeline.run import run_stations
from stationkit.progress import STATIONS, Progress
from tests.pipeline.helpers import make_station, toa5


def _station(tmp_path: Path, files: int = 3) -> Path:
    _, incoming = make_station(tmp_path)
    for i in range(files):
        (incoming / f"f{i}.dat").write_text(toa5([(f"2024-01-0{i + 1} 01:10:00", 5.0, 0.5)]))
    return tmp_path / "stations.toml"


@pytest.mark.parametrize("jobs", [1, 2])
def test_parse_reports_files_done_of_total(tmp_path: Path, jobs: int) -> None:
    config = load_config(_station(tmp_path))
    events: list[Progress] = []
    with Ledger(config.data_dir) as ledger:
        fetch_station(config, config.stations["M1"], ledger)
        parse_station(config, config.stations["M1"], ledger, progress=events.append, jobs=jobs)
    assert [(e.station, e.stage, e.done, e.total, e.item) for e in events] == [
        ("M1", "parse", 0, 3, ""),
        ("M1", "parse", 1, 3, "raw/M1/f0.dat"),
        ("M1", "parse", 2, 3, "raw/M1/f1.dat"),
        ("M1", "parse", 3, 3, "raw/M1/f2.dat"),
    ]


def test_run_reports_stages_and_finished_stations(tmp_path: Path) -> None:
    config = load_config(_station(tmp_path, files=2))
    events: list[Progress] = []
    assert run_stations(config, config.select(), progress=events.append).exit_code == 0
    stages = list(dict.fromkeys(e.stage for e in events if e.station == "M1"))
    assert stages == ["fetch", "unpack", "parse", "calibrate", "export"]
    fleet = [(e.done, e.total, e.item) for e in events if e.stage == STATIONS]
    assert fleet == [(0, 1, ""), (1, 1, "M1")]
    # within a station and stage, done never goes down
    for stage in stages:
        done = [e.done for e in events if e.station == "M1" and e.stage == stage]
        assert done == sorted(done)


class _Plain(logging.Handler):
    """Stands for the CLI's stderr handler (marked as stationkit's own)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._stationkit = True

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_display_shows_counts_and_routes_log_lines_through_it() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    logger = logging.getLogger("stationkit")
    plain = _Plain()
    plain.setFormatter(logging.Formatter("stationkit: %(levelname)s: %(message)s"))
    saved = logger.handlers[:]
    logger.handlers = [plain]  # whatever handlers earlier commands added
    level = logger.level
    logger.setLevel(logging.INFO)  # whatever earlier commands set
    try:
        with progress_to(console) as show:
            show(Progress("", STATIONS, 0, 2, unit="stations"))
            show(Progress("M1", "parse", 0, 3))
            show(Progress("M1", "parse", 2, 3, "raw/M1/f1.dat"))
            logger.warning("a line in the middle")
            show.bars.refresh()
            shown = out.getvalue()
            show(Progress("", STATIONS, 1, 2, "M1", unit="stations"))  # M1's line goes
            assert [t.description for t in show.bars.tasks] == ["all stations"]
        logger.warning("after the display")
    finally:
        logger.handlers = saved
        logger.setLevel(level)
    assert "M1 parse" in shown and "2/3" in shown and "files" in shown
    assert "raw/M1/f1.dat" in shown and "0/2" in shown
    assert "stationkit: WARNING: a line in the middle" in shown  # above the bars, not through them
    assert plain.lines == ["after the display"]  # the plain handler was silent meanwhile


def test_display_escapes_file_names_and_ends_before_a_report() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with progress_to(console) as show:
        show(Progress("M1", "parse", 1, 2, "raw/M1/[red]a\nb.dat"))
        show.bars.refresh()
        shown = out.getvalue()
        progress_done(show)  # run's report: the bars go first
        assert not show.bars.live.is_started
    # one line, shown literally: no line break, no markup taken from a name
    assert "raw/M1/[red]a\\nb.dat" in shown


def test_silent_when_not_on_a_terminal(tmp_path: Path) -> None:
    conf = str(_station(tmp_path))
    result = CliRunner().invoke(cli, ["--config", conf, "run", "-v"])
    assert result.exit_code == 0
    # log lines only: no bars, no carriage returns, no escape sequences
    assert all(line.startswith("stationkit: info: ") for line in result.stderr.splitlines())
    assert "stale when first checked (newest data 2024-01-03 00:00 UTC)" in result.stderr
    assert result.stdout.startswith("M1: 3 fetched, 3 parsed, 0 failed")
    for text in (result.stdout, result.stderr):
        assert "\r" not in text and "\x1b" not in text
