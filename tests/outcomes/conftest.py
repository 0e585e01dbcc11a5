"""A PostgreSQL server for the outcome-store tests: $ENGAGE_TEST_POSTGRES_URL, or a throwaway cluster started
from the local PostgreSQL binaries (Debian's postgresql package); the tests skip with the reason otherwise."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_helpers import free_port


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("ENGAGE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip(
            "no PostgreSQL driver: pip install -e '.[postgres]' (psycopg), or set ENGAGE_TEST_POSTGRES_URL")
    bin_dir = _binaries()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server: install Debian's postgresql package or set ENGAGE_TEST_POSTGRES_URL")
    # Not under pytest's temporary directory: its parents are
    # private to this user, out of the postgres user's reach.
    root = Path(tempfile.mkdtemp(prefix="engage-pg-"))
    data, port = root / "data", free_port()
    # PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if prefix:
        shutil.chown(root, "postgres")
    try:
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "engage", "--auth=trust",
                        "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
                        "-t", "60",
                        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError, KeyError, LookupError) as e:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"a PostgreSQL server could not be started here ({type(e).__name__}: {str(e)[:200]})")
    try:
        yield f"postgresql+psycopg://engage@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
