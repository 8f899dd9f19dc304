"""`python -m app ask` end to end: a real PDF, a real model, a real database. The first
run a user gets is on the bundled demo model; kill and resume run on the tiny model
(tests/fixtures/tiny_qwen3moe.py), whose output only has to exist."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
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


PIPE_BYTES = 4096  # one page: the least a Linux pipe can be set to hold
SILENCE_S = 120  # no output for this long: the app hangs, the test fails


class Transcript:
    """`python -m app ARGS` with its stdout in a pipe that holds one page (4 KiB).

    The app writes and flushes its transcript after every event, on the thread that
    runs the engine, so it is never more than a page of transcript ahead of what the
    test has read: past that it waits in the write, computing and saving nothing. What
    the test does on reading a line (a signal, another program's lock) thus happens
    before the app is a page past that line, however fast the model: a run with more
    than a page (and one event) of transcript still to write after the line cannot have
    ended. ``until`` reads a byte at a time, so nothing after its line leaves the pipe."""

    def __init__(self, *args: str, env: dict[str, str], stderr: int = subprocess.DEVNULL):
        import fcntl

        if not hasattr(fcntl, "F_SETPIPE_SZ"):
            pytest.skip("needs a pipe whose size can be set (Linux)")
        self.fd, write_end = os.pipe()
        try:
            size = fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            assert size == PIPE_BYTES, f"a pipe of {size} bytes, not {PIPE_BYTES}"
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", *args],
                cwd=ROOT,
                env=env,
                stdout=write_end,
                stderr=stderr,
                text=True,
            )
        finally:
            os.close(write_end)
        self.data = bytearray()

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def _read(self, size: int) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], SILENCE_S)
        assert ready, f"no output for {SILENCE_S} s after:\n{self.text}"
        got = os.read(self.fd, size)
        self.data += got
        return got

    def until(self, prefix: str) -> str:
        """Read up to and including the first line that starts with ``prefix``."""
        start = len(self.data)
        while True:
            byte = self._read(1)
            assert byte, f"the app ended before a line starting {prefix!r}:\n{self.text}"
            if byte == b"\n":
                line = self.data[start:].decode("utf-8")
                if line.startswith(prefix):
                    return line
                start = len(self.data)

    def finish(self, timeout: float = 120) -> int:
        """Read the rest of the transcript; the exit code."""
        while self._read(65536):
            pass
        os.close(self.fd)
        return self.proc.wait(timeout=timeout)

    def run_id(self) -> int:
        """The id in the transcript's "Run N: ..." line."""
        return int(self.text.split("Run ", 1)[1].split(":", 1)[0])


def test_ask_reads_a_pdf_with_the_memory_agent_and_stores_the_session(tmp_path, env):
    """A user's first run: no model chosen, so the bundled demo model reads two chunks."""
    pdf = make_pdf(tmp_path / "keeper.pdf", [(f + " ") * 8 for f in FACTS])
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
        "32",
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


def test_killed_mid_run_resumes_at_the_next_chunk(tmp_path, env, tiny_model):
    """Kill a real process (SIGKILL: no cleanup) once step 3 has begun, then resume."""
    pdf = make_pdf(tmp_path / "long.pdf", [(f + " ") * 12 for f in FACTS * 2])
    transcript = Transcript(
        "ask",
        str(pdf),
        "Who relit the lamp?",
        "--model",
        str(tiny_model),
        "--mode",
        "memory_agent",
        "--ctx",
        "2048",
        "--chunk-tokens",
        "150",
        "--max-new-tokens",
        "48",
        "--stream",  # 11 chunks of ~1 KB of transcript: 8 KB after step 3's line
        env=env,
    )
    transcript.until("== Step 3/")  # steps 1 and 2 are committed: the app is at most a page on
    transcript.proc.send_signal(signal.SIGKILL)
    assert transcript.finish(timeout=30) == -signal.SIGKILL
    run_id = transcript.run_id()
    db = open_database(Path(env["QWENLONG_READER_HOME"]) / "data" / "reader.sqlite3")
    before = db.get_run(run_id)
    done = len(before.steps)  # 2, or a few more if the kill came a step or two later
    assert 2 <= done < len(before.chunks), "the run finished before it could be killed"
    assert [s.index for s in before.steps] == list(range(done))
    resumed = run_app("resume", str(run_id), "--ctx", "2048", "--max-new-tokens", "48", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming after step {done} of {len(before.chunks)}" in resumed.stdout
    assert not any(f"== Step {n}/" in resumed.stdout for n in range(1, done + 1))
    assert f"== Step {done + 1}/" in resumed.stdout
    after = db.get_run(run_id)
    assert after.status == "finished"
    assert after.steps[:done] == before.steps  # the finished steps are untouched
    assert [s.index for s in after.steps] == list(range(len(after.chunks)))


def test_a_database_locked_when_ask_starts_is_waited_for_up_to_db_wait(tmp_path, env):
    """Another program holds the write lock past SQLite's 5 s busy timeout as `ask` starts:
    storing the document and the session waits for it (said on stderr), as a step would."""
    from tests.agent.test_engine_hostile import LockHolder

    text = tmp_path / "keeper.txt"
    text.write_text(" ".join(FACTS), encoding="utf-8")
    db = open_database(Path(env["QWENLONG_READER_HOME"]) / "data" / "reader.sqlite3")
    db.close()
    holder = LockHolder(db.path, hold_s=12)  # past two 5 s busy timeouts
    holder.start()
    try:
        result = run_app(
            "ask",
            str(text),
            "Who keeps the lighthouse?",
            "--max-new-tokens",
            "16",
            "--db-wait",
            "60",
            env=env,
        )
    finally:
        holder.stop()
    assert result.returncode == 0, result.stderr
    assert "Waiting for the database" in result.stderr and "locked" in result.stderr
    assert "left stale runs" not in result.stderr
    assert "== Answer ==" in result.stdout
