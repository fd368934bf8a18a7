"""Get a seekable, uncompressed local file from whatever we were given (path, stream, gzip, zip).

Streams are spooled to a temporary file under the output folder (the worker hands us S3 bodies, which
cannot seek). gzip and zip inputs are expanded with limits on the expansion ratio, the total size and
the number of members, so a zip bomb becomes a finding, not a full disk.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from airlock.ingest.reader import FileProblem
from schemas.files import rules as R

MAX_RATIO = 200
MAX_EXPANDED = 16 << 30
MAX_MEMBERS = 1
_COPY = 1 << 20


class Spool:
    """Temporary files made while preparing the input; removed by ``close``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths: list[Path] = []

    def new(self, suffix: str) -> Path:
        fd, name = tempfile.mkstemp(prefix=".airlock-", suffix=suffix, dir=self.folder)
        import os

        os.close(fd)
        path = Path(name)
        self.paths.append(path)
        return path

    def close(self) -> None:
        for p in self.paths:
            p.unlink(missing_ok=True)
        self.paths.clear()


def materialize(source: Path | BinaryIO, spool: Spool) -> Path:
    """A plain local file with the CSV bytes (raises FileProblem for unsafe or broken archives)."""
    if isinstance(source, (str, Path)):
        path = Path(source)
    else:
        path = spool.new(".in")
        with path.open("wb") as out:
            shutil.copyfileobj(source, out, _COPY)
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        return _gunzip(path, spool)
    if magic == b"PK\x03\x04":
        return _unzip(path, spool)
    return path


def _limit(compressed: int) -> int:
    return min(MAX_EXPANDED, max(compressed * MAX_RATIO, 1 << 20))


def _copy_limited(src: BinaryIO, dest: Path, limit: int) -> None:
    total = 0
    with dest.open("wb") as out:
        while True:
            block = src.read(_COPY)
            if not block:
                return
            total += len(block)
            if total > limit:
                raise FileProblem(
                    R.ARCHIVE, detail=f"it expands to more than {limit:,} bytes (ratio limit {MAX_RATIO}x)"
                )
            out.write(block)


def _gunzip(path: Path, spool: Spool) -> Path:
    dest = spool.new(".csv")
    try:
        with gzip.open(path, "rb") as src:
            _copy_limited(src, dest, _limit(path.stat().st_size))  # type: ignore[arg-type]
    except (OSError, EOFError, zlib.error) as exc:
        raise FileProblem(R.ARCHIVE, detail=f"the gzip data is damaged ({exc})") from None
    return dest


def _unzip(path: Path, spool: Spool) -> Path:
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
            if len(members) != MAX_MEMBERS:
                raise FileProblem(
                    R.ARCHIVE, detail=f"it holds {len(members)} files; send exactly {MAX_MEMBERS} per archive"
                )
            member = members[0]
            if member.flag_bits & 0x1:
                raise FileProblem(R.ARCHIVE, detail="it is encrypted")
            limit = _limit(path.stat().st_size)
            if member.file_size > limit:
                raise FileProblem(
                    R.ARCHIVE, detail=f"it expands to {member.file_size:,} bytes (ratio limit {MAX_RATIO}x)"
                )
            dest = spool.new(".csv")
            with zf.open(member) as src:
                _copy_limited(src, dest, limit)  # type: ignore[arg-type]
            return dest
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        raise FileProblem(R.ARCHIVE, detail=f"the zip data is damaged ({exc})") from None
