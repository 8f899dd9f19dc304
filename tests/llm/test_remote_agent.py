"""The memory agent through a real OpenAI-compatible server on loopback, two questions
queued on one session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.store.database import open_database
from tests.conftest import make_pdf

ROOT = Path(__file__).resolve().parents[2]


def test_cli_runs_the_memory_agent_through_a_server(llama_server, tmp_path, app_home):
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
            llama_server.url,
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
