"""The command line under hostile conditions, as real processes: Ctrl-C while chunks are
planned, another program locking the database mid-run, a read-only copy, another
program's database, a bare resume, a full disk under the log file. Runs whose steps must
only exist use the tiny model; the test acts on a line of the transcript (Transcript),
never on how long a step takes."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.agent.events import RunCancelled, RunFailed
from app.agent.queue import Question, ask_many
from app.cli.transcript import Printer, drive
from app.store.database import open_database
from tests.agent.test_engine import SETTINGS, document
from tests.cli.test_ask_end_to_end import Transcript
from tests.cli.test_ask_end_to_end import run_app as app
from tests.conftest import make_pdf
from tests.fakes import FakeBackend
from tests.store.test_store import new_run, step

ROOT = Path(__file__).resolve().parents[2]


def db_path(env: dict[str, str]) -> Path:
    return Path(
        env.get("QWENLONG_READER_DB")
        or Path(env["QWENLONG_READER_HOME"]) / "data" / "reader.sqlite3"
    )


# -- exit codes -------------------------------------------------------------------------
def test_the_exit_code_is_the_failures_own_and_a_cancel_is_130():
    out = io.StringIO()
    assert drive(iter([RunFailed(3, "server gone", 1, exit_code=6)]), Printer(out, False)) == 6
    assert drive(iter([RunFailed(3, "disk full", 1, exit_code=5)]), Printer(out, False)) == 5
    assert drive(iter([RunFailed(3, "a bug", 1)]), Printer(out, False)) == 1
    both = [RunFailed(3, "x", 0, exit_code=6), RunCancelled(4, 0)]
    assert drive(iter(both), Printer(out, False)) == 130


def test_a_cancel_while_chunks_are_planned_is_a_clean_cancel(store):
    from app.agent.engine import Engine
    from app.llm.backend import CancelToken

    cancel = CancelToken()

    class Counting(FakeBackend):
        def count_tokens(self, text: str) -> int:
            cancel.cancel()  # Ctrl-C arrives while the document is being counted
            return super().count_tokens(text)

    engine = Engine(Counting(lambda p: ""), store, SETTINGS)
    doc_id = store.add_document(document())
    session = store.create_session(doc_id, "q")
    out = io.StringIO()
    events = ask_many(lambda: engine, document(), doc_id, session, [Question("q?", "q?")], cancel)
    assert drive(events, Printer(out, False)) == 130
    assert "failed" not in out.getvalue() and "before the run started" in out.getvalue()


def test_sigint_while_a_long_document_is_planned_exits_130_without_a_failure(tmp_path, env):
    text = tmp_path / "long.txt"
    paragraph = "The keeper climbs the stairs and trims the wick of the great lamp again. "
    text.write_text("\n\n".join(paragraph * 6 for _ in range(9000)), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "ask", str(text), "Who trims the wick?"]
        + ["--mode", "memory_agent", "--ctx", "2048", "--chunk-tokens", "100"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    err = b""
    while b"Planning chunks" not in err:  # the chunks are being planned (1% of the text)
        got = os.read(proc.stderr.fileno(), 4096)
        assert got, err
        err += got
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=240)
    err = err.decode("utf-8", errors="replace") + rest
    assert proc.returncode == 130, (out, err)
    assert "failed" not in out and "Traceback" not in err
    assert "Cancelled before the run started" in out


# -- another program locks the database mid-run -------------------------------------------
def test_a_database_locked_mid_run_is_waited_for_then_the_run_stops_with_code_5(
    tmp_path, env, tiny_model
):
    pdf = make_pdf(
        tmp_path / "keeper.pdf", [f"Page {n}. The lamp is lit at dusk. " * 30 for n in range(3)]
    )
    transcript = Transcript(
        *("ask", str(pdf), "When is the lamp lit?", "--model", str(tiny_model)),
        *("--mode", "memory_agent", "--ctx", "2048", "--chunk-tokens", "150"),
        *("--max-new-tokens", "48", "--stream", "--db-wait", "6"),  # 8 steps, ~7 KB
        env=env,
        stderr=subprocess.PIPE,
    )
    total = int(transcript.until("== Step 1/").split("/")[1].split(":")[0])
    run_id = transcript.run_id()
    other = sqlite3.connect(db_path(env), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program takes the write lock
    try:
        saved = other.execute("SELECT COUNT(*) FROM steps WHERE run_id = ?", (run_id,))
        assert saved.fetchone()[0] < total  # the app is a page past step 1 at most
        code = transcript.finish()
    finally:
        transcript.proc.kill()  # (it has ended, unless the test failed)
        other.execute("ROLLBACK")
        other.close()
    out = transcript.text
    err = transcript.proc.stderr.read() if transcript.proc.stderr else ""
    assert code == 5, (out, err)
    assert "Waiting for the database" in out and "stayed locked" in out
    assert "Traceback" not in err
    store = open_database(db_path(env))
    assert store.get_run(run_id).status == "interrupted"  # not left 'running'
    # The process has ended, the computed step has not: it is in a side file, owner-only.
    side_files = list((Path(env["QWENLONG_READER_HOME"]) / "data" / "unsaved").glob("*.json"))
    assert len(side_files) == 1 and f"kept in {side_files[0]}" in out
    assert side_files[0].stat().st_mode & 0o077 == 0
    kept = json.loads(side_files[0].read_text(encoding="utf-8"))["steps"]
    assert [step["index"] for step in kept] == [len(store.get_run(run_id).steps)]
    # A new process writes it first instead of asking the model again, then drops the file.
    resumed = app("resume", str(run_id), env=env)
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    run = store.get_run(run_id)
    assert run.status == "finished"
    step = run.steps[kept[0]["index"]]
    assert step.stats.raw_output == kept[0]["stats"]["raw_output"]
    assert step.stats.wall_ms == kept[0]["stats"]["wall_ms"]  # the same call, not a new one
    assert not side_files[0].exists()


# -- a bare resume continues with the run's own settings ----------------------------------
def test_a_bare_resume_uses_the_runs_budgets_not_todays_settings(tmp_path, env, tiny_model):
    pdf = make_pdf(
        tmp_path / "long.pdf",
        [f"Page {n}. The lamp is lit at dusk, entry {n}. " * 25 for n in range(4)],
    )
    transcript = Transcript(
        *("ask", str(pdf), "When is the lamp lit?", "--model", str(tiny_model)),
        *("--mode", "memory_agent", "--ctx", "3072", "--chunk-tokens", "150"),
        *("--max-new-tokens", "24", "--stream"),  # 12 steps, ~8 KB of transcript
        env=env,
    )
    transcript.until("== Step 2/")  # step 1 is saved; the app is a page further at most
    transcript.proc.send_signal(signal.SIGINT)
    assert transcript.finish() == 130, transcript.text
    run_id = transcript.run_id()
    before = open_database(db_path(env)).get_run(run_id)
    assert 1 <= len(before.steps) < len(before.chunks)
    cap = before.settings["budgets"]["max_new_tokens"]  # 24, raised to the minimum of 32
    assert cap == 32 and before.settings["n_ctx"] == 3072
    resumed = app("resume", str(run_id), env=env)  # no flags: today's defaults differ
    assert resumed.returncode == 0, resumed.stderr
    after = open_database(db_path(env)).get_run(run_id)
    assert after.status == "finished"
    new = after.steps[len(before.steps) :]
    assert new and all(s.stats.completion_tokens <= cap for s in new)  # the run's own cap
    assert not any("resumed with" in n for s in after.steps for n in s.stats.notes)
    changed = app("resume", str(run_id), "--max-new-tokens", "30", env=env)
    assert changed.returncode == 0, changed.stderr  # answered again: the change is noted
    notes = open_database(db_path(env)).get_run(run_id).answer.stats.notes
    assert any("max_new_tokens 24 -> 30" in n for n in notes), notes


# -- read-only and foreign databases ------------------------------------------------------
@pytest.fixture
def read_only_db(tmp_path):
    made = tmp_path / "made" / "reader.sqlite3"
    store = open_database(made)
    _, _, run_id = new_run(store)
    store.save_step(run_id, step(0))
    store.close()
    dvd = tmp_path / "dvd"
    dvd.mkdir()
    shutil.copyfile(made, dvd / "reader.sqlite3")
    os.chmod(dvd / "reader.sqlite3", 0o444)
    os.chmod(dvd, 0o555)
    yield dvd / "reader.sqlite3", run_id
    os.chmod(dvd, 0o755)


def test_a_read_only_copy_can_be_listed_shown_and_exported_and_writing_says_why(
    tmp_path, env, read_only_db
):
    path, run_id = read_only_db
    before = path.read_bytes()
    env = {**env, "QWENLONG_READER_DB": str(path)}
    sessions = app("sessions", env=env)
    assert sessions.returncode == 0, sessions.stderr
    assert "How many ships?" in sessions.stdout
    shown = app("show", str(run_id), env=env)
    assert shown.returncode == 0, shown.stderr
    assert "memory 0 walrus" in shown.stdout and "interrupted" in shown.stdout
    exported = app("export", str(run_id), "--out", str(tmp_path / "out"), env=env)
    assert exported.returncode == 0, exported.stderr
    text = tmp_path / "doc.txt"
    text.write_text("The harbour holds twelve ships. " * 20, encoding="utf-8")
    ask = app("ask", str(text), "How many ships?", env=env)
    assert ask.returncode == 5, ask.stderr
    assert "read-only" in ask.stderr and str(path.parent) in ask.stderr
    assert "QWENLONG_READER_DB" in ask.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["reader.sqlite3"]


def test_another_programs_database_is_refused_by_the_cli_untouched(tmp_path, env):
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    result = app("sessions", env={**env, "QWENLONG_READER_DB": str(path)})
    assert result.returncode == 5
    assert "another program's SQLite database" in result.stderr
    assert path.read_bytes() == before and not Path(f"{path}-wal").exists()


# -- the log file on a full disk ----------------------------------------------------------
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_under_the_log_file_prints_no_logging_traceback(capfd):
    from app.logs import QuietRotatingFileHandler

    handler = QuietRotatingFileHandler("/dev/full", maxBytes=2_000_000)  # ENOSPC on write
    log = logging.getLogger("app.test_full_disk")
    log.addHandler(handler)
    log.propagate = False
    try:
        for _ in range(3):
            log.warning("a step was saved")
        handler.close()  # closing flushes into the full disk once more
    finally:
        log.removeHandler(handler)
    err = capfd.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err
    assert err.count("cannot write the log file") == 1


def test_sigterm_cancels_like_ctrl_c_keeping_the_steps(tmp_path, env, tiny_model):
    """`kill PID` (or a service manager stopping the job) mid-run: the run is cancelled
    with its saved steps and says how to resume, not cut off without a word."""
    pdf = make_pdf(
        tmp_path / "long.pdf",
        [f"Page {n}. The lamp is lit at dusk, entry {n}. " * 25 for n in range(4)],
    )
    transcript = Transcript(
        *("ask", str(pdf), "When is the lamp lit?", "--model", str(tiny_model)),
        *("--mode", "memory_agent", "--ctx", "3072", "--chunk-tokens", "150"),
        *("--max-new-tokens", "24", "--stream"),
        env=env,
    )
    transcript.until("== Step 2/")
    transcript.proc.send_signal(signal.SIGTERM)
    assert transcript.finish() == 130, transcript.text
    run = open_database(db_path(env)).get_run(transcript.run_id())
    assert run.status == "cancelled" and 1 <= len(run.steps) < len(run.chunks)
    assert "resume" in transcript.text
