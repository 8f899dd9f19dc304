"""`python -m app ask` end to end: a real PDF, the real demo model, a real database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.store.database import open_database
from tests.conftest import make_pdf

ROOT = Path(__file__).resolve().parents[2]

FACTS = [
    "Chapter one. The lighthouse keeper is called Marta Vidal. She keeps a logbook.",
    "Chapter two. The supply boat arrives every Tuesday with coal and letters.",
    "Chapter three. In the storm of 1911 the lamp failed twice, and Marta relit it.",
]


def run_app(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def env(app_home) -> dict[str, str]:
    return {**os.environ, "QWENLONG_READER_HOME": str(app_home)}


def test_ask_reads_a_pdf_with_the_memory_agent_and_stores_the_session(tmp_path, env):
    pdf = make_pdf(tmp_path / "keeper.pdf", [(f + " ") * 12 for f in FACTS])
    result = run_app(
        "ask",
        str(pdf),
        "Who is the lighthouse keeper? Answer with a name.",
        "--mode",
        "memory_agent",
        "--ctx",
        "2048",
        "--chunk-tokens",
        "300",
        "--max-new-tokens",
        "64",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "memory agent" in out
    assert "== Step 1/" in out and "Memory:" in out and "Plan:" in out and "== Answer ==" in out
    assert "Demo model" in result.stderr  # the tiny demo model says so
    db = open_database(Path(env["QWENLONG_READER_HOME"]) / "data" / "reader.sqlite3")
    run_id = int(out.split("Run ", 1)[1].split(":", 1)[0])
    run = db.get_run(run_id)
    assert run.status == "finished" and run.answer is not None
    assert len(run.steps) == len(run.chunks) >= 2
    assert run.q_inst == "Answer with a name." and run.model_name.endswith("(demo)")
    shown = run_app("show", str(run_id), env=env)
    assert shown.returncode == 0 and run.answer.text.strip()[:20] in shown.stdout


def test_missing_file_and_missing_model_give_clear_exit_codes(tmp_path, env):
    missing = run_app("ask", str(tmp_path / "nope.pdf"), "q?", env=env)
    assert missing.returncode == 3
    assert "nope.pdf" in missing.stderr
    pdf = make_pdf(tmp_path / "a.pdf", ["text"])
    no_model = run_app("ask", str(pdf), "q?", "--model", str(tmp_path / "x.gguf"), env=env)
    assert no_model.returncode == 4
    assert "Model file not found" in no_model.stderr
    not_gguf = tmp_path / "fake.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 this is a zip")
    bad = run_app("ask", str(pdf), "q?", "--model", str(not_gguf), env=env)
    assert bad.returncode == 4 and "not a GGUF" in bad.stderr


def test_killed_mid_run_resumes_at_the_next_chunk(tmp_path, env):
    """Kill a real process (SIGKILL: no cleanup) after two steps, then resume."""
    pdf = make_pdf(tmp_path / "long.pdf", [(f + " ") * 12 for f in FACTS * 2])  # 5 chunks
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "ask",
            str(pdf),
            "Who relit the lamp?",
            "--mode",
            "memory_agent",
            "--ctx",
            "2048",
            "--chunk-tokens",
            "300",
            "--max-new-tokens",
            "48",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    seen, header = 0, ""
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        header = header or (line if line.startswith("Run ") else "")
        if line.startswith("== Step 3/"):  # steps 1 and 2 are committed
            seen = 2
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline
    proc.wait(timeout=30)
    assert seen == 2, "the run finished before it could be killed"
    run_id = int(header.split()[1].rstrip(":"))
    db = open_database(Path(env["QWENLONG_READER_HOME"]) / "data" / "reader.sqlite3")
    before = db.get_run(run_id)
    assert len(before.steps) == 2
    resumed = run_app("resume", str(run_id), "--ctx", "2048", "--max-new-tokens", "48", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming after step 2" in resumed.stdout
    assert "== Step 1/" not in resumed.stdout and "== Step 3/" in resumed.stdout
    after = db.get_run(run_id)
    assert after.status == "finished"
    assert after.steps[:2] == before.steps  # the finished steps are untouched
    assert [s.index for s in after.steps] == list(range(len(after.chunks)))
