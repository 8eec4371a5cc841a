"""The ``stationkit`` command: glue between the shell and the library."""

from __future__ import annotations

import click

from stationkit import __version__
from stationkit.cli.calibrate import calibrate
from stationkit.cli.check import check
from stationkit.cli.common import Options, StationkitGroup, common_options
from stationkit.cli.export import export
from stationkit.cli.fetch import add, fetch
from stationkit.cli.parse import parse
from stationkit.cli.plot import plot
from stationkit.cli.rebuild import rebuild
from stationkit.cli.report import report
from stationkit.cli.run import run
from stationkit.cli.status import status
from stationkit.cli.unpack import unpack


@click.group(
    name="stationkit", cls=StationkitGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="stationkit")
@common_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """stationkit: logger files to analysis-ready data, for met masts, lidars and sodars.

    \b
    Example:
        stationkit --config stations.toml run
        stationkit status M001 --json
    """
    ctx.ensure_object(Options)


for command in (
    fetch, add, unpack, parse, calibrate, export, report, plot, run, status, rebuild, check,
):  # fmt: skip
    cli.add_command(command)


def main() -> None:
    cli(prog_name="stationkit")
