"""The drop-folder source (``kind = "local"``): files put into a folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from stationkit.config import LocalSource
from stationkit.errors import FetchError
from stationkit.fetch.base import DownloadResult, RemoteFile, matches


class LocalFolderSource:
    """Lists and copies files from a local folder."""

    def __init__(self, config: LocalSource) -> None:
        self.config = config

    def list_files(self) -> list[RemoteFile]:
        root = self.config.path
        if not root.is_dir():
            raise FetchError(f"source folder {root}: does not exist or is not a folder")
        found: list[RemoteFile] = []
        stack = [(root, "")]
        while stack:
            folder, prefix = stack.pop()
            with os.scandir(folder) as entries:
                for e in entries:
                    # hidden names are uploads in progress by convention; links may escape the folder
                    if e.name.startswith(".") or e.is_symlink():
                        continue
                    rel = f"{prefix}{e.name}"
                    if e.is_dir():
                        if self.config.recursive:
                            stack.append((Path(e.path), rel + "/"))
                        continue
                    if not e.is_file() or not matches(rel, self.config.patterns):
                        continue
                    st = e.stat()
                    found.append(RemoteFile(rel, st.st_size, st.st_mtime))
        found.sort(key=lambda f: f.path)
        return found

    def download(
        self, files: Sequence[RemoteFile], target: Callable[[RemoteFile], Path]
    ) -> Iterator[DownloadResult]:
        for f in files:
            try:
                with open(self.config.path / f.path, "rb") as src, open(target(f), "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                    os.fsync(dst.fileno())
            except OSError as exc:
                yield f, FetchError(f"{self.config.path / f.path}: cannot copy ({exc.strerror})")
            else:
                yield f, None
