"""`python -m app … | head`: when the reader of the output goes away, the command stops
quietly with the shell's SIGPIPE status, no traceback and no "something went wrong"."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import make_pdf


def test_text_into_a_closed_pipe_stops_quietly(tmp_path, env):
    pdf = make_pdf(
        tmp_path / "long.pdf", [f"Page {n}. " + "Words of the page. " * 200 for n in range(40)]
    )
    read, write = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "text", str(pdf)],
        stdout=write,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(write)
    with os.fdopen(read, "rb") as out:
        assert out.read(100)  # the first lines, as `head` takes them; then it goes away
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 141, stderr
    assert b"Traceback" not in stderr and b"went wrong" not in stderr
