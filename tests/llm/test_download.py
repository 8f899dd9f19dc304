"""Model download against a real HTTP server on loopback: Range resume, a server that
ignores Range, a cut connection, checksums (given, and announced in ETag/X-Linked-Etag
through a redirect), HTTP errors, cancel, disk space, and the ``models --download`` CLI."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import io
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app import paths
from app.errors import ModelError, UserError
from app.llm import download, gguf
from app.llm.download import (
    CATALOGUE,
    DownloadCancelled,
    DownloadProgress,
    download_model,
)
from app.llm.models_cli import add_models_command, cmd_models
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe

NAME = "tiny-qwen3moe.Q8_0.gguf"
TOKEN = "hf_secret_test_token_123"


@dataclass
class Served:
    """What the server sends for /files/<name> (and /resolve/<name>, a 302 to it)."""

    body: bytes = b""
    mode: str = "range"  # range | ignore-range | no-length | 404 | 403 | stall
    etag: str = ""  # sent as ETag on /files/, quoted
    linked_etag: str = ""  # sent as X-Linked-Etag on the /resolve/ redirect
    drop_after: int | None = None  # close the connection after this many body bytes, once
    interrupt_after: int | None = None  # SIGINT this process after this many body bytes
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        s: Served = self.server.served
        s.requests.append(
            {
                "path": self.path,
                "range": self.headers.get("Range"),
                "auth": self.headers.get("Authorization"),
            }
        )
        if s.mode == "stall":
            s.release.wait(10)
            return
        if self.path.startswith("/resolve/"):
            self.send_response(302)
            self.send_header("Location", "/files/" + self.path.removeprefix("/resolve/"))
            if s.linked_etag:
                self.send_header("X-Linked-Etag", f'"{s.linked_etag}"')
            self.send_header("X-Linked-Size", str(len(s.body)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if s.mode in ("404", "403") or not self.path.startswith("/files/"):
            code = 403 if s.mode == "403" else 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # The client may hang up (a cancelled download): nothing to report then.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(s)

    def _answer(self, s: Served) -> None:
        body, start = s.body, 0
        wanted = self.headers.get("Range")
        if wanted and s.mode == "range":
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if s.etag:
            self.send_header("ETag", f'"{s.etag}"')
        if s.mode == "no-length":
            self.send_header("Connection", "close")  # the end of the body is the close
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._send(s, body[start:])

    def _send(self, s: Served, data: bytes) -> None:
        if s.drop_after is not None:
            cut, s.drop_after = s.drop_after, None  # once
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if s.interrupt_after is not None:
            cut, s.interrupt_after = s.interrupt_after, None
            self.wfile.write(data[:cut])
            self.wfile.flush()
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in the terminal would
            time.sleep(0.3)
            data = data[cut:]
        self.wfile.write(data)


@dataclass
class Server:
    base: str
    served: Served

    def url(self, name: str = NAME, prefix: str = "files") -> str:
        return f"{self.base}/{prefix}/{name}"

    @property
    def ranges(self) -> list[str | None]:
        return [r["range"] for r in self.served.requests]


@pytest.fixture(scope="module")
def tiny_bytes(tmp_path_factory) -> bytes:
    return write_tiny_qwen3moe(tmp_path_factory.mktemp("tiny") / "t.gguf").read_bytes()


@pytest.fixture
def server(tiny_bytes) -> Iterator[Server]:
    served = Served(body=tiny_bytes)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.served = served  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", served)
    served.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """~400 KB served in 16 KB blocks: many blocks, as a real download has."""
    monkeypatch.setattr(download, "BLOCK_SIZE", 16 * 1024)
    monkeypatch.setattr(download, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv(download.REPO_ENV, raising=False)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def models() -> Path:
    return paths.models_dir()


def leftovers() -> list[str]:
    return sorted(p.name for p in models().iterdir())


# -- the happy paths ----------------------------------------------------------------------
def test_download_verified_by_etag_with_progress(server, tiny_bytes):
    server.served.etag = sha(tiny_bytes)
    seen: list[DownloadProgress] = []
    result = download_model(url=server.url(), progress=seen.append)
    assert result.path == models() / NAME
    assert result.path.read_bytes() == tiny_bytes
    assert (result.sha256, result.verified_by) == (sha(tiny_bytes), "server ETag")
    assert (result.downloaded, result.resumed_from, result.already_present) == (
        len(tiny_bytes),
        0,
        False,
    )
    assert leftovers() == [NAME]
    assert server.ranges == [None]
    done = [p.done for p in seen]
    assert done == sorted(done) and done[-1] == len(tiny_bytes)
    assert len(seen) > 10 and all(p.total == len(tiny_bytes) for p in seen)
    assert all(p.rate >= 0 for p in seen) and seen[-1].fraction == 1.0
    assert "100%" in seen[-1].describe()
    # `models` lists it without hashing it again: the download seeded the hash cache
    before = gguf.hash_stats["bytes_hashed"]
    assert gguf.file_sha256(result.path) == sha(tiny_bytes)
    assert gguf.hash_stats["bytes_hashed"] == before
    # a second call finds it there and downloads nothing
    again = download_model(url=server.url())
    assert again.already_present and len(server.served.requests) == 1


def test_given_sha256_and_no_checksum_at_all(server, tiny_bytes):
    result = download_model(url=server.url(), sha256=sha(tiny_bytes).upper())
    assert result.verified_by == "--sha256"
    (models() / NAME).unlink()
    result = download_model(url=server.url())  # the server announces nothing
    assert (result.sha256, result.verified_by) == (sha(tiny_bytes), "")


def test_redirect_x_linked_etag_and_token_not_forwarded(server, tiny_bytes, caplog):
    """Hugging Face's shape: /resolve/ answers 302 to the CDN with X-Linked-Etag; the
    token goes to the first host only and never into the log."""
    caplog.set_level(logging.DEBUG, logger="app")
    server.served.linked_etag = sha(tiny_bytes)
    server.served.etag = "0" * 32  # an MD5-like CDN ETag: not a SHA-256, ignored
    result = download_model(url=server.url(prefix="resolve"), token=TOKEN)
    assert result.verified_by == "server ETag"
    assert [(r["path"].split("/")[1], r["auth"]) for r in server.served.requests] == [
        ("resolve", f"Bearer {TOKEN}"),
        ("files", None),
    ]
    assert caplog.records and TOKEN not in caplog.text


def test_hf_token_from_env_goes_only_to_hugging_face(server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    download_model(url=server.url())
    assert server.served.requests[0]["auth"] is None
    assert download._is_hf("https://huggingface.co/a/b/resolve/main/x.gguf")
    assert download._is_hf("https://cdn-lfs.hf.co/x")
    assert not download._is_hf("https://huggingface.co.evil.example/x")


def test_no_content_length_download_is_checked_whole(server, tiny_bytes):
    server.served.mode = "no-length"
    result = download_model(url=server.url(), sha256=sha(tiny_bytes))
    assert result.path.read_bytes() == tiny_bytes


def test_no_content_length_cut_short_is_incomplete_and_kept(server, tiny_bytes):
    server.served.mode = "no-length"
    server.served.drop_after = 100_000
    with pytest.raises(ModelError, match="incomplete") as caught:
        download_model(url=server.url())
    assert "kept in" in caught.value.hint
    assert leftovers() == [NAME + ".part"]


# -- resume ------------------------------------------------------------------------------
def test_cut_connection_then_resume_with_range(server, tiny_bytes):
    server.served.drop_after = 100_000
    with pytest.raises(UserError, match="connection to 127.0.0.1 was lost") as caught:
        download_model(url=server.url(), sha256=sha(tiny_bytes))
    assert "run the same download again" in caught.value.hint
    part = models() / (NAME + ".part")
    assert part.stat().st_size == 100_000
    assert leftovers() == [NAME + ".part"]

    phases: list[str] = []
    result = download_model(
        url=server.url(), sha256=sha(tiny_bytes), progress=lambda p: phases.append(p.phase)
    )
    assert server.ranges == [None, "bytes=100000-"]
    assert (result.resumed_from, result.downloaded) == (100_000, len(tiny_bytes) - 100_000)
    assert result.path.read_bytes() == tiny_bytes
    assert result.verified_by == "--sha256"  # the hash covers the kept part too
    assert phases[0] == "checking" and phases[-1] == "downloading"
    assert leftovers() == [NAME]


def test_server_ignoring_range_restarts_cleanly(server, tiny_bytes):
    part = models() / (NAME + ".part")
    part.write_bytes(b"GGUF" + b"\xff" * 50_000)  # not even the right bytes: all replaced
    server.served.mode = "ignore-range"
    server.served.etag = sha(tiny_bytes)
    result = download_model(url=server.url())
    assert server.ranges == ["bytes=50004-"]
    assert result.resumed_from == 0 and result.downloaded == len(tiny_bytes)
    assert result.path.read_bytes() == tiny_bytes
    assert leftovers() == [NAME]


def test_part_already_complete_gets_416_and_is_finished(server, tiny_bytes):
    (models() / (NAME + ".part")).write_bytes(tiny_bytes)
    result = download_model(url=server.url(), sha256=sha(tiny_bytes))
    assert server.ranges == [f"bytes={len(tiny_bytes)}-"]
    assert (result.downloaded, result.resumed_from) == (0, len(tiny_bytes))
    assert result.path.read_bytes() == tiny_bytes


def test_part_longer_than_the_file_restarts(server, tiny_bytes):
    (models() / (NAME + ".part")).write_bytes(tiny_bytes + b"junk")
    result = download_model(url=server.url(), sha256=sha(tiny_bytes))
    assert server.ranges == [f"bytes={len(tiny_bytes) + 4}-", None]
    assert result.path.read_bytes() == tiny_bytes


# -- cancel ------------------------------------------------------------------------------
def test_cancel_from_the_progress_callback_keeps_the_part(server, tiny_bytes):
    stop = threading.Event()

    def progress(p: DownloadProgress) -> None:
        if p.done >= 64 * 1024:
            stop.set()

    with pytest.raises(DownloadCancelled) as caught:
        download_model(url=server.url(), progress=progress, cancel=stop)
    part = models() / (NAME + ".part")
    assert caught.value.part == part
    assert caught.value.done == part.stat().st_size == 64 * 1024  # stopped at once
    assert caught.value.total == len(tiny_bytes)
    result = download_model(url=server.url(), sha256=sha(tiny_bytes))
    assert server.ranges[-1] == f"bytes={64 * 1024}-"
    assert result.path.read_bytes() == tiny_bytes


def test_cancel_token_works_too(server):
    from app.llm.backend import CancelToken

    token = CancelToken()
    token.cancel()
    with pytest.raises(DownloadCancelled):
        download_model(url=server.url(), cancel=token)
    assert server.served.requests == []  # cancelled before connecting


# -- failures ----------------------------------------------------------------------------
def test_wrong_given_checksum_renames_to_corrupt(server):
    with pytest.raises(ModelError, match="is corrupt") as caught:
        download_model(url=server.url(), sha256="ab" * 32)
    assert "the --sha256 you gave" in caught.value.message
    assert "download again" in caught.value.hint
    assert leftovers() == [NAME + ".corrupt"]


def test_wrong_announced_checksum_renames_to_corrupt(server, tiny_bytes):
    server.served.linked_etag = sha(tiny_bytes + b"other")
    with pytest.raises(ModelError, match="announced"):
        download_model(url=server.url(prefix="resolve"))
    assert leftovers() == [NAME + ".corrupt"]


def test_not_a_gguf_never_lands(server):
    server.served.body = b"<!doctype html><html>Log in to continue</html>" * 1000
    with pytest.raises(ModelError, match="did not send a GGUF") as caught:
        download_model(url=server.url())
    assert "browser" in caught.value.hint and "Import" in caught.value.hint
    assert leftovers() == []


def test_a_tiny_non_gguf_is_caught_at_the_end(server):
    server.served.body = b"no"
    with pytest.raises(ModelError, match="not a GGUF model file"):
        download_model(url=server.url())
    assert leftovers() == [NAME + ".corrupt"]


def test_http_404(server):
    server.served.mode = "404"
    with pytest.raises(UserError, match="HTTP 404") as caught:
        download_model(url=server.url())
    assert download.REPO_ENV in caught.value.hint and "--url" in caught.value.hint
    assert leftovers() == []


def test_http_403_gated(server):
    server.served.mode = "403"
    with pytest.raises(UserError, match="HTTP 403") as caught:
        download_model(url=server.url())
    assert "gated" in caught.value.message
    assert "browser" in caught.value.hint and "--import" in caught.value.hint
    with pytest.raises(UserError, match="with the access token") as caught:
        download_model(url=server.url(), token=TOKEN)
    assert TOKEN not in str(caught.value)


def test_timeout(server):
    server.served.mode = "stall"
    started = time.monotonic()
    with pytest.raises(UserError, match=r"did not answer within 0.3 s"):
        download_model(url=server.url(), timeout=0.3)
    assert time.monotonic() - started < 5


def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(UserError, match="refused the connection"):
        download_model(url=f"http://127.0.0.1:{port}/files/{NAME}", timeout=2)


def test_dns_failure(monkeypatch):
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(UserError, match="Cannot find huggingface.co: no network") as caught:
        download_model("Q4_K_M")
    assert "Import" in caught.value.hint


def test_disk_space_checked_before_connecting(monkeypatch):
    def full(path: Any) -> Any:
        return type("Usage", (), {"total": 10**12, "used": 10**12, "free": 2 * 10**9})()

    monkeypatch.setattr(download.shutil, "disk_usage", full)
    with pytest.raises(UserError, match="Not enough disk space") as caught:
        download_model("q4_k_m")  # no network is touched: the catalogue knows the size
    assert "18.7 GB" in caught.value.message and "2.0 GB free" in caught.value.message
    assert leftovers() == []


def test_disk_space_checked_against_the_servers_size(server, tiny_bytes, monkeypatch):
    def full(path: Any) -> Any:
        return type("Usage", (), {"total": 10**9, "used": 10**9, "free": 1000})()

    monkeypatch.setattr(download.shutil, "disk_usage", full)
    with pytest.raises(UserError, match="Not enough disk space"):
        download_model(url=server.url())
    assert leftovers() == []


def test_bad_arguments():
    with pytest.raises(UserError, match="Unknown quantization"):
        download_model("Q3_K_S")
    with pytest.raises(UserError, match="not a SHA-256"):
        download_model("Q4_K_M", sha256="abc")
    with pytest.raises(UserError, match="does not end in a .gguf"):
        download_model(url="https://huggingface.co/owner/repo")
    with pytest.raises(UserError, match="Not a download URL"):
        download_model(url="file:///etc/passwd.gguf")


def test_catalogue_urls(monkeypatch):
    entry = CATALOGUE["Q4_K_M"]
    assert entry.sha256 == ""  # none invented: verified against the server's or the user's
    assert entry.url() == (
        f"https://huggingface.co/{download.DEFAULT_REPO}/resolve/main/{entry.file_name}"
    )
    monkeypatch.setenv(download.REPO_ENV, "someone/QwenLong-GGUF")
    assert entry.url().startswith("https://huggingface.co/someone/QwenLong-GGUF/resolve/main/")
    assert set(CATALOGUE) == {"Q4_K_M", "Q5_K_M", "Q8_0"}


def test_header_parsing():
    assert download._content_range("bytes 100-199/1000") == (100, 1000)
    assert download._content_range("bytes */1000") == (None, 1000)
    assert download._content_range("garbage") == (None, None)
    digest = "a" * 64
    assert download._sha_from_headers([{"ETag": f'W/"{digest.upper()}"'}]) == digest
    assert download._sha_from_headers([{"ETag": '"' + "a" * 40 + '"'}]) == ""  # a git sha1
    assert download._safe_url("https://u:p@cdn.example:8443/f.gguf?X-Sig=s") == (
        "https://cdn.example:8443/f.gguf"
    )


# -- the CLI -----------------------------------------------------------------------------
def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_models_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(["models", *argv])


def test_cli_download(server, tiny_bytes, capsys):
    out = io.StringIO()
    code = cmd_models(
        parse(
            "--download", "q8_0", "--url", server.url(), "--sha256", sha(tiny_bytes), "--no-hash"
        ),
        out,
    )
    assert code == 0
    text = out.getvalue()
    assert f"Downloaded {download.human_size(len(tiny_bytes))} to {models() / NAME}" in text
    assert f"sha256:   {sha(tiny_bytes)} (verified against --sha256)" in text
    assert "Model:    " in text and "qwen3moe" in text
    assert f"* {NAME}" in text  # then the usual listing
    err = capsys.readouterr().err
    assert "\r" in err and "100%" in err


def test_cli_ctrl_c_keeps_the_part(server, tiny_bytes):
    server.served.interrupt_after = 100_000
    out = io.StringIO()
    previous = signal.getsignal(signal.SIGINT)
    assert cmd_models(parse("--url", server.url()), out) == 130
    assert signal.getsignal(signal.SIGINT) is previous  # restored
    text = out.getvalue()
    assert "Cancelled." in text and "run the same command again to resume" in text
    part = models() / (NAME + ".part")
    kept = part.stat().st_size  # the signal arrives while the client is reading: stops soon
    assert 0 < kept < len(tiny_bytes)
    assert cmd_models(parse("--url", server.url(), "--no-hash"), io.StringIO()) == 0
    assert server.ranges[-1] == f"bytes={kept}-"
    assert (models() / NAME).read_bytes() == tiny_bytes


def test_cli_sha256_alone_is_an_error():
    with pytest.raises(UserError, match="--sha256 checks a download"):
        cmd_models(parse("--sha256", "a" * 64), io.StringIO())


def test_one_download_per_file(server, tiny_bytes):
    errors: list[str] = []

    def progress(p: DownloadProgress) -> None:
        if not errors:
            with pytest.raises(UserError) as caught:
                download_model(url=server.url())
            errors.append(caught.value.message)

    download_model(url=server.url(), progress=progress)
    assert errors == [f"{NAME} is already being downloaded."]
    assert (models() / NAME).read_bytes() == tiny_bytes


def test_already_present_with_a_different_checksum(server, tiny_bytes):
    (models() / NAME).write_bytes(tiny_bytes)
    assert download_model(url=server.url(), sha256=sha(tiny_bytes)).already_present
    with pytest.raises(ModelError, match="already in the models folder but its SHA-256"):
        download_model(url=server.url(), sha256="cd" * 32)
    assert server.served.requests == []
