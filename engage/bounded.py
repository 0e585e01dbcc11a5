"""Reading a user's file with bounds: its size, its decompressed size, its JSON nesting, and where it lies.

Dumps, exports and tables are untrusted input (docs/security.md): a 480 KB `.json.xz` can hold 3 GB of
spaces, a `.json` can be a symlink to `/dev/zero` or to a file elsewhere on the machine, a JSON file can nest
100,000 lists deep. Every user file engage parses goes through here:

* `open_regular(path, root=...)` opens a regular file only (no device, pipe or socket: opened without
  blocking and checked with `fstat` on the open descriptor) and, with `root`, only when the file really lies
  under `root` (a symlink out of the folder is refused; checked on the descriptor, so a swapped link is
  caught too);
* `read_bytes_bounded` reads at most `max_bytes`, decompressing `.xz` / `.gz` in steps and stopping as soon as
  the output passes `max_decoded` (memory stays at the bound, not at what the bomb declares);
* `read_json_bounded` adds a nesting limit (`MAX_JSON_DEPTH`, checked on the bytes before parsing) and turns
  every parse failure, `RecursionError` and `MemoryError` included, into a `DataError` naming the file, so a
  loader that skips broken files skips this one too.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import re
import stat
import zlib
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from engage.errors import DataError

#: Largest file read from disk (compressed size for `.xz` / `.gz`). An Instaloader post file is 5-50 KB, a
#: Graph API page of 100 media ~100 KB.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Largest decompressed size of a `.xz` / `.gz` file, and largest JSON text parsed.
MAX_DECODED_BYTES = 64 * 1024 * 1024
#: Deepest JSON nesting accepted (Instaloader's post nodes nest about 10 deep, Graph API pages 6).
MAX_JSON_DEPTH = 100
#: Largest photo file read (a 40-megapixel PNG, the decoder's own pixel limit, fits).
MAX_IMAGE_FILE_BYTES = 128 * 1024 * 1024

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _real_path(fd: int, fallback: Path) -> Path:
    """Where the open descriptor really points (Linux /proc; elsewhere the resolved path)."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return fallback.resolve()


def open_regular(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                 max_bytes: int = MAX_FILE_BYTES) -> BinaryIO:
    """`path` opened for binary reading, if it is a regular
    file of at most `max_bytes` (under `root`, if given).

    Raises `DataError` naming the file: a symlink that leads out of `root`, a device, pipe or socket (never
    read: `/dev/zero` has no end), a file over `max_bytes`, or one that cannot be opened."""
    path = Path(path)
    resolved_root = Path(root).resolve() if root is not None else None
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; the descriptor is checked before any read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise DataError(f"cannot be read ({e.strerror or e}); check that it exists and may be read",
                        file=path) from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DataError("is not a regular file (a device, pipe, socket or folder), so it is not read; "
                            "remove it from the folder", file=path)
        if resolved_root is not None:
            real = _real_path(fd, path)
            if not _inside(real, resolved_root):
                raise DataError(
                    f"is a link to {real}, outside the folder being read ({resolved_root}); it is not "
                                "read: copy the file into the folder if it belongs to the data", file=path)
        if info.st_size > max_bytes:
            raise DataError(
                f"is {info.st_size:,} bytes, over the limit of {max_bytes:,}; this is not a file engage "
                            "reads (remove it, or split it)", file=path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_plain(handle: BinaryIO, limit: int, path: Path) -> bytes:
    data = handle.read(limit + 1)  # the size was checked at open; the file may have grown since
    if len(data) > limit:
        raise DataError(f"is over the limit of {limit:,} bytes; this is not a file engage reads", file=path)
    return data


def _decompressed(reader: IO[bytes], limit: int, path: Path) -> bytes:
    """At most `limit` bytes out of a decompressing reader, read a megabyte at a time (LZMAFile and GzipFile
    decompress in steps, so memory stays at the limit whatever the stream declares; several streams are read
    in turn)."""
    out = bytearray()
    while chunk := reader.read(1024 * 1024):
        out += chunk
        if len(out) > limit:
            raise DataError(f"decompresses to over {limit:,} bytes (a compression bomb, or not a file engage "
                            "reads); it is not read further", file=path)
    return bytes(out)


def read_bytes_bounded(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                       max_bytes: int = MAX_FILE_BYTES, max_decoded: int = MAX_DECODED_BYTES) -> bytes:
    """The bytes of `path` (decompressed when it ends in `.xz`
    or `.gz`), within the limits; see `open_regular`."""
    path = Path(path)
    with open_regular(path, root=root, max_bytes=max_bytes) as handle:
        try:
            if path.name.endswith(".xz"):
                with lzma.LZMAFile(handle) as reader:
                    return _decompressed(reader, max_decoded, path)
            if path.name.endswith(".gz"):
                with gzip.GzipFile(fileobj=handle) as reader:
                    return _decompressed(reader, max_decoded, path)  # type: ignore[arg-type]  # a readable binary file
            return _read_plain(handle, min(max_bytes, max_decoded), path)
        except (lzma.LZMAError, zlib.error, gzip.BadGzipFile, EOFError) as e:
            raise DataError(f"cannot be decoded ({type(e).__name__}: {e})", file=path) from e
        except OSError as e:
            raise DataError(f"cannot be read ({e.strerror or e})", file=path) from e


def json_depth(data: bytes) -> int:
    """The deepest nesting of `[` and `{` in JSON text (brackets inside strings do not count); linear time."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max())


def parse_json_bounded(data: bytes, *, file: object, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from bytes, refusing nesting deeper than `max_depth`;
    every failure is a `DataError` naming `file`."""
    depth = json_depth(data)
    if depth > max_depth:
        raise DataError(
            f"nests {depth} levels deep, over the limit of {max_depth}; this is not a file engage reads",
                        file=file)
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise DataError(
            f"cannot be decoded (UnicodeDecodeError: not UTF-8 text, {e.reason} at byte {e.start})",
                        file=file) from e
    except (ValueError, RecursionError, MemoryError) as e:  # JSONDecodeError, an int of 5,000 digits, ...
        raise DataError(f"cannot be decoded ({type(e).__name__}: {str(e)[:200]}): not valid JSON",
                        file=file) from e


def read_json_bounded(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                      max_bytes: int = MAX_FILE_BYTES, max_decoded: int = MAX_DECODED_BYTES,
                      max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON of `path` (`.json`, `.json.xz`, `.json.gz`)
    within every limit; failures are `DataError`s naming it."""
    data = read_bytes_bounded(path, root=root, max_bytes=max_bytes, max_decoded=max_decoded)
    return parse_json_bounded(data, file=Path(path), max_depth=max_depth)


def regular_file_inside(path: str | os.PathLike, root: str | os.PathLike) -> str | None:
    """None when `path` is a regular file under `root` (after following links), else why it is not used."""
    path = Path(path)
    try:
        real = path.resolve(strict=True)
        info = os.stat(real)
    except (OSError, RuntimeError) as e:
        return f"cannot be followed ({e})"
    if not _inside(real, Path(root).resolve()):
        return (f"is a link to {real}, outside the folder being read; "
                "not used (copy it into the folder if it belongs)")
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file (a device, pipe, socket or folder); not used"
    return None


#: Largest table read (CSV on disk; Parquet after decompression, from its footer): far above a real export.
MAX_TABLE_BYTES = 4 * 1024 * 1024 * 1024


def check_table_file(path: str | os.PathLike, *, max_bytes: int = MAX_TABLE_BYTES) -> None:
    """Refuse, before pandas reads it, a table that is not a regular file or that is (or decompresses to) more
    than `max_bytes`: a Parquet file's footer says how large its columns are once decompressed."""
    path = Path(path)
    with open_regular(path, max_bytes=max_bytes):
        pass
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            meta = pq.read_metadata(path)
        except Exception as e:  # pyarrow raises several types for a broken footer
            raise DataError(f"cannot be read as a parquet table ({type(e).__name__}: {e})", file=path) from e
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if size > max_bytes:
            raise DataError(
                f"decompresses to {size:,} bytes, over the limit of {max_bytes:,}; split the table",
                            file=path)
