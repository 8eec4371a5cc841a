"""The SFTP source (``kind = "sftp"``): a remote directory on an SSH server.

Built on asyncssh, which the rest of stationkit never sees: callers use the
synchronous :class:`~stationkit.fetch.base.FileSource` methods, and each
:class:`SftpFileSource` runs its own asyncio event loop in a private thread.
One SSH connection per source object, opened on first use, reopened after
it drops, closed by :meth:`SftpFileSource.close` (or ``with``).

Security
    Host keys are checked against ``known_hosts`` (default
    ``~/.ssh/known_hosts``) or, when ``host_key_fingerprint`` is set,
    against that pinned fingerprint only. Unknown or changed keys are
    refused with a message saying how to trust the key; nothing is ever
    accepted automatically. Passwords and passphrases come from the
    environment variables the config names (through the ``secrets`` lookup)
    and never appear in messages or logs. Remote names that are not safe
    relative paths (``..``, absolute, backslashes, drive letters, NUL,
    non-UTF-8) are refused with a warning and never listed.

Listing rules
    Symbolic links on the server are never followed -- neither to files nor
    to folders -- because they may point outside ``remote_dir``; they are
    skipped with an info message. Hidden entries (names starting with
    ``.``) are skipped like the local source does: uploaders write partial
    files under such names. Only regular files are listed.

Transfers
    Many files at once (``max_concurrent``) on the one connection, each
    read with pipelined requests, written with ``pwrite`` to the temporary
    path the fetch stage chooses, then fsynced. Exactly the listed size is
    read, so a file a logger is still appending to is fetched as the
    consistent prefix the listing described (the next run sees the larger
    size). A file that has shrunk is an error. When the connection drops,
    the unfinished files' temporaries are deleted, the connection is
    reopened after an exponential backoff (``retries`` times in all per
    call) and those files are fetched again; past the budget each of them
    is reported with a :class:`~stationkit.errors.FetchError`. Refused
    connections and timeouts are retried the same way; failed
    authentication and refused host keys are not.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import socket
import stat
import threading
from collections.abc import Callable, Coroutine, Generator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from stationkit.config import SftpSource
from stationkit.errors import FetchError
from stationkit.fetch.base import DownloadResult, RemoteFile, matches, safe_relpath
from stationkit.fetch.sftp_auth import (
    CheckingClient,
    Credentials,
    HostKeyCheck,
    SecretLookup,
    load_credentials,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: SSH channel window [bytes] (asyncssh's default is 2 MiB)
CHANNEL_WINDOW = 8 * 1024 * 1024
#: outstanding read requests per file, each as large as the server allows
#: (255 KiB for OpenSSH); more only adds buffering, measured on loopback
READ_REQUESTS_PER_FILE = 4
#: files up to this size are gathered in memory and written in one go [bytes]
WHOLE_FILE_BYTES = 2 * 1024 * 1024
#: asyncssh's default ciphers with AES-GCM moved first: it runs in OpenSSL with
#: AES-NI and moves data about twice as fast as chacha20-poly1305 (measured)
ENCRYPTION_ALGS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
#: cap of the exponential backoff between reconnects [s]
MAX_BACKOFF_S = 30.0
#: errors after which a new connection may succeed
_RETRYABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, timed out (TimeoutError), DNS
    asyncssh.ConnectionLost,
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.ChannelOpenError,
    asyncssh.DisconnectError,
)
#: errors no retry can fix (they are DisconnectErrors too)
_FATAL: tuple[type[BaseException], ...] = (
    asyncssh.PermissionDenied,
    asyncssh.HostKeyNotVerifiable,
    asyncssh.KeyExchangeFailed,
    asyncssh.ProtocolNotSupported,
    asyncssh.IllegalUserName,
)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _RETRYABLE) and not isinstance(exc, _FATAL)


def _reason(exc: BaseException, timeout_s: float) -> str:
    """A short description of a connection-level error (never a secret)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the SSH server running, and is the port right?)"
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout_s:g} s (connect_timeout_s)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    if isinstance(exc, asyncssh.SFTPError | asyncssh.DisconnectError | asyncssh.ChannelOpenError):
        return f"{exc.reason or type(exc).__name__}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------- retries


class _Retry:
    """One call's budget of reconnects, with exponential backoff."""

    def __init__(self, retries: int, backoff_s: float, where: str, timeout_s: float) -> None:
        self.left = retries
        self.delay = backoff_s
        self.where = where
        self.timeout_s = timeout_s
        self.attempts = 1

    async def again(self, exc: BaseException, doing: str) -> bool:
        """Sleep and return True when another attempt is allowed."""
        if self.left <= 0:
            return False
        self.left -= 1
        log.warning(
            "%s: %s: %s; retrying in %.2g s (%d left)",
            self.where,
            doing,
            _reason(exc, self.timeout_s),
            self.delay,
            self.left,
        )
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, MAX_BACKOFF_S)
        self.attempts += 1
        return True


# ---------------------------------------------------------------- the loop thread


class _LoopThread:
    """A private asyncio loop in a daemon thread; :meth:`run` blocks on a coroutine."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Start ``coro`` on the loop; returns its task (touch only through :meth:`run`)."""
        box: queue.SimpleQueue[asyncio.Future[T]] = queue.SimpleQueue()
        self.loop.call_soon_threadsafe(lambda: box.put(self.loop.create_task(coro)))
        return box.get()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()
            raise

    def stop(self) -> None:
        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_cancel_all(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


# ---------------------------------------------------------------- the source


class SftpFileSource:
    """Lists and downloads files from an SFTP server.

    ``secrets`` looks a secret up by the name of its environment variable
    (the fetch stage passes ``lambda name: get_secret(config, name)``);
    by default only the environment is read. ``backoff_s`` is the first
    wait before a reconnect [s]; it doubles each time, up to 30 s.

    Not thread-safe: call one method at a time. Use it as a context
    manager, or call :meth:`close`, to close the connection and the
    private event loop.
    """

    def __init__(
        self,
        config: SftpSource,
        *,
        secrets: SecretLookup | None = None,
        backoff_s: float = 1.0,
    ) -> None:
        self.config = config
        self._secrets: SecretLookup = secrets or (lambda name: os.environ.get(name or ""))
        self._backoff_s = backoff_s
        self.where = f"{config.username}@{config.host}:{config.port}"
        root = config.remote_dir.rstrip("/") or "/"
        self._root = root.encode("utf-8")
        self._known_hosts = (config.known_hosts or Path("~/.ssh/known_hosts")).expanduser()
        self._auth: Credentials | None = None
        self._runner: _LoopThread | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False

    # ------------------------------------------------------------ public API

    def list_files(self) -> list[RemoteFile]:
        """The files below ``remote_dir`` matching the patterns, sorted by path."""
        return self._run(self._list())

    def download(
        self, files: Sequence[RemoteFile], target: Callable[[RemoteFile], Path]
    ) -> Generator[DownloadResult, None, None]:
        """Write each file to ``target(file)`` and fsync it; yield one result per
        file, in completion order. A failed file's temporary is deleted; so are
        finished ones the caller never received when it stops iterating early."""
        dests = {f: target(f) for f in files}
        if not dests:
            return
        runner = self._loop()
        results: queue.SimpleQueue[DownloadResult | None] = queue.SimpleQueue()
        task = runner.submit(self._download_all(list(dests.items()), results.put))
        reported = 0
        try:
            while (item := results.get()) is not None:
                reported += 1
                yield item
        finally:
            # the caller stopped early, was interrupted, or a bug ended the task
            if not self._closed:
                runner.run(self._cancel(task))
            with contextlib.suppress(queue.Empty):
                while (item := results.get_nowait()) is not None:
                    if item[1] is None:
                        _unlink(dests[item[0]])
        if reported < len(dests):
            runner.run(self._cancel(task, reraise=True))

    def close(self) -> None:
        """Close the connection and stop the event loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._runner is not None:
            with contextlib.suppress(Exception):
                self._runner.run(self._drop())
            self._runner.stop()
            self._runner = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> SftpFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing

    def _loop(self) -> _LoopThread:
        if self._closed:
            raise FetchError(f"{self.where}: the SFTP source was closed")
        if self._runner is None:
            self._runner = _LoopThread(f"stationkit-sftp-{self.config.host}")
        return self._runner

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            runner = self._loop()
        except BaseException:
            coro.close()
            raise
        return runner.run(coro)

    @staticmethod
    async def _cancel(task: asyncio.Future[Any], *, reraise: bool = False) -> None:
        """Cancel ``task`` (a no-op once done) and wait for it; ``reraise`` its error."""
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:
            if reraise:
                raise

    def _retry(self) -> _Retry:
        return _Retry(
            self.config.retries, self._backoff_s, self.where, self.config.connect_timeout_s
        )

    async def _drop(self) -> None:
        """Forget the connection (after an error, or to close)."""
        sftp, conn = self._sftp, self._conn
        self._sftp = self._conn = None
        if sftp is not None:
            sftp.exit()
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)

    async def _client(self, retry: _Retry) -> asyncssh.SFTPClient:
        """The SFTP client, connecting (with retries) when there is none."""
        if self._sftp is not None:
            return self._sftp
        if self._auth is None:
            self._auth = load_credentials(self.config, self._secrets)
        while True:
            try:
                self._conn, self._sftp = await self._connect(self._auth)
                return self._sftp
            except FetchError:
                raise
            except Exception as exc:
                if not _retryable(exc):
                    raise self._fatal(exc) from None
                await self._drop()
                if not await retry.again(exc, "cannot connect"):
                    raise FetchError(
                        f"cannot connect to {self.where}: "
                        f"{_reason(exc, self.config.connect_timeout_s)} "
                        f"({retry.attempts} attempt{'s' if retry.attempts > 1 else ''})"
                    ) from None

    def _fatal(self, exc: BaseException) -> FetchError:
        assert self._auth is not None
        if isinstance(exc, asyncssh.PermissionDenied):
            return FetchError(
                f"authentication failed for {self.where} ({', '.join(self._auth.methods)})"
            )
        if isinstance(exc, asyncssh.KeyExchangeFailed):
            return FetchError(
                f"{self.where}: no common key exchange or host key algorithm "
                f"({_reason(exc, 0)}); if known_hosts lists only some key types for this host, "
                "add the server's other keys with ssh-keyscan"
            )
        return FetchError(f"{self.where}: {_reason(exc, self.config.connect_timeout_s)}")

    async def _connect(
        self, auth: Credentials
    ) -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
        cfg = self.config
        check = HostKeyCheck(cfg, self._known_hosts)
        known_hosts = check.trusted()
        families: list[tuple[str, ...]] | None = None
        algs: Sequence[str] | str = "default"
        while True:
            try:
                return await asyncio.wait_for(
                    self._open(auth, check, known_hosts, algs), cfg.connect_timeout_s
                )
            except asyncssh.HostKeyNotVerifiable as exc:
                if cfg.host_key_fingerprint is None:
                    raise check.refusal(exc.reason) from None
                reason = exc.reason
            except Exception as exc:
                probe_ended = isinstance(exc, asyncssh.KeyExchangeFailed) or _retryable(exc)
                if families is None or not probe_ended:
                    raise
                # probing one key type at a time: a server without a key of that type
                # ends the key exchange (OpenSSH just closes the connection)
                log.debug("%s: probing host key type %s: %s", self.where, algs, exc)
                reason = "no host key of this type"
            # a pinned fingerprint may be that of another of the server's keys
            if families is None:
                families = check.untried_families()
            if not families:
                raise check.refusal(reason) from None
            algs = families.pop(0)
            log.debug("%s: host key does not match the pinned one; trying %s", self.where, algs)

    async def _open(
        self, auth: Credentials, check: HostKeyCheck, known_hosts: Any, algs: Sequence[str] | str
    ) -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
        cfg = self.config
        keys: Any = auth.keys
        agent = None
        try:
            if auth.agent_path is not None:
                agent = await asyncssh.connect_agent(auth.agent_path)
                keys = list(auth.keys) + list(await agent.get_keys())
            if auth.defaults:
                keys = ()
            elif not keys:
                keys = None  # password only: no public key auth at all
            conn = await asyncssh.connect(
                cfg.host,
                cfg.port,
                username=cfg.username,
                known_hosts=known_hosts,
                client_factory=lambda: CheckingClient(check),
                server_host_key_algs=algs,
                client_keys=keys,
                password=auth.password,
                agent_path=None,
                config=None,
                gss_auth=False,
                gss_kex=False,
                host_based_auth=False,
                kbdint_auth=auth.password is not None,
                connect_timeout=cfg.connect_timeout_s,
                login_timeout=cfg.connect_timeout_s,
                keepalive_interval=cfg.connect_timeout_s,
                keepalive_count_max=3,
                window=CHANNEL_WINDOW,
                encryption_algs=ENCRYPTION_ALGS,
            )
        finally:
            if agent is not None:
                agent.close()
        try:
            sftp = await conn.start_sftp_client(path_encoding=None)
        except BaseException:
            conn.close()
            raise
        log.info("%s: connected (%s)", self.where, conn.get_extra_info("server_version"))
        return conn, sftp

    # ------------------------------------------------------------ listing

    async def _list(self) -> list[RemoteFile]:
        retry = self._retry()
        while True:
            sftp = await self._client(retry)
            try:
                return await self._scan(sftp)
            except FetchError:
                raise
            except Exception as exc:
                failed = FetchError(
                    f"{self.where}: listing {self.config.remote_dir} failed: "
                    f"{_reason(exc, self.config.connect_timeout_s)}"
                )
                if not _retryable(exc):
                    raise failed from None
                await self._drop()
                if not await retry.again(exc, "listing failed"):
                    raise failed from None

    async def _scan(self, sftp: asyncssh.SFTPClient) -> list[RemoteFile]:
        cfg = self.config
        try:
            attrs = await sftp.stat(self._root)
        except asyncssh.SFTPNoSuchFile:
            raise FetchError(
                f"{self.where}: remote_dir {cfg.remote_dir}: no such directory on the server"
            ) from None
        except asyncssh.SFTPPermissionDenied:
            raise FetchError(
                f"{self.where}: remote_dir {cfg.remote_dir}: permission denied for "
                f"user {cfg.username}"
            ) from None
        if attrs.type != asyncssh.FILEXFER_TYPE_DIRECTORY:
            raise FetchError(f"{self.where}: remote_dir {cfg.remote_dir} is not a directory")
        found: list[RemoteFile] = []
        level: list[tuple[bytes, str]] = [(self._root, "")]
        limit = asyncio.Semaphore(cfg.max_concurrent)

        async def readdir(path: bytes) -> list[asyncssh.SFTPName]:
            async with limit:
                return list(await sftp.readdir(path))

        while level:
            listings = await asyncio.gather(
                *(readdir(path) for path, _ in level), return_exceptions=True
            )
            below: list[tuple[bytes, str]] = []
            for (path, prefix), names in zip(level, listings, strict=True):
                if isinstance(names, asyncssh.SFTPNoSuchFile | asyncssh.SFTPPermissionDenied):
                    if not prefix:
                        raise FetchError(
                            f"{self.where}: remote_dir {cfg.remote_dir}: {names.reason}"
                        )
                    log.warning("%s: %s: %s; skipped", self.where, prefix, names.reason)
                    continue
                if isinstance(names, BaseException):
                    raise names
                for entry in names:
                    self._entry(path, prefix, entry, found, below)
            level = below if cfg.recursive else []
        return sorted(found)

    def _entry(
        self,
        path: bytes,
        prefix: str,
        entry: asyncssh.SFTPName,
        found: list[RemoteFile],
        below: list[tuple[bytes, str]],
    ) -> None:
        raw = entry.filename
        assert isinstance(raw, bytes)
        if raw in (b".", b".."):
            return
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            log.warning(
                "%s: remote name %r in %s is not UTF-8: refused, skipped",
                self.where,
                raw,
                prefix or self.config.remote_dir,
            )
            return
        rel = prefix + name
        try:
            if "/" in name:
                raise FetchError(f"remote file {rel!r}: refused, a name may not contain '/'")
            if safe_relpath(rel).as_posix() != rel:
                raise FetchError(f"remote file {rel!r}: refused, not a plain relative path")
        except FetchError as exc:
            log.warning("%s: %s; skipped", self.where, exc)
            return
        if name.startswith("."):
            log.debug("%s: %s: hidden, skipped", self.where, rel)
            return
        attrs = entry.attrs
        kind = attrs.type
        if kind == asyncssh.FILEXFER_TYPE_UNKNOWN and attrs.permissions is not None:
            kind = {
                stat.S_IFREG: asyncssh.FILEXFER_TYPE_REGULAR,
                stat.S_IFDIR: asyncssh.FILEXFER_TYPE_DIRECTORY,
                stat.S_IFLNK: asyncssh.FILEXFER_TYPE_SYMLINK,
            }.get(stat.S_IFMT(attrs.permissions), kind)
        if kind == asyncssh.FILEXFER_TYPE_SYMLINK:
            log.info("%s: %s is a symbolic link: not followed, skipped", self.where, rel)
        elif kind == asyncssh.FILEXFER_TYPE_DIRECTORY:
            below.append((path + b"/" + raw, rel + "/"))
        elif kind != asyncssh.FILEXFER_TYPE_REGULAR:
            log.debug("%s: %s: not a regular file, skipped", self.where, rel)
        elif matches(rel, self.config.patterns):
            if attrs.size is None:
                log.warning("%s: %s: the server gave no size; skipped", self.where, rel)
                return
            mtime = float(attrs.mtime) if attrs.mtime is not None else 0.0
            if attrs.mtime_ns is not None:
                mtime = attrs.mtime_ns / 1e9
            found.append(RemoteFile(rel, attrs.size, mtime))

    # ------------------------------------------------------------ downloads

    def _remote(self, f: RemoteFile) -> bytes:
        rel = safe_relpath(f.path)  # files may come from a caller, not our listing
        return self._root.rstrip(b"/") + b"/" + rel.as_posix().encode("utf-8")

    async def _download_all(
        self,
        jobs: list[tuple[RemoteFile, Path]],
        emit: Callable[[DownloadResult | None], None],
    ) -> None:
        retry = self._retry()
        pending = jobs
        lost_reason = ""
        try:
            while pending:
                try:
                    sftp = await self._client(retry)
                except FetchError as exc:
                    why = f"the connection was lost ({lost_reason}); " if lost_reason else ""
                    for f, _ in pending:
                        emit((f, FetchError(f"{self._describe(f)}: not fetched: {why}{exc}")))
                    return
                lost = await self._transfer(sftp, pending, emit)
                if lost is None:
                    return
                failed, pending = lost
                lost_reason = _reason(failed, self.config.connect_timeout_s)
                await self._drop()
                if not await retry.again(failed, f"connection lost ({len(pending)} files left)"):
                    for f, _ in pending:
                        emit(
                            (
                                f,
                                FetchError(
                                    f"{self._describe(f)}: not fetched: the connection was "
                                    f"lost ({lost_reason}) after {retry.attempts} attempt"
                                    f"{'s' if retry.attempts > 1 else ''}"
                                ),
                            )
                        )
                    return
        finally:
            emit(None)

    def _describe(self, f: RemoteFile) -> str:
        return f"{self.where}:{self.config.remote_dir.rstrip('/')}/{f.path}"

    async def _transfer(
        self,
        sftp: asyncssh.SFTPClient,
        jobs: list[tuple[RemoteFile, Path]],
        emit: Callable[[DownloadResult | None], None],
    ) -> tuple[BaseException, list[tuple[RemoteFile, Path]]] | None:
        """Fetch ``jobs`` on one connection. None when all are done (or failed for
        a reason of their own); else the connection error and the unfinished jobs."""
        todo = list(reversed(jobs))
        lost: list[tuple[RemoteFile, Path]] = []
        broken: list[BaseException] = []

        async def worker() -> None:
            while todo and not broken:
                f, dest = todo.pop()
                try:
                    await self._fetch(sftp, f, dest)
                except asyncio.CancelledError:
                    _unlink(dest)
                    raise
                except Exception as exc:
                    _unlink(dest)
                    if _retryable(exc):
                        broken.append(exc)
                        lost.append((f, dest))
                    else:
                        emit((f, self._file_error(f, exc)))
                else:
                    emit((f, None))

        tasks = [
            asyncio.ensure_future(worker())
            for _ in range(min(self.config.max_concurrent, len(jobs)))
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            # on cancellation gather() returns at once; the workers must finish
            # deleting their temporaries before the caller looks
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        if not broken:
            return None
        return broken[0], sorted(lost + todo)

    def _file_error(self, f: RemoteFile, exc: BaseException) -> FetchError:
        if isinstance(exc, FetchError):
            return exc
        if isinstance(exc, _LocalError):
            return FetchError(f"{self._describe(f)}: {exc}")
        if isinstance(exc, asyncssh.SFTPError):
            return FetchError(f"{self._describe(f)}: {exc.reason or type(exc).__name__}")
        return FetchError(f"{self._describe(f)}: {type(exc).__name__}: {exc}")

    def _io_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """Threads for local file I/O, so that fsyncs overlap (ext4 batches them)."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=min(32, max(4, self.config.max_concurrent)),
                thread_name_prefix="stationkit-sftp-io",
            )
        return self._pool

    def _check_complete(self, f: RemoteFile, got: int) -> None:
        if got != f.size:
            raise FetchError(
                f"{self._describe(f)}: the file shrank on the server during the download "
                f"({got} of {f.size} bytes); it will be fetched again next run"
            )

    async def _fetch(self, sftp: asyncssh.SFTPClient, f: RemoteFile, dest: Path) -> None:
        """Read exactly ``f.size`` bytes of ``f`` into ``dest`` and fsync it."""
        remote = self._remote(f)
        pool = self._io_pool()
        async with sftp.open(
            remote, "rb", block_size=-1, max_requests=READ_REQUESTS_PER_FILE
        ) as src:
            if f.size <= WHOLE_FILE_BYTES:
                chunks = [c async for c in await src.read_parallel(f.size, 0)] if f.size else []
                self._check_complete(f, sum(len(data) for _, data in chunks))
                await _in_thread(pool, _write_whole, dest, chunks, f.size)
                return
            fd = await _in_thread(pool, _create, dest)
            try:
                written = 0
                async for offset, data in await src.read_parallel(f.size, 0):
                    # page-cache writes are quick; a thread hop per block is not
                    _pwrite(fd, data, offset, dest)
                    written += len(data)
                self._check_complete(f, written)
                await _in_thread(pool, _finish, fd, dest, f.size)
            finally:
                os.close(fd)


class _LocalError(Exception):
    """Writing the local temporary failed (not a connection problem)."""


async def _in_thread(
    pool: concurrent.futures.ThreadPoolExecutor, fn: Callable[..., T], *args: Any
) -> T:
    """``fn(*args)`` in ``pool``. When cancelled, still waits for it to end: it may
    be writing to a file descriptor that the caller closes next."""
    fut = asyncio.get_running_loop().run_in_executor(pool, fn, *args)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        await asyncio.wait([fut])
        raise


def _create(dest: Path) -> int:
    try:
        return os.open(dest, _CREATE_FLAGS, 0o644)
    except OSError as exc:
        raise _LocalError(f"cannot create {dest} ({exc.strerror})") from None


#: O_CLOEXEC and O_BINARY exist on one platform each
_CREATE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


def _write_at(fd: int, data: memoryview, offset: int) -> int:
    """``os.pwrite``; where there is none (Windows), a seek and a write: each
    descriptor is written by one task at a time."""
    pwrite = getattr(os, "pwrite", None)
    if pwrite is not None:
        return int(pwrite(fd, data, offset))
    os.lseek(fd, offset, os.SEEK_SET)
    return os.write(fd, data)


def _pwrite(fd: int, data: bytes, offset: int, dest: Path) -> None:
    view = memoryview(data)
    try:
        while view:
            n = _write_at(fd, view, offset)
            view = view[n:]
            offset += n
    except OSError as exc:
        raise _LocalError(f"cannot write {dest} ({exc.strerror})") from None


def _finish(fd: int, dest: Path, size: int) -> None:
    """fsync, and check that the file holds exactly ``size`` bytes."""
    try:
        os.fsync(fd)
        got = os.fstat(fd).st_size
    except OSError as exc:
        raise _LocalError(f"cannot write {dest} ({exc.strerror})") from None
    if got != size:
        raise _LocalError(f"{dest} holds {got} bytes, expected {size}")


def _write_whole(dest: Path, chunks: list[tuple[int, bytes]], size: int) -> None:
    fd = _create(dest)
    try:
        for offset, data in chunks:
            _pwrite(fd, data, offset, dest)
        _finish(fd, dest, size)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


__all__ = ["SecretLookup", "SftpFileSource"]
