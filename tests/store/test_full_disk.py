"""A full disk, for real where the machine allows it: SQLite's own writes fail (a file
size limit, RLIMIT_FSIZE, stands in for the disk's end: every write past it fails as on
a full disk) while the disk reports no free space. Review must still work and every
message must be true."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import DatabaseFull
from app.store import connection, migrations
from app.store.database import open_database
from tests.agent.test_engine import document

resource = pytest.importorskip("resource")  # POSIX only

# The child: the disk reports no room left, and no file may grow past 16 KiB.
CHILD = """
import collections, resource, shutil, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
usage = collections.namedtuple("usage", "total used free")
shutil.disk_usage = lambda path: usage(10 << 20, 10 << 20, 0)
from app.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def run_full(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )


@pytest.fixture
def env(app_home) -> dict[str, str]:
    return {**os.environ, "QWENLONG_READER_HOME": str(app_home)}


def test_the_history_can_be_reviewed_on_a_full_disk(env):
    store = open_database()
    document_id = store.add_document(document(6))
    store.create_session(document_id, "Where is the lamp?")
    path = store.path
    store.close()  # the last connection: its -shm goes, and a reader must make it anew
    for side in ("-wal", "-shm"):
        assert not path.with_name(path.name + side).exists()
    done = run_full(env, "sessions")
    assert done.returncode == 0, done.stderr
    assert "Where is the lamp?" in done.stdout
    assert "no transaction is active" not in done.stderr


def test_a_new_database_on_a_full_disk_says_so_and_speaks_of_no_step(env):
    done = run_full(env, "sessions")
    assert done.returncode == 5, done
    assert "is full" in done.stderr and "Free some space" in done.stderr
    assert "step" not in done.stderr and "Resume" not in done.stderr


class FailingRead:
    """A real connection whose read fails as SQLite fails on a full disk: an I/O error
    that also ends the transaction (SQLITE_IOERR_SHMSIZE does both)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql.startswith("PRAGMA application_id"):
            self.conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("disk I/O error")
        return self.conn.execute(sql, *args)


def test_the_ownership_check_reports_the_first_error_not_a_later_commit(tmp_path):
    store = open_database(tmp_path / "r.sqlite3")
    conn = sqlite3.connect(store.path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        migrations.check(FailingRead(conn))  # type: ignore[arg-type]
    assert not conn.in_transaction
    store.close()
    conn.close()


def test_an_io_error_on_a_disk_with_no_room_reads_as_a_full_disk(tmp_path, monkeypatch):
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = 4874  # type: ignore[attr-defined]  # SQLITE_IOERR_SHMSIZE
    assert not isinstance(connection.user_message(error, tmp_path / "r"), DatabaseFull)
    monkeypatch.setattr(connection, "disk_full", lambda path: True)
    told = connection.user_message(error, tmp_path / "r")
    assert isinstance(told, DatabaseFull) and "step" not in told.message
