"""The SQLite store on real database files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from app.documents.model import Document
from app.errors import StoreError
from app.llm.backend import ModelIdentity
from app.records import AnswerRecord, CallStats, Chunk, Evidence, Mode, Question, StepRecord
from app.store import migrations
from app.store.database import Store, open_database

ROOT = Path(__file__).resolve().parents[2]
MODEL = ModelIdentity(backend="local", name="m", path="/m.gguf", sha256="f" * 64, n_ctx=4096)
CHUNKS = [Chunk(i, i * 100, (i + 1) * 100, 25, i + 1, i + 1) for i in range(4)]


def doc(sha: str = "a" * 64, text: str = "The harbour holds twelve ships.") -> Document:
    return Document(
        path=f"/docs/{sha[:4]}.pdf",
        sha256=sha,
        kind="pdf",
        title="Harbour",
        text=text,
        page_starts=[0],
    )


def step(i: int, memory: str = "") -> StepRecord:
    return StepRecord(
        index=i,
        chunk=CHUNKS[i],
        memory=memory or f"memory {i} walrus",
        plan=f"plan {i}",
        stats=CallStats(
            raw_output="raw",
            thinking="t",
            prompt_tokens=10,
            completion_tokens=5,
            cached_tokens=i,
            prompt_ms=1.5,
            generation_ms=2.5,
            wall_ms=4.0,
            notes=("a note",) if i else (),
        ),
        malformed=i == 1,
    )


def new_run(store: Store, sha: str = "a" * 64) -> tuple[int, int, int]:
    doc_id = store.add_document(doc(sha))
    session = store.create_session(doc_id, "How many ships?")
    run = store.create_run(
        session,
        doc_id,
        Question("How many ships? One word.", "How many ships?", "One word."),
        Mode.MEMORY_AGENT,
        "too long",
        MODEL,
        {"n_ctx": 4096},
        CHUNKS,
    )
    return doc_id, session, run


def test_round_trip_of_a_run(store):
    _, _, run_id = new_run(store)
    for i in range(3):
        store.save_step(run_id, step(i))
    answer = AnswerRecord("Twelve", CallStats("raw", "thought", 30, 2, 5, 3.0, 4.0, 7.0))
    store.save_answer(run_id, answer)
    run = store.get_run(run_id)
    assert run.steps == [step(i) for i in range(3)]
    assert run.chunks == CHUNKS and run.answer == answer and run.status == "finished"
    assert (run.q_core, run.q_inst, run.model_sha256) == ("How many ships?", "One word.", "f" * 64)


def test_saving_a_step_twice_replaces_it(store):
    _, _, run_id = new_run(store)
    store.save_step(run_id, step(0))
    store.save_step(run_id, step(0, "corrected"))
    assert [s.memory for s in store.load_steps(run_id)] == ["corrected"]


def test_delete_session_and_document_remove_exactly_their_rows(store):
    doc_a, session_a, run_a = new_run(store, "a" * 64)
    _, _, run_b = new_run(store, "b" * 64)
    for run in (run_a, run_b):
        store.save_step(run, step(0))
        answer_id = store.save_answer(run, AnswerRecord("x", CallStats()))

        store.save_evidence(answer_id, run, [Evidence("c", "q", 0, 0, 0, 1, 1, (), 1.0)])

    def counts() -> dict[str, int]:
        tables = ["documents", "sessions", "runs", "steps", "answers", "evidence"]
        return {t: store.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}

    assert counts() == dict.fromkeys(counts(), 2)
    store.delete_session(session_a)
    assert counts() == {
        "documents": 2,
        "sessions": 1,
        "runs": 1,
        "steps": 1,
        "answers": 1,
        "evidence": 1,
    }
    store.delete_document(doc_a)
    assert counts() == dict.fromkeys(counts(), 1)
    assert store.get_run(run_b).steps == [step(0)]


def test_migrates_from_blank_and_from_each_earlier_schema(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, target=1)  # a database from the first release
    conn.execute(
        "INSERT INTO documents (path, sha256, kind, title, page_count, char_count, "
        "text) VALUES ('/d', 'x', 'text', 'Old', 1, 13, 'legacy zebras')"
    )
    conn.close()
    store = open_database(path)
    assert migrations.schema_version(store.conn) == migrations.LATEST
    assert [d["title"] for d in store.list_documents()] == ["Old"]
    store.close()
    blank = open_database(tmp_path / "new.sqlite3")
    assert migrations.schema_version(blank.conn) == migrations.LATEST


def test_a_schema_2_database_with_runs_upgrades_without_its_full_text_index(tmp_path):
    """Schema 3 drops the FTS5 tables and their six triggers and gives steps the
    answers' cached_tokens column: every stored run reads back as it was."""
    path = tmp_path / "v2.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, target=2)
    conn.executescript(
        "INSERT INTO documents (id, path, sha256, kind, title, page_count, char_count, text) "
        "VALUES (1, '/d', 'x', 'text', 'Old', 1, 30, 'The harbour holds twelve ships.');"
        "INSERT INTO sessions (id, document_id, title) VALUES (1, 1, 'How many ships?');"
        "INSERT INTO runs (id, session_id, document_id, question, q_core, q_inst, mode, "
        "mode_reason, status, model_backend, model_name, model_path, model_sha256, n_ctx, "
        "settings, chunks) VALUES (1, 1, 1, 'How many ships? One word.', 'How many ships?', "
        "'One word.', 'memory_agent', 'too long', 'finished', 'local', 'm', '/m', 'f', 4096, "
        '\'{}\', \'[{"index": 0, "start": 0, "end": 30, "tokens": 8}]\');'
        "INSERT INTO steps (run_id, idx, char_start, char_end, page_first, page_last, "
        "chunk_tokens, memory, plan, thinking, raw_output, prompt_tokens, completion_tokens, "
        "prompt_ms, generation_ms, wall_ms, malformed, stop_reason, notes) VALUES "
        "(1, 0, 0, 30, 1, 1, 8, 'twelve ships', 'p', 't', 'raw', 10, 5, 1.5, 2.5, 4.0, 0, "
        "'stop', '[\"a note\"]');"
        "INSERT INTO answers (run_id, text, thinking, raw_output, prompt_tokens, "
        "completion_tokens, prompt_ms, generation_ms, wall_ms, cached_tokens, stop_reason) "
        "VALUES (1, 'Twelve', '', 'Twelve', 20, 1, 1.0, 1.0, 2.0, 3, 'stop');"
    )
    conn.close()
    store = open_database(path)
    assert migrations.schema_version(store.conn) == migrations.LATEST >= 3
    names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    assert not {n for n in names if "fts" in n or n.endswith(("_ai", "_ad", "_au"))}
    run = store.get_run(1)
    assert run.mode == Mode.MEMORY_AGENT == "memory_agent" and run.status == "finished"
    assert run.steps[0].stats == CallStats("raw", "t", 10, 5, 0, 1.5, 2.5, 4.0, "stop", ("a note",))
    assert run.answer is not None and run.answer.stats.cached_tokens == 3
    assert [s["id"] for s in store.list_sessions(search="ships")] == [1]  # history search
    store.save_step(1, replace(run.steps[0], memory="corrected"))  # REPLACE on the new table
    assert store.get_run(1).steps[0].memory == "corrected"


def test_a_newer_database_is_refused_and_not_touched(tmp_path):
    path = tmp_path / "future.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {migrations.APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer version"):
        open_database(path)
    assert path.read_bytes() == before


def test_read_only_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "ro.sqlite3"
    open_database(path).close()
    store = open_database(path)
    store.conn.execute("PRAGMA query_only = ON")  # what a read-only mount looks like to SQLite
    with pytest.raises(StoreError) as error:
        store.create_session(1, "x")
    assert "read-only" in str(error.value) or "readonly" in str(error.value).lower()


def test_a_failed_write_leaves_nothing_half_written(store, monkeypatch):
    _, _, run_id = new_run(store)
    store.conn.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON steps WHEN NEW.idx = 1 "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    store.save_step(run_id, step(0))
    with pytest.raises(StoreError, match="full"):
        store.save_step(run_id, step(1))
    assert [s.index for s in store.load_steps(run_id)] == [0]
    assert not store.conn.in_transaction


def test_two_connections_and_threads_write_concurrently(tmp_path):
    path = tmp_path / "shared.sqlite3"
    first = open_database(path)
    _, _, run_id = new_run(first)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            own = open_database(path)  # each thread its own connection
            for i in range(offset, 4, 2):
                own.save_step(run_id, step(i))
            own.close()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [s.index for s in first.load_steps(run_id)] == [0, 1, 2, 3]


CHILD = """
import sys
from tests.store.test_store import new_run, step
from app.store.database import open_database
store = open_database(sys.argv[1])
_, _, run = new_run(store)
print(run, flush=True)
i = 0
while True:
    store.save_step(run, step(i % 4))
    print(i, flush=True)
    i += 1
"""


def test_a_kill_during_writes_leaves_a_sound_database(tmp_path):
    path = tmp_path / "killed.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    run_id = int(child.stdout.readline())
    committed = [int(child.stdout.readline()) for _ in range(30)]
    child.kill()
    child.wait()
    store = open_database(path)
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(store.load_steps(run_id)) == 4  # every committed step index is there
    assert committed[-1] >= 29
    # the killed process no longer holds the run: it was interrupted, however recent
    assert store.get_run(run_id).status == "interrupted"
    assert store.mark_stale_running_as_interrupted() == 1


def test_history_search_finds_the_characters_typed_not_wildcards(store):
    doc_id = store.add_document(
        Document(path="/t.txt", sha256="s1", kind="text", title="t", text="x")
    )
    titles = ["Growth of 50% in 2024?", "Plain question", "file_name mentioned", "back\\slash"]
    ids = {title: store.create_session(doc_id, title) for title in titles}

    def found(search: str) -> set[int]:
        return {row["id"] for row in store.list_sessions(search=search)}

    assert found("%") == {ids["Growth of 50% in 2024?"]}
    assert found("_") == {ids["file_name mentioned"]}
    assert found("\\") == {ids["back\\slash"]}
    assert found("question") == {ids["Plain question"]}
