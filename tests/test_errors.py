"""What the user is told about a failure: the machine's own I/O problems (a full disk, a
read-only one, no permission) say what to do instead of showing an error id."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from app.errors import describe_error, environment_error


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_is_the_machines_problem_not_a_bug(caplog):
    with pytest.raises(OSError) as raised, open("/dev/full", "w", encoding="utf-8") as out:
        out.write("x" * 10_000)  # ENOSPC, for real
        out.flush()
    message = describe_error(raised.value, "export")
    assert message.startswith("The disk is full") and "error id" not in message
    assert "Free some space" in message and "export failed" in caplog.text


def test_permission_and_read_only_say_what_to_do():
    denied = environment_error(PermissionError(errno.EACCES, "Permission denied", "/r/a.md"))
    assert denied is not None and "/r/a.md" in denied.message and "Choose a folder" in denied.hint
    read_only = environment_error(OSError(errno.EROFS, "Read-only file system", "/mnt/x"))
    assert read_only is not None and read_only.message.startswith("The disk is read-only")
    assert environment_error(ValueError("a bug")) is None
    assert environment_error(OSError(errno.ECONNRESET, "reset")) is None
    assert "error id" in describe_error(KeyError("a bug"))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_exporting_onto_a_full_disk_exits_2_saying_so(tmp_path, monkeypatch, capsys):
    """`export` through the command line's entry point, its Markdown file on a full disk."""
    import os

    from app.documents.model import Document
    from app.llm.backend import ModelIdentity
    from app.records import Mode, Question
    from app.store.database import open_database

    monkeypatch.setenv("QWENLONG_READER_HOME", str(tmp_path / "home"))  # the CLI's too
    store = open_database()
    doc = Document(path="/tmp/n.txt", sha256="n", kind="text", title="n", text="A note.")
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, "q")
    model = ModelIdentity(backend="local", name="m", path="/m.gguf", n_ctx=4096)
    question = Question("q", "q", "", Mode.SINGLE_PASS)
    run_id = store.create_run(session, doc_id, question, Mode.SINGLE_PASS, "", model, {}, [])
    store.close()
    # The report's first file meets a full disk (ENOSPC, as /dev/full gives it; a link
    # to /dev/full no longer works: a link where a report goes is replaced, not followed).
    from app import private
    from app.__main__ import main

    def full(path, data, **_):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(private, "write_file", full)
    code = main(["export", str(run_id), "--out", str(tmp_path / "out")])
    done = subprocess.CompletedProcess([], code, "", capsys.readouterr().err)
    assert done.returncode == 2, done.stderr
    assert "The disk is full" in done.stderr and "error id" not in done.stderr
