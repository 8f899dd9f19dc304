"""packaging/launcher.py (the frozen app's entry point) and the release workflow."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _launcher():
    spec = importlib.util.spec_from_file_location(
        "qwenlong_launcher", ROOT / "packaging/launcher.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_bare_document_path_opens_it(tmp_path):
    launcher = _launcher()
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    assert launcher._arguments([str(pdf)]) == ["--open", str(pdf)]
    assert launcher._arguments(["-psn_0_12345", str(pdf)]) == ["--open", str(pdf)]


def test_other_arguments_pass_through(tmp_path, monkeypatch):
    launcher = _launcher()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sessions").write_text("a file named like a subcommand")
    assert launcher._arguments(["sessions"]) == ["sessions"]
    assert launcher._arguments(["--self-test"]) == ["--self-test"]
    assert launcher._arguments(["ask", "x.pdf", "Why?"]) == ["ask", "x.pdf", "Why?"]
    assert launcher._arguments(["missing.pdf"]) == ["missing.pdf"]  # argparse reports it
    assert launcher._arguments([]) == []


@pytest.mark.skipif(sys.platform == "win32", reason="closes file descriptors the POSIX way")
def test_closed_standard_streams_are_reopened_on_the_null_device():
    # A windowed Windows exe starts like this; llama-cpp-python then dup()s fds 1 and 2.
    path = str(ROOT / "packaging" / "launcher.py")
    code = (
        "import os, sys, importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('l', {path!r})\n"
        "l = importlib.util.module_from_spec(spec); spec.loader.exec_module(l)\n"
        "os.close(1); os.close(2); sys.stdout = sys.stderr = None\n"
        "l._ensure_std_streams()\n"
        "os.dup(1); os.dup(2); print('ok'); print('ok', file=sys.stderr)\n"
        "os._exit(0 if os.fstat(1) and sys.stdout is not None else 3)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_release_workflow_builds_and_smoke_tests_every_os():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert "workflow_dispatch" in triggers and "push" in triggers
    build = workflow["jobs"]["build"]
    oses = {m["os"] for m in build["strategy"]["matrix"]["include"]}
    assert {"windows-latest", "macos-14"} <= oses and any(o.startswith("ubuntu") for o in oses)
    metal = next(m for m in build["strategy"]["matrix"]["include"] if m["os"] == "macos-14")
    assert "-DGGML_METAL=on" in metal["cmake_args"]
    assert all(
        "-DGGML_NATIVE=OFF" in m["cmake_args"] for m in build["strategy"]["matrix"]["include"]
    )
    runs = "\n".join(step.get("run", "") for step in build["steps"])
    for script in ("build_linux.sh", "build_windows.sh", "build_macos.sh"):
        assert f"packaging/{script}" in runs
        assert (ROOT / "packaging" / script).is_file()
    assert "--self-test" in runs
    assert any("upload-artifact" in step.get("uses", "") for step in build["steps"])
    for script in ("build_linux.sh", "build_windows.sh", "build_macos.sh"):
        assert "--self-test" in (ROOT / "packaging" / script).read_text(encoding="utf-8")
