"""A step finished while the disk is full (SQLITE_FULL for real: the database may not
grow, PRAGMA max_page_count) is never lost while its process lives: it waits for room
as for a lock, and where the wait ends it is kept in a side file, in the temporary
folder if the data folder's disk is full too; every message says what really happened
and how this front end resumes."""

from __future__ import annotations

import sqlite3
import tempfile
import time

import pytest

from app import paths
from app.agent.engine import Engine
from app.agent.events import DatabaseWaiting, RunFailed, RunFinished, StepFinished
from app.agent.unsaved import FOLDER, fallback_folder, read_unsaved, side_file
from app.cli.ask import cli_resume
from app.llm.backend import CancelToken
from app.records import Mode
from tests.agent.test_engine import SETTINGS, counting_script, document, start
from tests.agent.test_engine_hostile import LockHolder
from tests.agent.test_unsaved import forget_this_process
from tests.fakes import FakeBackend


@pytest.fixture(autouse=True)
def new_process(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    forget_this_process()
    yield
    forget_this_process()


def fill_after_first_step(store, backend) -> None:  # noqa: ANN001
    def fill(n: int) -> None:
        if n == 2:  # step 1 is saved; now the disk is full
            pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
            store.conn.execute(f"PRAGMA max_page_count = {pages}")

    backend.on_call = fill


def big_script(prompt: str) -> str:
    out = counting_script(prompt)
    big = " ".join(["pondering"] * 6000)
    return out.replace("hmm</think>", f"{big}</think>") if "<section>" in prompt else out


def test_a_full_disk_freed_during_the_wait_saves_the_step_and_the_run_goes_on(store):
    backend = FakeBackend(big_script)
    engine = Engine(backend, store, SETTINGS, db_wait_s=60)
    fill_after_first_step(store, backend)
    plan, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT)
    seen = []
    for event in events:
        seen.append(event)
        if isinstance(event, DatabaseWaiting):
            assert "full" in event.reason and "Free some space" in event.reason
            store.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    assert isinstance(seen[-1], RunFinished), seen[-1]
    assert [e.what for e in seen if isinstance(e, DatabaseWaiting)] == ["step 2"]
    run = store.get_run(seen[-1].run_id)
    assert [s.index for s in run.steps] == list(range(len(plan.chunks)))
    assert len(backend.prompts) == len(plan.chunks) + 1  # no step computed twice
    assert [e.step.index for e in seen if isinstance(e, StepFinished)] == [
        s.index for s in run.steps
    ]


def block_the_data_folder() -> None:
    """The data folder cannot take a side file (as on its full disk): a file stands where
    its folder would be made, which stops even an administrator."""
    folder = paths.data_dir() / FOLDER
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("in the way", encoding="utf-8")


def test_a_step_the_data_folder_cannot_keep_goes_to_the_temporary_folder(store):
    block_the_data_folder()
    backend = FakeBackend(big_script)
    engine = Engine(
        backend, store, SETTINGS, db_wait_s=0.5, resume_how=cli_resume, outlives_run=False
    )
    fill_after_first_step(store, backend)
    plan, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT)
    failed = list(events)[-1]
    assert isinstance(failed, RunFailed) and failed.exit_code == 5, failed
    kept = fallback_folder() / side_file(store.path, failed.run_id).name
    assert kept.exists() and kept.stat().st_mode & 0o077 == 0
    assert kept.parent.stat().st_mode & 0o077 == 0
    assert f"kept in {kept}" in failed.message
    assert f"python -m app resume {failed.run_id}" in failed.message
    assert "press Resume" not in failed.message and "in memory" not in failed.message
    forget_this_process()  # the next process: it finds the step in the temporary folder
    assert [s.index for s in read_unsaved(store.path)[failed.run_id][0]] == [1]
    store.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    calls = len(backend.prompts)
    backend.on_call = None
    resumed = list(
        Engine(backend, store, SETTINGS).resume(failed.run_id, document(6), CancelToken())
    )
    assert isinstance(resumed[-1], RunFinished), resumed[-1]
    assert len(backend.prompts) - calls == len(plan.chunks) - 2 + 1  # step 2 not redone
    assert not kept.exists()  # written: the side file is gone


def test_a_step_that_can_be_kept_nowhere_is_not_said_to_be_kept(store, monkeypatch):
    block_the_data_folder()
    fallback_folder().parent.mkdir(parents=True, exist_ok=True)
    fallback_folder().write_text("in the way too", encoding="utf-8")
    for outlives, said in ((False, "computed again"), (True, "kept in memory")):
        forget_this_process()
        store.conn.execute("PRAGMA max_page_count = 1073741823")
        backend = FakeBackend(big_script)
        engine = Engine(
            backend,
            store,
            SETTINGS,
            db_wait_s=0.3,
            resume_how=cli_resume if not outlives else None,
            outlives_run=outlives,
        )
        fill_after_first_step(store, backend)
        _, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT)
        failed = list(events)[-1]
        assert isinstance(failed, RunFailed), failed
        assert said in failed.message, failed.message
        if not outlives:
            assert "kept in" not in failed.message and "press Resume" not in failed.message
        else:
            assert "press Resume" in failed.message


def test_a_wait_shorter_than_the_busy_timeout_ends_on_time(store):
    """--db-wait 1 stops after about 1 s, not after SQLite's 5 s busy timeout."""
    store.conn.execute("PRAGMA busy_timeout = 5000")
    backend = FakeBackend(counting_script)
    engine = Engine(backend, store, SETTINGS, db_wait_s=1.0)
    holder = LockHolder(store.path, hold_s=None)
    backend.on_call = lambda n: holder.start() if n == 1 else None
    _, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT)
    began = time.monotonic()
    events = list(events)
    took = time.monotonic() - began
    holder.stop()
    failed = events[-1]
    assert isinstance(failed, RunFailed) and "stayed locked" in failed.message
    assert "for 1 s" in failed.message and took < 4, (took, failed.message)
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000  # put back
    assert isinstance(store.conn, sqlite3.Connection)
