"""A headless Chromium driven over the DevTools protocol, for tests of the HTML report.

Chromium is started with ``--remote-debugging-pipe``: protocol messages go
over two pipes (the browser reads fd 3 and writes fd 4, NUL-separated JSON),
so no port, no websocket library and nothing listening on the network (the
way Playwright drives Chromium).
``make test`` installs Debian's ``chromium`` when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("STATIONKIT_CHROMIUM", "/usr/bin/chromium"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
#: seconds any one protocol answer may take (a safety net, not an assertion)
TIMEOUT = 60.0


class BrowserError(RuntimeError):
    """Chromium failed or answered with an error."""


@dataclass
class PageLoad:
    """What loading a page showed: its DOM, a screenshot, and every problem reported."""

    html: str
    screenshot: bytes
    #: console errors, uncaught exceptions and failed loads, as text
    errors: list[str] = field(default_factory=list)
    #: images that did not load (src)
    broken_images: list[str] = field(default_factory=list)
    width: int = 0
    height: int = 0


class Browser:
    """One headless Chromium process; use as a context manager."""

    def __init__(self, binary: Path = CHROMIUM) -> None:
        self.binary = binary
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="stationkit-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # the browser expects its pipes as fds 3 and 4: bash moves them there (from
        # numbers of 10 and up, which no redirection below can overwrite first)
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser_r, from_browser_w)]
        os.close(to_browser_r)
        os.close(from_browser_w)
        to_browser_r, from_browser_w = ends
        script = (
            f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} '
            f"{to_browser_r}<&- {from_browser_w}>&-"
        )
        self.proc = subprocess.Popen(
            [
                "/bin/bash",
                "-c",
                script,
                str(self.binary),
                *FLAGS,
                f"--user-data-dir={self._profile}",
            ],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    # ------------------------------------------------------------ protocol

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from Chromium in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise BrowserError(f"Chromium exited ({self.proc.poll()}): {err[-2000:]}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command and wait for its answer (events meanwhile go to :attr:`events`)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The first event ``method`` (already received or arriving)."""
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + TIMEOUT
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    # ------------------------------------------------------------ pages

    def load(self, url: str, *, width: int = 1400, height: int = 900) -> PageLoad:
        """Open ``url`` in a new tab, wait for it to load, and look at it."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session)
        self.send(
            "Emulation.setDeviceMetricsOverride", session,
            width=width, height=height, deviceScaleFactor=1, mobile=False,
        )  # fmt: skip
        self.events.clear()
        self.send("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired")

        def evaluate(expression: str) -> Any:
            answer = self.send(
                "Runtime.evaluate", session, expression=expression, returnByValue=True
            )
            if "exceptionDetails" in answer:
                raise BrowserError(f"{expression}: {answer['exceptionDetails']}")
            return answer["result"].get("value")

        # images marked loading="lazy" do not hold up the load event: make them load
        # now and wait for every image to settle, so a slow one is not taken for broken
        self.send(
            "Runtime.evaluate", session, expression=_SETTLE_IMAGES, awaitPromise=True,
            returnByValue=True,
        )  # fmt: skip
        html = evaluate("document.documentElement.outerHTML")
        broken = evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.getAttribute('src'))"
        )
        size = evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
        )
        shot = self.send(
            "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
        )["data"]
        # only this tab's events: a tab closed before may still report its teardown
        errors = [_problem(ev) for ev in self.events if ev.get("sessionId") == session]
        self.send("Target.closeTarget", targetId=target)
        return PageLoad(
            html=html,
            screenshot=base64.b64decode(shot),
            errors=[e for e in errors if e],
            broken_images=list(broken),
            width=int(size[0]),
            height=int(size[1]),
        )


#: load every lazy image and resolve once all images have loaded or failed (at most 30 s)
_SETTLE_IMAGES = """
new Promise(done => {
  const images = Array.from(document.images);
  for (const i of images) { if (i.loading === 'lazy') i.loading = 'eager'; }
  const settled = images.map(i => i.complete ? Promise.resolve() :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); }));
  Promise.all(settled).then(() => done(true));
  setTimeout(() => done(false), 30000);
})
"""


def _problem(event: dict[str, Any]) -> str:
    """The text of an event that reports a problem; "" for the others."""
    method = event.get("method")
    params = event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        args = params.get("args", [])
        return "console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in args)
    if method == "Runtime.exceptionThrown":
        return "exception: " + json.dumps(params.get("exceptionDetails", {}))[:500]
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip()
    if method == "Network.loadingFailed":
        return f"load failed: {params.get('errorText')}"
    return ""
