"""``stationkit unpack``."""

from __future__ import annotations

from typing import Any

import click

from stationkit.cli.common import (
    common_options,
    emit,
    exit_code,
    get_config,
    handle_errors,
    report_errors,
)
from stationkit.ledger import Ledger
from stationkit.lock import RunLock
from stationkit.pipeline.unpack import unpack_station


@click.command()
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
    config = get_config()
    results: list[dict[str, Any]] = []
    errors: list[tuple[str, str, str]] = []
    ok = failed = 0
    with RunLock(config.data_dir), Ledger(config.data_dir) as ledger:
        for st in config.select(stations):
            s = unpack_station(config, st, ledger, retry_failed=retry_failed)
            results.append(s.as_dict())
            errors.extend((st.id, f, e) for f, e in s.errors)
            ok += s.archives
            failed += s.failed
    report_errors(errors)
    emit(
        results,
        lambda: "\n".join(
            f"{r['station']}: {r['archives']} archive(s), {r['members']} member(s), {r['failed']} failed"
            for r in results
        ),
    )
    raise SystemExit(exit_code(failed, ok))
