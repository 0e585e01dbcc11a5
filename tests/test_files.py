"""engage/files.py: the one staged write (whole or not at
all, dead writers' leftovers removed) and file hash."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engage.files import file_sha256, pid_alive, remove_abandoned, staged_write


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True)
    return int(done.stdout)


def test_a_staged_directory_replaces_the_old_one_whole(tmp_path: Path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with staged_write(target, directory=True) as staging:
        (staging.path / "new.txt").write_text("new")
        assert not (target / "new.txt").exists()  # readers see the old directory until the rename
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_failed_write_leaves_the_target_untouched_and_no_staging_behind(tmp_path: Path):
    target = tmp_path / "store.db"
    target.write_text("complete")
    with pytest.raises(RuntimeError,
                       match="killed mid-write"), staged_write(target, directory=False) as staging:
        staging.path.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.db"]


def test_a_discarded_staging_keeps_what_another_writer_finished(tmp_path: Path):
    target = tmp_path / "demo"
    target.mkdir()
    (target / "theirs").write_text("finished meanwhile")
    with staged_write(target, directory=True) as staging:
        (staging.path / "ours").write_text("ours")
        staging.discard = True
    assert [p.name for p in target.iterdir()] == ["theirs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_leftovers_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path):
    target = tmp_path / "demo"
    dead = tmp_path / f".demo.tmp-{_dead_pid()}-abc"
    dead.mkdir()
    (dead / "half").write_text("x")
    dead_file = tmp_path / f".demo.old-{_dead_pid()}-def"
    dead_file.write_text("x")
    alive = tmp_path / f".demo.tmp-{os.getpid()}-ghi"
    alive.mkdir()
    other = tmp_path / ".other.tmp-1-x"
    other.mkdir()
    assert sorted(p.name for p in remove_abandoned(target)) == sorted([dead.name, dead_file.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])


def test_pid_alive_tells_a_running_process_from_a_finished_one():
    assert pid_alive(os.getpid())
    assert not pid_alive(_dead_pid())
    assert not pid_alive(2**40)


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path: Path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8" * 1000)
    assert file_sha256(path) == hashlib.sha256(b"\xff\xd8" * 1000).hexdigest()


def test_what_is_staged_is_fsynced_before_the_rename_and_the_rename_after_it(tmp_path: Path, monkeypatch):
    import engage.files as files

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].split(".tmp-")[0])
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os,
                        "replace", lambda a, b: (events.append(f"rename {Path(b).name}"), real_replace(a, b)))
    with staged_write(tmp_path / "out" / "bundle", directory=True) as staged:
        (staged.path / "a.bin").write_bytes(b"a")
    assert events == ["fsync a.bin", "fsync .bundle", "rename bundle", "fsync out"]
    events.clear()
    files.write_atomically(tmp_path / "model.onnx", b"onnx")
    assert events == ["fsync .model.onnx", "rename model.onnx", f"fsync {tmp_path.name}"]
    assert (tmp_path / "model.onnx").read_bytes() == b"onnx" and (
        tmp_path / "out" / "bundle" / "a.bin").exists()
