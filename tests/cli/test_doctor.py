"""``python -m app doctor`` on real folders, database and model files: healthy, then each
problem said in plain words; the doctor itself changes nothing."""

from __future__ import annotations

import os
import sqlite3
from io import StringIO

import pytest

from app import paths
from app.doctor import run_doctor


def doctor() -> tuple[int, str]:
    out = StringIO()
    code = run_doctor(out)
    return code, out.getvalue()


def test_a_fresh_install_is_healthy(app_home):
    code, text = doctor()
    assert code == 0, text
    assert "Nothing wrong found." in text
    assert "ok       model:" in text and "demo model" in text
    assert "ok       llama.cpp:" in text
    assert oct(paths.data_dir().stat().st_mode & 0o777) == "0o700"  # owner-only folders


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_each_problem_is_named_with_what_to_do(app_home, monkeypatch, tmp_path):
    shared = paths.cache_dir() / "documents" / "x.pickle"
    shared.parent.mkdir(parents=True, exist_ok=True)
    shared.write_bytes(b"cached text")
    shared.chmod(0o644)
    monkeypatch.setenv("QWENLONG_READER_MODEL", str(tmp_path / "missing.gguf"))
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    before = foreign.read_bytes()
    monkeypatch.setenv("QWENLONG_READER_DB", str(foreign))
    code, text = doctor()
    assert code == 1
    assert "PROBLEM  cache: 1 cached files can be read by other users" in text
    assert "PROBLEM  model: Model file not found" in text
    assert "PROBLEM  database:" in text
    assert foreign.read_bytes() == before  # the doctor never touches a foreign file
    assert shared.stat().st_mode & 0o777 == 0o644  # nor repairs anything by itself


def test_ctrl_c_before_a_command_starts_is_a_quiet_cancel(monkeypatch, capsys):
    import app.__main__ as entry

    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr("app.cli.cmd_sessions", interrupted)
    assert entry.main(["sessions"]) == 130
    assert "Traceback" not in capsys.readouterr().err
