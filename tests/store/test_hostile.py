"""The store under hostile conditions, on real files and real processes: instances racing
on a new database, a second instance beside a live run, another program's database, a
read-only copy."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.store import migrations
from app.store.database import DatabaseReadOnly, ForeignDatabase, Store, open_database
from tests.store.test_store import new_run, step

ROOT = Path(__file__).resolve().parents[2]


def _open_at_once(path: str, barrier, results) -> None:  # noqa: ANN001
    barrier.wait()
    try:
        store = open_database(Path(path))
        results.put(("ok", migrations.schema_version(store.conn)))
        store.close()
    except BaseException as error:  # noqa: BLE001
        results.put(("error", repr(error)))


def test_instances_started_at_once_on_a_new_database_all_succeed(tmp_path):
    """Before the fix about 1 in 4 of these races failed ("table documents already
    exists"): the version was read before the write lock was taken."""
    context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    repetitions, instances = 24, 3
    outcomes = []
    for rep in range(repetitions):
        path = tmp_path / f"race-{rep}.sqlite3"
        barrier = context.Barrier(instances)
        results = context.Queue()
        procs = [
            context.Process(target=_open_at_once, args=(str(path), barrier, results))
            for _ in range(instances)
        ]
        for proc in procs:
            proc.start()
        outcomes += [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == migrations.APPLICATION_ID
        conn.close()
    failures = [o for o in outcomes if o[0] != "ok"]
    assert not failures, failures[:3]
    assert {o[1] for o in outcomes} == {migrations.LATEST}


HOLDER = """
import sys
from pathlib import Path
from app.store.database import open_database
from tests.store.test_store import new_run
store = open_database(Path(sys.argv[1]))
_, _, run = new_run(store)
lock = store.hold_run(run)
assert lock is not None
print(run, flush=True)
sys.stdin.readline()  # hold the run (as a long model call would) until told or killed
"""


def test_a_run_held_by_a_live_process_is_not_interrupted_and_one_whose_process_died_is(
    tmp_path,
):
    path = tmp_path / "shared.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        run_id = int(holder.stdout.readline())
        second = open_database(path)  # a second window or CLI starting meanwhile
        # no step for a long time: elapsed time must not matter, only the live holder
        second.conn.execute("UPDATE runs SET created_at = datetime('now', '-2 hours')")
        assert second.mark_stale_running_as_interrupted() == 0
        assert second.get_run(run_id).status == "running"
        assert second.run_is_live(run_id)
        assert second.hold_run(run_id) is None  # nobody else may read it meanwhile
    finally:
        holder.kill()
        holder.wait()
    assert not second.run_is_live(run_id)
    assert second.get_run(run_id).status == "interrupted"  # reads true at once
    assert second.mark_stale_running_as_interrupted() == 1
    row = second.conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
    assert row[0] == "interrupted"
    lock = second.hold_run(run_id)  # and it can be resumed here now
    assert lock is not None
    lock.release()


def test_a_second_store_in_the_same_process_sees_the_run_as_live(tmp_path):
    """Two windows in one process: the lock belongs to an open file, not the process."""
    first = open_database(tmp_path / "db.sqlite3")
    _, _, run_id = new_run(first)
    lock = first.hold_run(run_id)
    assert lock is not None
    second = open_database(tmp_path / "db.sqlite3")
    assert second.run_is_live(run_id) and second.hold_run(run_id) is None
    assert second.mark_stale_running_as_interrupted() == 0
    lock.release()
    assert not second.run_is_live(run_id)
    assert second.mark_stale_running_as_interrupted() == 1


def foreign_database(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT, phone TEXT)")
    conn.execute("INSERT INTO contacts (name, phone) VALUES ('Ada', '555-0100')")
    conn.commit()
    conn.close()
    return path.read_bytes()


def sidecars(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


@pytest.mark.parametrize("how", ["open_database", "env"])
def test_another_programs_database_is_refused_and_left_byte_for_byte(tmp_path, how, monkeypatch):
    (tmp_path / "theirs").mkdir()
    path = tmp_path / "theirs" / "addressbook.db"
    before = foreign_database(path)
    with pytest.raises(ForeignDatabase) as refused:
        if how == "env":
            monkeypatch.setenv("QWENLONG_READER_DB", str(path))
            open_database()
        else:
            open_database(path)
    assert "another program's SQLite database" in str(refused.value)
    assert "QWENLONG_READER_DB" in refused.value.hint
    assert refused.value.exit_code == 5
    assert path.read_bytes() == before  # not one table added, still in its journal mode
    assert sidecars(path) == []  # no -wal, -shm or lock folder beside it


def test_a_database_with_our_table_names_but_other_columns_is_foreign(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE documents (id INTEGER PRIMARY KEY, body TEXT);"
        "CREATE TABLE runs (id INTEGER PRIMARY KEY); CREATE TABLE steps (x);"
        "PRAGMA user_version = 1;"
    )
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ForeignDatabase):
        open_database(path)
    assert path.read_bytes() == before


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"just some notes, not a database\n" * 200)
    before = path.read_bytes()
    with pytest.raises(Exception, match="not a QwenLong Reader database"):
        open_database(path)
    assert path.read_bytes() == before


def test_a_database_of_an_earlier_version_is_recognised_and_upgraded(tmp_path):
    """Made before the application_id existed: recognised by its tables, then marked."""
    path = tmp_path / "earlier.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, target=1)
    conn.execute("PRAGMA application_id = 0")  # as the first release left it
    conn.execute(
        "INSERT INTO documents (path, sha256, kind, title, page_count, char_count, "
        "text) VALUES ('/d', 'x', 'text', 'Old', 1, 13, 'legacy zebras')"
    )
    conn.close()
    assert migrations.ownership(sqlite3.connect(path)) == migrations.EARLIER_OURS
    store = open_database(path)
    assert migrations.application_id(store.conn) == migrations.APPLICATION_ID
    assert migrations.schema_version(store.conn) == migrations.LATEST
    assert [d["title"] for d in store.list_documents()] == ["Old"]  # the old rows, upgraded
    store.close()
    # and one that is up to date but unmarked (an earlier version, latest schema)
    latest = tmp_path / "latest.sqlite3"
    conn = sqlite3.connect(latest, isolation_level=None)
    migrations.migrate(conn)
    conn.execute("PRAGMA application_id = 0")
    conn.close()
    store = open_database(latest)
    assert migrations.application_id(store.conn) == migrations.APPLICATION_ID


# -- read-only databases ----------------------------------------------------------------
@pytest.fixture
def filled(tmp_path) -> tuple[Path, int]:
    """A real database with a run and two steps, closed (as it would be on a DVD)."""
    path = tmp_path / "made" / "reader.sqlite3"
    store = open_database(path)
    _, _, run_id = new_run(store)
    store.save_step(run_id, step(0))
    store.save_step(run_id, step(1))
    store.close()
    return path, run_id


def read_only_copy(source: Path, dest: Path, folder_too: bool) -> Path:
    dest.mkdir()
    copy = dest / source.name
    shutil.copyfile(source, copy)
    os.chmod(copy, 0o444)
    if folder_too:
        os.chmod(dest, 0o555)
    return copy


@pytest.fixture
def restore_modes(tmp_path):
    yield
    for folder in tmp_path.rglob("*"):
        if folder.is_dir():
            os.chmod(folder, 0o755)


def test_a_read_only_file_and_folder_can_be_reviewed_and_nothing_is_made_beside_it(
    tmp_path, filled, restore_modes
):
    """A DVD copy: -wal and -shm cannot be made there, so it opens immutable. (chmod is
    honoured even when the tests run as root: the permission bits are what the app
    goes by, and a root process could write anyway.)"""
    source, run_id = filled
    copy = read_only_copy(source, tmp_path / "dvd", folder_too=True)
    before = copy.read_bytes()
    store = open_database(copy)
    assert not store.writable and "folder" in (store.read_only_reason or "")
    run = store.get_run(run_id)
    assert [s.index for s in run.steps] == [0, 1] and run.status == "interrupted"
    assert store.list_sessions(search=run.question[:6])  # history search reads it
    assert store.mark_stale_running_as_interrupted() == 0  # housekeeping skipped
    with pytest.raises(DatabaseReadOnly) as refused:
        store.save_step(run_id, step(2))
    assert "read-only" in str(refused.value) and str(copy.parent) in str(refused.value)
    assert "QWENLONG_READER_DB" in refused.value.hint
    with pytest.raises(DatabaseReadOnly):
        store.hold_run(run_id)
    store.close()
    assert copy.read_bytes() == before and sidecars(copy) == []


def test_a_read_only_file_in_a_writable_folder_is_opened_read_only(tmp_path, filled, restore_modes):
    source, run_id = filled
    copy = read_only_copy(source, tmp_path / "share", folder_too=False)
    before = copy.read_bytes()
    store = open_database(copy)
    assert "file" in (store.read_only_reason or "")
    assert len(store.get_run(run_id).steps) == 2
    with pytest.raises(DatabaseReadOnly, match="read-only"):
        store.create_session(1, "x")
    store.close()
    assert copy.read_bytes() == before


def test_unmerged_wal_pages_in_a_read_only_folder_are_still_read(tmp_path, restore_modes):
    """A copy taken while the app ran: the newest steps are only in the -wal file."""
    live = tmp_path / "live" / "reader.sqlite3"
    store = open_database(live)
    store.conn.execute("PRAGMA wal_autocheckpoint = 0")
    _, _, run_id = new_run(store)
    store.save_step(run_id, step(0))
    dest = tmp_path / "copy"
    dest.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{live}{suffix}", dest / f"reader.sqlite3{suffix}")
        os.chmod(dest / f"reader.sqlite3{suffix}", 0o444)
    store.close()
    os.chmod(dest, 0o555)
    copy = open_database(dest / "reader.sqlite3")
    assert [s.index for s in copy.get_run(run_id).steps] == [0]
    copy.close()
    assert sidecars(dest / "reader.sqlite3") == ["reader.sqlite3-wal"]


def test_no_database_in_a_read_only_folder_says_why(tmp_path, restore_modes):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    with pytest.raises(DatabaseReadOnly, match="none can be made there"):
        Store(folder / "reader.sqlite3")
