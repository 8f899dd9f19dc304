"""The memory agent through a real OpenAI-compatible server on loopback (llama-cpp-python's,
serving the tiny qwen3moe: QwenLong's template and vocabulary, random output), two
questions queued on one session, and a server killed mid-run then restarted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.store.database import open_database
from tests.conftest import make_pdf

ROOT = Path(__file__).resolve().parents[2]


def test_cli_runs_the_memory_agent_through_a_server(tiny_server, tmp_path, app_home):
    pdf = make_pdf(
        tmp_path / "keeper.pdf",
        ["The keeper is Marta Vidal. " * 30, "The boat comes on Tuesdays. " * 30],
    )
    env = {**os.environ, "QWENLONG_READER_HOME": str(app_home)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "ask",
            str(pdf),
            "Who is the keeper?",
            "When does the boat come?",
            "--server",
            tiny_server.url,
            "--mode",
            "memory_agent",
            "--ctx",
            "2048",
            "--chunk-tokens",
            "200",
            "--max-new-tokens",
            "32",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    db = open_database(app_home / "data" / "reader.sqlite3")
    sessions = db.list_sessions()
    runs = db.list_runs(sessions[0]["id"])
    assert len(runs) == 2
    for row in runs:
        run = db.get_run(row["id"])
        assert run.status == "finished" and run.model_backend == "remote"
        assert len(run.steps) == len(run.chunks) >= 2 and run.answer is not None
    assert "[run " in result.stdout


def test_server_killed_mid_run_then_resumed_on_a_new_server(
    tiny_model, doomed_tiny_server, tmp_path, app_home
):
    """The memory agent through a real server that dies after the first step: the run
    fails with a clear message and keeps that step; resumed against a restarted server it
    reads only the remaining chunks."""
    from app.agent.engine import Engine
    from app.agent.events import RunFailed, RunFinished, StepFinished
    from app.documents.ingest import load_document
    from app.llm.backend import CancelToken
    from app.llm.remote import RemoteBackend
    from app.records import Mode, Question
    from app.settings import Settings
    from tests.llm.conftest import start_server, stop_server

    pdf = make_pdf(
        tmp_path / "lighthouse.pdf",
        [f"Page {n}. The keeper logs the lamp at dusk, entry {n}. " * 25 for n in range(1, 4)],
    )
    doc = load_document(pdf)
    store = open_database()
    settings = Settings(n_ctx=2048, chunk_tokens=200, max_new_tokens=24, backend="remote")
    engine = Engine(RemoteBackend(doomed_tiny_server.url, retries=0), store, settings)
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, "keeper")
    question = "When is the lamp logged?"
    plan = engine.plan(doc, Question(question, question, "", Mode.MEMORY_AGENT))
    assert len(plan.chunks) >= 3
    events = []
    for event in engine.ask(doc, doc_id, session, plan, CancelToken()):
        events.append(event)
        if isinstance(event, StepFinished) and event.step.index == 0:
            doomed_tiny_server.process.kill()
            doomed_tiny_server.process.wait()
    failed = events[-1]
    assert isinstance(failed, RunFailed), events[-1]
    assert failed.steps_done == 1
    assert "server" in failed.message.lower()
    run = store.get_run(failed.run_id)
    assert run.status != "finished" and len(run.steps) == 1
    first_memory = run.steps[0].memory

    restarted = start_server(tiny_model, tmp_path / "restarted.log")
    try:
        engine = Engine(RemoteBackend(restarted.url), store, settings)
        resumed = list(engine.resume(failed.run_id, doc, CancelToken()))
    finally:
        stop_server(restarted.process)
    assert isinstance(resumed[-1], RunFinished), resumed[-1]
    new_steps = [e.step.index for e in resumed if isinstance(e, StepFinished)]
    assert new_steps == list(range(1, len(plan.chunks)))  # step 0 was not read again
    run = store.get_run(failed.run_id)
    assert run.status == "finished" and len(run.steps) == len(run.chunks)
    assert run.steps[0].memory == first_memory and run.answer is not None
