"""The intake's SQLite writers take turns on locks that wake the next one at once (store._writer_turn).

Threads of one process share a thread lock; the server's processes an flock on a file beside the
database. These tests use their own SQLite file whatever the test database is.
"""
import errno
import fcntl
import os

import pytest
from django.db import connections
from django.db.utils import ConnectionHandler

from harbour.intake import store


@pytest.fixture
def file_db(tmp_path):
    handler = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "h.sqlite3")}})
    db = handler["default"]
    yield db
    db.close()
    store._forget_lock_files()


def _locked_elsewhere(path) -> bool:
    """Whether another open file (as another process would have) finds the lock taken."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_writer_holds_the_file_lock_beside_the_database_for_its_turn_only(file_db, tmp_path):
    lock_path = tmp_path / "h.sqlite3-writer.lock"
    with store._writer_turn(file_db):
        assert lock_path.exists()
        assert _locked_elsewhere(lock_path)
        assert store._SQLITE_WRITER.locked()
    assert not _locked_elsewhere(lock_path)
    assert not store._SQLITE_WRITER.locked()


def test_the_lock_is_released_when_the_write_fails(file_db, tmp_path):
    with pytest.raises(RuntimeError):
        with store._writer_turn(file_db):
            raise RuntimeError("the insert failed")
    assert not _locked_elsewhere(tmp_path / "h.sqlite3-writer.lock")
    assert not store._SQLITE_WRITER.locked()


def test_a_forked_server_process_takes_turns_with_its_parent(file_db, tmp_path):
    """gunicorn forks its workers: each must open its own lock file, or their locks would not exclude
    each other (an flock belongs to the open file, which an inherited descriptor shares)."""
    with store._writer_turn(file_db):  # the parent opens its descriptor before the fork
        pass
    held_r, held_w = os.pipe()
    release_r, release_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: take the turn, say so, hold it until told
        code = 1
        try:
            with store._writer_turn(file_db):
                os.write(held_w, b"1")
                os.read(release_r, 1)
            code = 0
        finally:
            os._exit(code)
    try:
        assert os.read(held_r, 1) == b"1"
        parent_fd = store._lock_file(file_db)
        with pytest.raises(BlockingIOError):  # the parent's own descriptor waits for the child
            fcntl.flock(parent_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.write(release_w, b"1")
        _, status = os.waitpid(pid, 0)
        for fd in (held_r, held_w, release_r, release_w):
            os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    with store._writer_turn(file_db):  # free again once the child is done
        pass


def test_no_file_lock_for_an_in_memory_database_or_another_engine():
    memory = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})["default"]
    assert store._lock_file(memory) is None
    with store._writer_turn(memory):
        assert store._SQLITE_WRITER.locked()
    db = connections["default"]
    if db.vendor != "sqlite":
        with store._writer_turn(db):
            assert not store._SQLITE_WRITER.locked()


def test_a_lock_file_that_cannot_be_opened_slows_the_intake_but_refuses_nothing(file_db, tmp_path, caplog,
                                                                               django_db_blocker):
    (tmp_path / "h.sqlite3-writer.lock").mkdir()  # a directory where the file should be
    with django_db_blocker.unblock():  # this test's own SQLite file, not the test database
        for _ in range(2):
            with store._writer_turn(file_db):
                with file_db.cursor() as cursor:  # the write itself goes ahead
                    cursor.execute("CREATE TABLE IF NOT EXISTS kept (n INTEGER)")
                    cursor.execute("INSERT INTO kept VALUES (1)")
        with file_db.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM kept")
            assert cursor.fetchone() == (2,)
    warnings = [r.getMessage() for r in caplog.records if "writer lock file could not be opened" in r.getMessage()]
    assert warnings == ["the intake's writer lock file could not be opened (IsADirectoryError): using SQLite's busy handler"]
    assert not store._SQLITE_WRITER.locked()


def test_a_file_system_without_locks_falls_back_to_sqlites_own(file_db, tmp_path, monkeypatch, caplog):
    # ENOLCK (some network file systems) cannot be had on this machine's disk: fcntl.flock is the boundary.
    calls = []

    def no_locks(fd, operation):
        calls.append(operation)
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(store.fcntl, "flock", no_locks)
    for _ in range(2):
        with store._writer_turn(file_db):
            pass
    assert calls == [fcntl.LOCK_EX]  # given up after the first failure, never "unlocked"
    assert sum("writer lock could not be taken (OSError)" in r.getMessage() for r in caplog.records) == 1
    assert store._lock_file(file_db) is None
