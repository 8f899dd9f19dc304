"""``--self-test``: proves an installed or frozen app works on this machine.

Starts Qt offscreen and builds the main window, opens a PDF it generates, loads the demo
model, runs one real memory step, writes and reads the database, downloads a GGUF from a
loopback server and asks a chat server there, and prints a JSON report. Exit code 0 when
every check passed, 1 otherwise. Uses a temporary home folder, so the user's data is
never touched.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _describe(value: Any) -> Any:
    """What the JSON report shows of a check's result: objects as a few plain facts."""
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    facts: dict[str, Any] = {"type": type(value).__name__}
    identity = getattr(value, "identity", None)  # a backend: which model, from where
    for source, keys in ((value, ("title", "kind", "page_count")), (identity, ("name", "path"))):
        for key in keys:
            fact = getattr(source, key, None)
            if isinstance(fact, (str, int, float)):
                facts[key] = fact
    return facts


def _check(report: dict[str, Any], name: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    try:
        detail = fn()
        report["checks"][name] = {"ok": True, "detail": _describe(detail)}
        return detail
    except Exception as error:  # noqa: BLE001 - the report says what failed
        report["checks"][name] = {
            "ok": False,
            "error": f"{type(error).__name__}: {error}",
            "trace": traceback.format_exc(limit=5),
        }
        return None
    finally:
        report["checks"][name]["seconds"] = round(time.perf_counter() - started, 3)


def run_self_test() -> int:
    home = Path(tempfile.mkdtemp(prefix="qwenlong-selftest-"))
    os.environ["QWENLONG_READER_HOME"] = str(home)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "frozen": bool(getattr(sys, "frozen", False)),
        "checks": {},
    }

    def qt_window() -> str:
        from app.gui.main import make_app
        from app.gui.window import MainWindow

        app = make_app()
        window = MainWindow()
        window.show()
        app.processEvents()
        title = window.windowTitle()
        window.close()
        return f"{title} on {app.platformName()}"

    def pdf() -> Any:
        import pymupdf

        from app.documents.ingest import load_document

        path = home / "selftest.pdf"
        doc = pymupdf.open()
        for i in range(2):
            doc.new_page().insert_text((72, 72), f"Self-test page {i + 1}: the code word is AMBER.")
        doc.save(path)
        document = load_document(path)
        assert document.page_count == 2 and "AMBER" in document.text
        return document

    def llama() -> Any:
        from app.llm.factory import open_backend
        from app.settings import Settings

        return open_backend(Settings(n_ctx=2048, max_new_tokens=48))

    def llama_build() -> dict[str, Any]:
        # What this llama.cpp can do and what it will use here (CUDA compiled in, GPU seen,
        # driver new enough): informative, a CPU fallback is not a failure. The build
        # scripts read "backends" to prove an edition has the backend it is named after.
        from app.llm.build_info import build_report

        return build_report().as_dict()

    def network() -> dict[str, Any]:
        # The download and remote-server stack in this bundle (huggingface_hub, httpx2,
        # the TLS context, our checks): a GGUF downloaded from, and a chat server probed
        # on, a loopback server. Nothing leaves the machine.
        import hashlib
        import struct
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from app.llm.download import download_model
        from app.llm.httpclient import tls_context
        from app.llm.remote import RemoteBackend

        key, arch = b"general.architecture", b"selftest"
        gguf = b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, len(key)) + key
        gguf += struct.pack("<IQ", 8, len(arch)) + arch  # one string value: a whole header
        routes = {"/v1/models": b'{"data": [{"id": "selftest"}]}', "/m/selftest.gguf": gguf}

        class Loopback(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self.answer(send_body=False)

            def do_GET(self) -> None:
                self.answer(send_body=True)

            def do_POST(self) -> None:  # /tokenize: absent here, the backend estimates
                self.answer(send_body=True)

            def answer(self, send_body: bool) -> None:
                body = routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Loopback)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            result = download_model(
                url=f"{base}/m/selftest.gguf", sha256=hashlib.sha256(gguf).hexdigest(), proxy=""
            )
            remote = RemoteBackend(base, retries=0)
            remote.close()
        finally:
            server.shutdown()
            server.server_close()
        assert result.verified_by == "--sha256" and result.path.read_bytes() == gguf
        return {
            "downloaded": result.size,
            "remote_model": remote.model,
            "trusted_cas": len(tls_context().get_ca_certs()),
        }

    def version() -> str:
        # The bundle must carry the app's and llama-cpp-python's metadata: runs record both.
        from app.version import app_version, software

        found = app_version()
        assert found, "no qwenlong-reader metadata: the version would be blank"
        assert software()["llama_cpp_python"], "no llama-cpp-python version to record"
        return found

    _check(report, "app_version", version)
    build = _check(report, "llama_build", llama_build)
    if build is not None:
        report["build"] = build
        print(f"llama.cpp: {build['message']}", file=sys.stderr)  # the notice, for people
    window = _check(report, "qt_window", qt_window)
    document = _check(report, "pdf_ingest", pdf)
    backend = _check(report, "model_load", llama)
    _check(report, "download_and_remote", network)

    def memory_step() -> dict[str, Any]:
        from app.agent.engine import Engine
        from app.agent.events import RunFinished, StepFinished
        from app.llm.backend import CancelToken
        from app.records import Mode, Question
        from app.settings import Settings
        from app.store.database import open_database

        store = open_database()
        engine = Engine(backend, store, Settings(n_ctx=2048, max_new_tokens=48))
        doc_id = store.add_document(document)
        session = store.create_session(doc_id, "self-test")
        asked = "What is the code word?"
        plan = engine.plan(document, Question(asked, asked, "", Mode.MEMORY_AGENT))
        events = list(engine.ask(document, doc_id, session, plan, CancelToken()))
        steps = [e for e in events if isinstance(e, StepFinished)]
        assert steps and isinstance(events[-1], RunFinished), events[-1]
        run = open_database().get_run(events[-1].run_id)  # a second connection reads it back
        assert len(run.steps) == len(steps) and run.answer is not None
        return {"steps": len(steps), "tokens": sum(s.step.stats.completion_tokens for s in steps)}

    if document is not None and backend is not None:
        _check(report, "memory_step_and_database", memory_step)
    report["ok"] = all(c["ok"] for c in report["checks"].values()) and window is not None
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1
