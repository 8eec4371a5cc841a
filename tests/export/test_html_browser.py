"""The HTML fleet report in a real browser: headless Chromium (Debian's
``chromium``, which ``make test`` installs) loads the pages from file://
URLs, as a station manager opening them from a shared drive would.

Checked: the page renders (a screenshot of real size and content), the
station ids and problems are in the DOM, every image loads, and Chromium
reports no console error, exception or failed load."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from tests.browser import Browser
from tests.export.test_html import fleet, write


def _looks_rendered(png: bytes) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    assert width >= 1000 and height >= 600, image.size
    assert len(png) > 20_000  # not a blank page
    colours = image.resize((width // 4, height // 4)).getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, badges, pictures


def test_fleet_and_station_pages_render_in_chromium(tmp_path: Path) -> None:
    config = fleet(tmp_path)
    site = tmp_path / "site"
    write(config, site)
    with Browser() as browser:
        index = browser.load((site / "index.html").as_uri())
        station = browser.load((site / "stations" / "M002" / "index.html").as_uri())
        other = browser.load((site / "stations" / "M1" / "index.html").as_uri())
    for page in (index, station, other):
        assert page.errors == []
        assert page.broken_images == []
        _looks_rendered(page.screenshot)
    assert 'id="station-M1"' in index.html and 'id="station-M002"' in index.html
    assert index.html.count('class="months"') == 2  # the recovery strips
    assert "suspect: Spd80mN" in index.html
    assert "<td>Spd80mN</td>" in station.html and "Mast &lt;b&gt;" in station.html
    assert "raw/M1/bad.dat" in other.html


def test_a_broken_image_is_seen(tmp_path: Path) -> None:
    """The check itself: a page whose picture is missing is reported."""
    config = fleet(tmp_path)
    site = tmp_path / "site"
    write(config, site)
    (site / "stations" / "M1" / "recovery.png").unlink()
    with Browser() as browser:
        page = browser.load((site / "stations" / "M1" / "index.html").as_uri())
    assert page.broken_images == ["../../stations/M1/recovery.png"]
    assert any("ERR_FILE_NOT_FOUND" in e for e in page.errors)


def test_console_errors_and_exceptions_are_seen(tmp_path: Path) -> None:
    """The check itself: a page that logs an error and throws is reported."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><p>x</p><script>"
        "console.error('broken on purpose'); null.boom();</script></body></html>"
    )
    with Browser() as browser:
        seen = browser.load(page.as_uri())
    assert any("broken on purpose" in e for e in seen.errors)
    assert any(e.startswith("exception: ") for e in seen.errors)
