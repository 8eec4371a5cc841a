"""The progress display of long commands: rich, on a terminal only.

The library reports :class:`stationkit.progress.Progress` events; this
module shows them as one line per station at work (stage, files done /
total, rate, time left, current file) under a bar for the whole fleet.
Log lines are printed through the same console, above the bars, so they
never collide with them. Nothing is shown when stderr is not a terminal
(cron), with -q or with --json.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from stationkit.cli.common import options
from stationkit.progress import STATIONS, Progress, ProgressCallback
from stationkit.textsafe import show_name

FLEET = "\x00fleet"


class _Rate(ProgressColumn):
    """``12.5 files/s``."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("")
        return Text(f"{speed:.1f} {task.fields.get('unit', '')}/s", style="progress.data.speed")


class _ConsoleHandler(logging.Handler):
    """Log records printed through the progress console, above the bars."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)
        except Exception:  # logging must never break the command
            self.handleError(record)


class ProgressDisplay:
    """A :data:`~stationkit.progress.ProgressCallback` drawing rich progress bars."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars = RichProgress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            _Rate(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[item]}", style="dim", markup=False),
            console=console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._stages: dict[str, str] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressDisplay:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def __call__(self, event: Progress) -> None:
        with self._lock:
            self._show(event)

    def _show(self, ev: Progress) -> None:
        fleet = not ev.station
        key = FLEET if fleet else ev.station
        if fleet:
            description = "all stations" if ev.stage == STATIONS else f"all stations: {ev.stage}"
        else:
            description = f"{ev.station} {ev.stage}"
        shown = show_name(ev.item)  # a file name cannot break the line
        item = shown if len(shown) <= 40 else "..." + shown[-37:]
        if key not in self._tasks:
            self._tasks[key] = self.bars.add_task(
                description, total=ev.total, completed=ev.done, unit=ev.unit, item=item
            )
            self._stages[key] = ev.stage
        elif self._stages[key] != ev.stage:
            # a new stage of the same station: start its count afresh
            self._stages[key] = ev.stage
            self.bars.reset(
                self._tasks[key], total=ev.total, completed=ev.done, description=description,
                unit=ev.unit, item=item,
            )  # fmt: skip
        else:
            self.bars.update(self._tasks[key], total=ev.total, completed=ev.done, item=item)
        if fleet and ev.item and ev.item in self._tasks:
            # that station is finished: its line goes
            self.bars.remove_task(self._tasks.pop(ev.item))
            self._stages.pop(ev.item, None)


@contextmanager
def progress_to(console: Console) -> Iterator[ProgressDisplay]:
    """Show progress on ``console``; stationkit's log lines go through it meanwhile."""
    logger = logging.getLogger("stationkit")
    plain = [h for h in logger.handlers if getattr(h, "_stationkit", False)]
    display = ProgressDisplay(console)
    handler = _ConsoleHandler(console)
    levels = [h.level for h in plain]
    if plain:  # in their stead: their format, and the lowest of their levels
        handler.setFormatter(plain[0].formatter)
        handler.setLevel(min(levels))
    for h in plain:
        h.setLevel(logging.CRITICAL + 1)
    logger.addHandler(handler)
    try:
        with display:
            yield display
    finally:
        logger.removeHandler(handler)
        for h, level in zip(plain, levels, strict=True):
            h.setLevel(level)


@contextmanager
def progress_display() -> Iterator[ProgressCallback | None]:
    """A progress callback drawing on the terminal; None when stderr is not
    one (cron), or with -q or --json."""
    opts = options()
    if opts.quiet or opts.json or not sys.stderr.isatty():
        yield None
        return
    with progress_to(Console(stderr=True)) as display:
        yield display


def progress_done(show: ProgressCallback | None) -> None:
    """Take the bars of :func:`progress_display` off the terminal now, before
    its end (a report printed while they are drawn would mix with them)."""
    if isinstance(show, ProgressDisplay):
        show.bars.stop()
