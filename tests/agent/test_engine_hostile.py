"""The loop under hostile conditions, on a real SQLite file: another program holding the
database's lock while a step is computed, a full database, a run being read elsewhere,
and a resume that must continue with the run's own settings."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from app.agent.engine import Engine, resume_settings
from app.agent.events import (
    DatabaseWaiting,
    RunCancelled,
    RunFailed,
    RunFinished,
    StepFinished,
)
from app.errors import BackendError
from app.llm.backend import CancelToken, Sampling
from app.records import Mode
from app.settings import Settings
from app.store.database import open_database
from tests.agent.test_engine import SETTINGS, counting_script, document, start
from tests.fakes import FakeBackend


class RecordingBackend(FakeBackend):
    """The scripted model, remembering the sampling of every call."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.samplings: list[Sampling] = []

    def stream(self, messages, sampling, cancel):  # noqa: ANN001, ANN201
        self.samplings.append(sampling)
        return super().stream(messages, sampling, cancel)


class LockHolder:
    """Another program: its own sqlite3 connection holding the write lock in a thread."""

    def __init__(self, path, hold_s: float | None) -> None:  # noqa: ANN001
        self.path = path
        self.hold_s = hold_s
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        self.locked.set()
        self.release.wait(self.hold_s)
        conn.execute("ROLLBACK")
        conn.close()

    def start(self) -> None:
        self.thread.start()
        assert self.locked.wait(10)

    def stop(self) -> None:
        self.release.set()
        self.thread.join(10)


def test_a_lock_held_past_the_busy_timeout_is_waited_out_and_the_step_is_saved(store):
    """The other program lets go only once the step has given up a try (SQLite's busy
    timeout, 0.2 s here) and said it waits: the next try saves it."""
    store.conn.execute("PRAGMA busy_timeout = 200")
    backend = FakeBackend(counting_script)
    engine = Engine(backend, store, SETTINGS)
    holder = LockHolder(store.path, hold_s=None)  # until told
    backend.on_call = lambda n: holder.start() if n == 1 else None
    plan, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT)
    seen = []
    for event in events:
        seen.append(event)
        if isinstance(event, DatabaseWaiting):
            assert holder.thread.is_alive()  # still held: the try before really failed
            holder.stop()
    holder.stop()
    events = seen
    waits = [e for e in events if isinstance(e, DatabaseWaiting)]
    assert len(waits) == 1 and waits[0].what == "step 1" and "locked" in waits[0].reason
    first_saved = next(i for i, e in enumerate(events) if isinstance(e, StepFinished))
    assert events.index(waits[0]) < first_saved  # the wait is announced before the step
    assert isinstance(events[-1], RunFinished), events[-1]
    run = store.get_run(events[-1].run_id)
    assert run.status == "finished"
    assert [s.index for s in run.steps] == list(range(len(plan.chunks)))
    assert len(backend.prompts) == len(plan.chunks) + 1  # no step was computed twice
    assert not engine.checkpoints.unsaved_steps


def test_a_lock_that_outlasts_the_wait_stops_the_run_keeping_the_step_in_memory(store):
    """The run ends cleanly (exit code 5), reads 'interrupted', not 'running', and a
    resume in the same process writes the kept step instead of asking the model again."""
    store.conn.execute("PRAGMA busy_timeout = 200")  # each try gives up quickly here
    backend = FakeBackend(counting_script)
    engine = Engine(backend, store, SETTINGS, db_wait_s=1.5)
    holder = LockHolder(store.path, hold_s=None)  # until told
    backend.on_call = lambda n: holder.start() if n == 1 else None
    plan, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT)
    events = list(events)
    holder.stop()
    failed = events[-1]
    assert isinstance(failed, RunFailed), failed
    assert failed.exit_code == 5 and failed.steps_done == 0
    assert "stayed locked" in failed.message and "kept in " in failed.message
    assert [e for e in events if isinstance(e, DatabaseWaiting)]
    kept = list(engine.checkpoints.unsaved_steps[failed.run_id])
    assert [s.index for s in kept] == [0]
    assert store.get_run(failed.run_id).status == "interrupted"
    calls = len(backend.prompts)
    backend.on_call = None
    again = Engine(backend, open_database(store.path), SETTINGS)  # e.g. the window's next
    resumed = list(again.resume(failed.run_id, document(6), CancelToken()))
    assert isinstance(resumed[-1], RunFinished), resumed[-1]
    run = store.get_run(failed.run_id)
    assert run.steps[0] == kept[0]  # the very step computed before the lock
    assert [s.index for s in run.steps] == list(range(len(plan.chunks)))
    assert len(backend.prompts) - calls == len(plan.chunks) - 1 + 1  # step 1 not redone


def test_cancel_while_waiting_for_the_database_cancels_at_once_and_keeps_the_step(store):
    store.conn.execute("PRAGMA busy_timeout = 100")
    cancel = CancelToken()
    backend = FakeBackend(counting_script)
    engine = Engine(backend, store, SETTINGS, db_wait_s=120)
    holder = LockHolder(store.path, hold_s=None)
    backend.on_call = lambda n: holder.start() if n == 1 else None
    _, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT, cancel=cancel)
    seen = []
    began = time.monotonic()
    for event in events:
        seen.append(event)
        if isinstance(event, DatabaseWaiting):
            cancel.cancel()
    holder.stop()
    assert time.monotonic() - began < 30
    assert isinstance(seen[-1], RunCancelled) and seen[-1].steps_done == 0
    assert [s.index for s in engine.checkpoints.unsaved_steps[seen[-1].run_id]] == [0]


def test_a_full_database_stops_the_run_cleanly_and_keeps_the_step(store):
    """SQLITE_FULL for real: the database may not grow (max_page_count), as on a full disk.
    The step waits for room like a locked database does (DatabaseWaiting), then the run
    stops with it kept in the side file."""
    big = " ".join(["pondering"] * 6000)

    def script(prompt: str) -> str:
        out = counting_script(prompt)
        return out.replace("hmm</think>", f"{big}</think>") if "<section>" in prompt else out

    backend = FakeBackend(script)
    engine = Engine(backend, store, SETTINGS, db_wait_s=1.5)

    def fill(n: int) -> None:
        if n == 2:  # step 1 is saved; now the disk is full
            pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
            store.conn.execute(f"PRAGMA max_page_count = {pages}")

    backend.on_call = fill
    plan, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT)
    events = list(events)
    failed = events[-1]
    assert isinstance(failed, RunFailed), failed
    assert failed.exit_code == 5 and failed.steps_done == 1
    assert "stayed full" in failed.message and "kept in " in failed.message
    assert "Free some space" in failed.message and "press Resume" in failed.message
    waits = [e for e in events if isinstance(e, DatabaseWaiting)]
    assert waits and waits[0].what == "step 2" and "Free some space" in waits[0].reason
    assert store.get_run(failed.run_id).status == "interrupted"
    assert [s.index for s in engine.checkpoints.unsaved_steps[failed.run_id]] == [1]
    store.conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    calls = len(backend.prompts)
    backend.on_call = None
    resumed = list(engine.resume(failed.run_id, document(6), CancelToken()))
    assert isinstance(resumed[-1], RunFinished), resumed[-1]
    assert len(backend.prompts) - calls == len(plan.chunks) - 2 + 1
    assert len(store.get_run(failed.run_id).steps) == len(plan.chunks)


def test_a_run_being_read_by_another_instance_is_not_resumed_twice(store):
    engine = Engine(FakeBackend(counting_script), store, SETTINGS)
    cancel = CancelToken()
    engine.backend.on_call = lambda n: cancel.cancel() if n == 2 else None
    _, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT, cancel=cancel)
    run_id = list(events)[-1].run_id
    other = open_database(store.path)  # another window
    lock = other.hold_run(run_id)
    assert lock is not None
    refused = list(engine.resume(run_id, document(6), CancelToken()))
    lock.release()
    assert len(refused) == 1 and isinstance(refused[0], RunFailed)
    assert "another window or process" in refused[0].message and refused[0].exit_code == 5
    assert store.get_run(run_id).status == "cancelled"  # untouched


def test_a_server_failure_mid_run_carries_the_server_exit_code(store):
    def script(prompt: str) -> str:
        if len(backend.prompts) == 2:
            raise BackendError("The server closed the connection.", hint="Restart it.")
        return counting_script(prompt)

    backend = FakeBackend(script)
    engine = Engine(backend, store, SETTINGS)
    _, events = start(engine, store, document(6), mode=Mode.MEMORY_AGENT)
    failed = list(events)[-1]
    assert isinstance(failed, RunFailed) and failed.exit_code == 6 and failed.steps_done == 1
    assert store.get_run(failed.run_id).status == "failed"


# -- resume with the run's own settings ----------------------------------------------------
ORIGINAL = Settings(
    n_ctx=4096,
    chunk_tokens=150,
    memory_tokens=120,
    max_new_tokens=300,
    temperature=0.3,
    top_p=0.8,
    top_k=7,
    seed=42,
)
TODAY = Settings(n_ctx=2048, temperature=1.1, top_k=40, seed=0, max_new_tokens=60)


def cancelled_run(store, backend):  # noqa: ANN001, ANN201
    cancel = CancelToken()
    backend.on_call = lambda n: cancel.cancel() if n == 3 else None
    engine = Engine(backend, store, ORIGINAL)
    plan, events = start(engine, store, document(), mode=Mode.MEMORY_AGENT, cancel=cancel)
    events = list(events)
    assert isinstance(events[-1], RunCancelled) and events[-1].steps_done == 2
    backend.on_call = None
    return plan, events[-1].run_id


def test_a_bare_resume_continues_with_the_runs_own_budgets_and_sampling(store):
    backend = RecordingBackend(counting_script, n_ctx=4096)
    plan, run_id = cancelled_run(store, backend)
    step_sampling = backend.samplings[0]
    backend.samplings.clear()
    # today's settings differ in everything; the run must not notice
    resumed = list(Engine(backend, store, TODAY).resume(run_id, document(), CancelToken()))
    assert isinstance(resumed[-1], RunFinished), resumed[-1]
    *steps, answer = backend.samplings
    assert steps and all(s == step_sampling for s in steps)
    assert (answer.temperature, answer.top_k, answer.seed) == (0.3, 7, 42)
    assert answer.max_tokens == plan.budgets.answer_room
    run = store.get_run(run_id)
    assert not any("resumed with" in n for s in run.steps for n in s.stats.notes)


def test_an_explicit_change_on_resume_is_used_and_recorded_on_the_step(store):
    backend = RecordingBackend(counting_script, n_ctx=4096)
    _, run_id = cancelled_run(store, backend)
    backend.samplings.clear()
    engine = Engine(backend, store, TODAY.with_changes(temperature=0.9))
    resumed = list(engine.resume(run_id, document(), CancelToken(), {"temperature": 0.9}))
    assert isinstance(resumed[-1], RunFinished)
    assert {s.temperature for s in backend.samplings} == {0.9}
    assert {s.top_k for s in backend.samplings} == {7}  # the rest is the run's own
    steps = store.get_run(run_id).steps
    assert "resumed with changed settings: temperature 0.3 -> 0.9" in steps[2].stats.notes
    assert not any("resumed" in n for s in steps[3:] for n in s.stats.notes)
    assert not any("resumed" in n for n in store.get_run(run_id).answer.stats.notes)


def test_a_run_with_a_larger_context_resumes_and_a_too_small_model_is_refused_clearly(store):
    backend = RecordingBackend(counting_script, n_ctx=4096)
    _, run_id = cancelled_run(store, backend)
    # the settings a resume opens the model with: the run's context, not today's 2048
    wanted = resume_settings(store.get_run(run_id).settings, TODAY)
    assert wanted.n_ctx == 4096 and wanted.temperature == 0.3
    small = RecordingBackend(counting_script, n_ctx=2048)
    refused = list(Engine(small, store, TODAY).resume(run_id, document(), CancelToken()))
    assert isinstance(refused[-1], RunFailed) and "4,096-token context" in refused[-1].message
    assert not small.prompts and store.get_run(run_id).status == "cancelled"
    resumed = list(Engine(backend, store, TODAY).resume(run_id, document(), CancelToken()))
    assert isinstance(resumed[-1], RunFinished)


def test_a_resume_that_shrinks_the_context_below_the_runs_chunks_is_refused(store):
    backend = RecordingBackend(counting_script, n_ctx=4096)
    _, run_id = cancelled_run(store, backend)
    engine = Engine(backend, store, TODAY.with_changes(n_ctx=512, memory_tokens=100))
    refused = list(engine.resume(run_id, document(), CancelToken(), {"n_ctx": 512}))
    assert isinstance(refused[-1], RunFailed) and "do not fit" in refused[-1].message


@pytest.mark.parametrize("changes", [{}, {"max_new_tokens": 200}])
def test_resume_settings_keep_the_runs_fields_and_this_machines_placement(changes):
    stored = {**ORIGINAL.to_dict(), "n_gpu_layers": 0, "budgets": {}}
    current = TODAY.with_changes(n_gpu_layers=-1, **changes)
    merged = resume_settings(stored, current, changes)
    assert merged.n_gpu_layers == -1  # how this machine runs the model
    assert merged.temperature == 0.3 and merged.n_ctx == 4096
    assert merged.max_new_tokens == changes.get("max_new_tokens", 300)
