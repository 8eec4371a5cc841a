"""``stationkit unpack``."""

from __future__ import annotations

import click

from stationkit.cli.common import (
    StationStep,
    common_options,
    handle_errors,
    per_station,
)
from stationkit.config import Config, StationConfig
from stationkit.ledger import Ledger
from stationkit.pipeline.unpack import unpack_station


@click.command(short_help="Extract new archives (zip, 7z, gz, xz, tar) into staging/.")
@click.argument("stations", nargs=-1)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Try archives that failed before again (e.g. after setting the password variable).",
)
@common_options
@handle_errors
def unpack(stations: tuple[str, ...], retry_failed: bool) -> None:
    """Extract new archives (zip, 7z incl. AES, gz, xz, lzma, bz2, tar) into staging/.

    Archives are recognised by content, not name. Passwords come from the
    environment variable named by [stations.<id>.archives] password_env.
    Unsafe members (absolute paths, '..', links, devices, bombs) are refused
    and the archive quarantined; nothing half-extracted remains.

    \b
    Example:
        M001_ARCHIVE_PASSWORD=... stationkit unpack M001 --retry-failed
    """

    def step(config: Config, st: StationConfig, ledger: Ledger) -> StationStep:
        s = unpack_station(config, st, ledger, retry_failed=retry_failed)
        return StationStep(s.as_dict(), s.errors, s.archives, s.failed)

    per_station(
        stations,
        step,
        lambda results: "\n".join(
            f"{r['station']}: {r['archives']} archive(s), {r['members']} member(s), {r['failed']} failed"
            for r in results
        ),
        stage="unpack",
    )
