"""Computed steps outlive the process (issue #13): when a checkpoint gives up, the steps
still waiting go to an owner-only side file in the app's data folder, and the next
process that opens the same database writes them first on resume."""

from __future__ import annotations

import json

import pytest

from app.agent import checkpoint
from app.agent.engine import Engine
from app.agent.events import RunFailed, RunFinished
from app.agent.unsaved import read_unsaved, side_file, write_unsaved
from app.llm.backend import CancelToken
from app.records import CallStats, Chunk, Mode, StepRecord
from app.store.database import open_database
from tests.agent.test_engine import SETTINGS, counting_script, document, start
from tests.agent.test_engine_hostile import LockHolder
from tests.fakes import FakeBackend


def forget_this_process() -> None:
    """What a new process starts with: nothing in memory."""
    for table in (checkpoint._UNSAVED_STEPS, checkpoint._UNSAVED_ANSWERS, checkpoint._SPILLED):
        table.clear()
    checkpoint._LOADED.clear()


STEP = StepRecord(
    index=3,
    chunk=Chunk(3, 100, 200, 40, 2, 3),
    memory="- the lamp is lit at dusk",
    plan="look for the keeper",
    stats=CallStats("raw", "t", 10, 5, 0, 1.5, 2.5, 4.0, "stop", ("a note",)),
    malformed=True,
)


def test_a_side_file_round_trips_every_field_and_is_owner_only(tmp_path):
    db = tmp_path / "r.sqlite3"
    kept = write_unsaved(db, 7, [STEP], None)
    assert kept == side_file(db, 7) and kept.stat().st_mode & 0o077 == 0
    assert read_unsaved(db) == {7: ([STEP], None)}
    assert read_unsaved(tmp_path / "other.sqlite3") == {}  # another database's runs: none
    assert write_unsaved(db, 7, [], None) is None and not kept.exists()


def test_a_damaged_side_file_is_set_aside_not_trusted(tmp_path):
    db = tmp_path / "r.sqlite3"
    kept = write_unsaved(db, 7, [STEP], None)
    data = json.loads(kept.read_text(encoding="utf-8"))
    del data["steps"][0]["memory"]
    kept.write_text(json.dumps(data), encoding="utf-8")
    assert read_unsaved(db) == {}
    assert kept.with_suffix(".bad").exists() and not kept.exists()


@pytest.fixture
def new_process():
    forget_this_process()
    yield forget_this_process
    forget_this_process()


def test_a_step_kept_by_a_process_that_ended_is_written_by_the_next_one(store, new_process):
    store.conn.execute("PRAGMA busy_timeout = 200")
    backend = FakeBackend(counting_script)
    engine = Engine(backend, store, SETTINGS, db_wait_s=1.0)
    holder = LockHolder(store.path, hold_s=None)
    backend.on_call = lambda n: holder.start() if n == 1 else None
    plan, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT)
    events = list(events)
    holder.stop()
    failed = events[-1]
    assert isinstance(failed, RunFailed) and failed.exit_code == 5
    kept_file = side_file(store.path, failed.run_id)
    assert f"kept in {kept_file}" in failed.message
    (step,), answer = read_unsaved(store.path)[failed.run_id]
    assert step.index == 0 and answer is None

    new_process()  # the CLI exits; a later `resume` starts from the file alone
    backend = FakeBackend(counting_script)
    again = Engine(backend, open_database(store.path), SETTINGS)
    resumed = list(again.resume(failed.run_id, document(6), CancelToken()))
    assert isinstance(resumed[-1], RunFinished), resumed[-1]
    run = store.get_run(failed.run_id)
    assert run.steps[0] == step  # the very step computed by the first process
    assert len(backend.prompts) == len(plan.chunks) - 1 + 1  # step 1 was not asked again
    assert not kept_file.exists()  # written: the file is gone


def test_an_unsaved_run_never_writes_a_side_file(new_process, app_home):
    """A protected document's run without consent lives in a database in memory: its
    steps must not land in a file either."""
    memory_store = open_database(":memory:")
    saved = checkpoint.Checkpoints(memory_store)
    saved.unsaved_steps[1] = [STEP]
    assert saved.spill(1) is None
    assert not (app_home / "data" / "unsaved").exists()
