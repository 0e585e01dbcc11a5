"""Files the package writes and checks: one staged write-then-rename, one file hash.

Everything engage writes that another process may read while it is being written (the demo population, a
model bundle, a new MLflow tracking store, a feature-cache shard, an ONNX export) is built under a hidden
temporary sibling, flushed to disk (fsync) and renamed into place only when complete, the rename itself made
durable by an fsync of the directory, so neither a killed writer nor a power cut leaves something a later
run would trust. The sibling's name
holds the writer's process id (`.NAME.tmp-PID-XXXX`), which is how a later writer knows that a leftover
belongs to a process that no longer exists and may be deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (the cache key of an image, the checksum of a bundle's files)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:  # not a pid this system can have
        return False
    return True


def _leftover_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(target.name)}\.(tmp|old)-(\d+)-")


def remove_abandoned(target: str | os.PathLike) -> list[Path]:
    """Delete the temporary siblings of `target` left by
    writers whose process no longer exists; returns them."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pattern = _leftover_pattern(target)
    removed = []
    for sibling in target.parent.iterdir():
        match = pattern.match(sibling.name)
        if match and not pid_alive(int(match.group(2))):
            log.info("removing %s, left by an interrupted write of %s", sibling, target)
            if sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)
            removed.append(sibling)
    return removed


@dataclass
class Staging:
    """Where a staged write goes (`path`); set `discard` to drop it instead of renaming it into place."""

    path: Path
    discard: bool = False


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make a rename in `directory` durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Flush a file, or every file and folder under a directory, to disk."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and not child.is_symlink():
                with open(child, "rb+") as f:
                    os.fsync(f.fileno())
            elif child.is_dir():
                fsync_directory(child)
        fsync_directory(path)
    elif path.is_file():
        with open(path, "rb+") as f:
            os.fsync(f.fileno())


@contextmanager
def staged_write(target: str | os.PathLike, *, directory: bool, clean: bool = True) -> Iterator[Staging]:
    """Write `target` atomically: yield a temporary sibling
    to fill, then fsync it and rename it over `target`.

    `directory=True` stages a directory (an existing `target` directory is moved aside first and deleted
    after the rename, so readers see either the old or the new one whole); `directory=False` stages a file
    (`os.replace` is atomic for files). What was staged is flushed to disk before the rename and the rename
    after it (an fsync of the parent directory). Leftovers of dead writers are removed first (`clean=False`
    skips that look, for writers of many small files whose readers ignore leftovers, such as the feature
    cache). If the body raises, the staging path is deleted and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_abandoned(target)
    prefix = f".{target.name}.tmp-{os.getpid()}-"
    if directory:
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        path.chmod(0o755)  # mkdtemp makes it private; what is staged is ordinary data
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, dir=target.parent)
        os.close(fd)
        path = Path(name)
    staging = Staging(path)
    try:
        yield staging
        if staging.discard:
            return
        fsync_tree(path)
        if directory and target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(path, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(path, target)
        fsync_directory(target.parent)
    finally:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()


def write_atomically(target: str | os.PathLike, data: bytes) -> None:
    """`data` as the whole content of the file `target`, written through `staged_write`."""
    with staged_write(target, directory=False) as staged:
        staged.path.write_bytes(data)


#: What a spreadsheet reads as the start of a formula (OWASP,
#: "CSV Injection"): = + - @, tab and carriage return.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula,
    made inert by a leading `'` (OWASP); others as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_safe(frame: Any) -> Any:
    """A copy of a DataFrame with every text cell (and
    column name) that starts a formula neutralised, for CSV.

    Only text is touched: numbers (a negative count) stay numbers. Parquet keeps the values as they are, since
    no spreadsheet evaluates a Parquet cell; the CSV writer's
    own quoting handles commas, quotes and newlines."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    out = frame.copy()
    for column in out.columns:
        if is_object_dtype(out[column].dtype) or is_string_dtype(out[column].dtype):
            out[column] = out[column].map(spreadsheet_safe_cell)
    out.columns = [spreadsheet_safe_cell(str(c)) for c in out.columns]
    return out
