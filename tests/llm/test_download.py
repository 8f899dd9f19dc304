"""Model downloads through huggingface_hub against a small fake Hub on loopback: it lists
repositories (/api/models/...) with each file's size and SHA-256, and serves
/{repo}/resolve/main/{file} (HEAD and GET, Range, ETag / X-Linked-Etag / X-Repo-Commit /
X-Linked-Size), gated repositories (401 GatedRepo) and missing ones (401 RepoNotFound),
as huggingface.co does. HF_ENDPOINT points the library at it and HF_HOME is a temporary
folder, so no test reaches the real network."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.server
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app import paths
from app.cli.models import add_models_command, cmd_models
from app.errors import ModelError, UserError
from app.llm import download
from app.llm.backend import CancelToken
from app.llm.download import download_model
from app.llm.download_errors import REPO_ENV
from app.llm.download_progress import DownloadCancelled, DownloadProgress
from app.llm.hub_client import BLOCK_SIZE
from app.llm.model_sources import KNOWN_REPOS, pick_file
from app.units import human_size
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe

from .conftest import free_port

COMMIT = "a" * 40
TOKEN = "hf_secret_test_token_123"
# The second known publisher has the file, under its own naming; the first has none.
REPO = KNOWN_REPOS[1]
NAME = "Tongyi-Zhiwen_QwenLong-L1.5-30B-A3B-Q4_K_M.gguf"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FakeHub:
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)
    listed_sha: dict[str, str] = field(default_factory=dict)  # a wrong SHA-256 to list
    drop_after: int | None = None  # cut the next GET after this many bytes
    then_status: list[int] = field(default_factory=list)  # statuses for the GETs after that
    ignore_range: bool = False
    trickle_s: float = 0.0  # pause between 16 KB blocks
    stall_after: int | None = None  # the next GET sends this many bytes, then nothing
    stall_listing: bool = False  # the file listing never answers
    stalled: Any = field(default_factory=threading.Event)  # set when a stall begins
    unstall: Any = field(default_factory=threading.Event)  # ends the stalls
    requests: list[dict[str, Any]] = field(default_factory=list)
    base: str = ""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.answer(head=True)

    def do_GET(self) -> None:
        self.answer(head=False)

    def reply(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer(self, head: bool) -> None:
        hub: FakeHub = self.server.hub
        path = self.path.split("?")[0]
        hub.requests.append(
            {
                "method": self.command,
                "path": path,
                "range": self.headers.get("Range"),
                "auth": self.headers.get("Authorization"),
            }
        )
        if path.startswith("/api/models/"):
            if hub.stall_listing:
                hub.stalled.set()
                hub.unstall.wait(30)
                return
            repo = path.removeprefix("/api/models/").removesuffix("/revision/main")
            return self.listing(hub, repo)
        owner, name, rest = (path.lstrip("/").split("/", 2) + ["", ""])[:3]
        repo, prefix = f"{owner}/{name}", "resolve/main/"
        files = hub.repos.get(repo)
        if files is None or not rest.startswith(prefix):
            return self.reply(404, {"X-Error-Code": "RepoNotFound"})
        if repo in hub.gated:
            return self.reply(401, {"X-Error-Code": "GatedRepo"})
        body = files.get(rest.removeprefix(prefix))
        if body is None:
            return self.reply(404, {"X-Error-Code": "EntryNotFound"})
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.file(hub, body, head)

    def listing(self, hub: FakeHub, repo: str) -> None:
        if repo in hub.gated:
            data = {"error": "Access to model is restricted."}
            return self.reply(401, {"X-Error-Code": "GatedRepo"}, json.dumps(data).encode())
        if repo not in hub.repos:
            return self.reply(401, {"X-Error-Code": "RepoNotFound"}, b'{"error": "not found"}')
        siblings = [
            {
                "rfilename": name,
                "size": len(body),
                "blobId": "b" * 40,
                "lfs": {
                    "size": len(body),
                    "sha256": hub.listed_sha.get(name, sha(body)),
                    "pointerSize": 134,
                },
            }
            for name, body in hub.repos[repo].items()
        ]
        data = {"id": repo, "modelId": repo, "sha": COMMIT, "private": False, "siblings": siblings}
        self.reply(200, {"Content-Type": "application/json"}, json.dumps(data).encode())

    def file(self, hub: FakeHub, body: bytes, head: bool) -> None:
        headers = {
            "ETag": f'"{sha(body)}"',
            "X-Linked-Etag": f'"{sha(body)}"',
            "X-Repo-Commit": COMMIT,
            "X-Linked-Size": str(len(body)),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if head:
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return
        if hub.then_status and hub.drop_after is None:
            return self.reply(hub.then_status.pop(0), {})
        start = 0
        wanted = self.headers.get("Range")
        if wanted and not hub.ignore_range:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        data = body[start:]
        if hub.stall_after is not None:
            cut, hub.stall_after = hub.stall_after, None
            self.wfile.write(data[:cut])
            self.wfile.flush()
            hub.stalled.set()
            hub.unstall.wait(30)  # the connection stays open and silent
            self.close_connection = True
            return
        if hub.drop_after is not None:
            cut, hub.drop_after = hub.drop_after, None
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        for i in range(0, len(data), 16 * 1024):
            self.wfile.write(data[i : i + 16 * 1024])
            if hub.trickle_s:
                self.wfile.flush()
                time.sleep(hub.trickle_s)


@pytest.fixture(scope="module")
def tiny_bytes(tmp_path_factory) -> bytes:
    return write_tiny_qwen3moe(tmp_path_factory.mktemp("tiny") / "t.gguf").read_bytes()


@pytest.fixture(autouse=True)
def offline_hub(tmp_path, monkeypatch):
    """No test reaches huggingface.co: HF_ENDPOINT is a closed port unless a test starts
    the fake Hub, and HF_HOME (a saved token, caches) is empty."""
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for name in ("HF_TOKEN", REPO_ENV, "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(download, "PROGRESS_INTERVAL_S", 0.0)


@pytest.fixture
def hub(tiny_bytes, monkeypatch) -> Iterator[FakeHub]:
    fake = FakeHub(
        repos={
            REPO: {
                NAME: tiny_bytes,
                "Tongyi-Zhiwen_QwenLong-L1.5-30B-A3B-Q8_0.gguf": tiny_bytes[:1000],
                "README.md": b"# GGUF\n",
            }
        }
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.hub = fake  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    fake.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", fake.base)
    yield fake
    httpd.shutdown()
    httpd.server_close()


def models() -> Path:
    return paths.models_dir()


def file_gets(hub: FakeHub) -> list[dict[str, Any]]:
    return [r for r in hub.requests if r["method"] == "GET" and "/resolve/" in r["path"]]


# -- finding the file ---------------------------------------------------------------------
def test_pick_file_finds_the_quantization_in_any_naming():
    files = [
        "README.md",
        "QwenLong-L1.5-30B-A3B.Q4_K_S.gguf",
        "QwenLong-L1.5-30B-A3B.Q4_K_M.gguf",
        "mmproj-Q4_K_M.gguf",
        "Q8_0/QwenLong-Q8_0-00001-of-00002.gguf",
    ]
    assert pick_file(files, "Q4_K_M") == "QwenLong-L1.5-30B-A3B.Q4_K_M.gguf"
    assert pick_file(files, "q4_k_s") == "QwenLong-L1.5-30B-A3B.Q4_K_S.gguf"
    assert pick_file(files, "Q8_0") is None  # split files only
    assert pick_file(["sub/x-Q5_K_M.gguf"], "Q5_K_M") == "sub/x-Q5_K_M.gguf"


def test_tries_the_known_publishers_in_order_and_verifies_the_listed_sha(hub, tiny_bytes):
    seen: list[DownloadProgress] = []
    result = download_model("Q4_K_M", progress=seen.append)
    assert result.path == models() / NAME and result.path.read_bytes() == tiny_bytes
    assert (result.repo, result.sha256, result.verified_by) == (REPO, sha(tiny_bytes), "Hub")
    assert (result.downloaded, result.resumed_from, result.already_present) == (
        len(tiny_bytes),
        0,
        False,
    )
    listed = [r["path"] for r in hub.requests if r["path"].startswith("/api/models/")]
    assert listed == [f"/api/models/{KNOWN_REPOS[0]}", f"/api/models/{REPO}"]
    assert seen[0].phase == "looking" and seen[-1].done == seen[-1].total == len(tiny_bytes)
    assert not list(models().glob("*.part*"))
    # Nothing but the listing, the file's HEAD and its GET: no telemetry, no registry.
    assert {r["path"].split("/")[1] for r in hub.requests} <= {"api", *REPO.split("/")[:1]}
    assert all(r["auth"] is None for r in hub.requests)  # no token set: none sent


def test_a_repository_the_user_typed(hub, tiny_bytes):
    hub.repos["someone/Other-GGUF"] = {"Q8_0/model-Q8_0.gguf": tiny_bytes}
    result = download_model("Q8_0", repo="someone/Other-GGUF")
    assert result.path == models() / "model-Q8_0.gguf" and result.repo == "someone/Other-GGUF"
    with pytest.raises(UserError, match="not a Hugging Face repository name"):
        download_model("Q8_0", repo="https://example.com/x")


def test_no_publisher_has_it(hub):
    with pytest.raises(UserError) as error:
        download_model("Q5_K_M")
    message = str(error.value)
    assert "No Q5_K_M GGUF" in message and f"{REPO} (no Q5_K_M file)" in message
    assert f"{KNOWN_REPOS[0]} (not found)" in message and "owner/name" in message
    assert error.value.exit_code == 2


def test_a_gated_repository_says_how_to_get_in(hub, monkeypatch):
    hub.repos = {"gate/Keeper-GGUF": {"k-Q4_K_M.gguf": b"GGUF"}}
    hub.gated = {"gate/Keeper-GGUF"}
    with pytest.raises(UserError, match="gated") as error:
        download_model("Q4_K_M", repo="gate/Keeper-GGUF")
    assert "HF_TOKEN" in str(error.value)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(UserError, match="refused the access token"):
        download_model("Q4_K_M", repo="gate/Keeper-GGUF")
    assert hub.requests[-1]["auth"] == f"Bearer {TOKEN}"


def test_hf_token_goes_to_the_hub_only(hub, tiny_bytes, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    download_model("Q4_K_M")
    assert {r["auth"] for r in hub.requests} == {f"Bearer {TOKEN}"}
    # A file on another server (another port): the token stays home.
    other = FakeHub(repos={"x/y": {"f.Q4_K_M.gguf": tiny_bytes}})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.hub = other  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/x/y/resolve/main/f.Q4_K_M.gguf"
        result = download_model(url=url)
        assert result.verified_by == "server ETag" and result.path.read_bytes() == tiny_bytes
        assert other.requests and all(r["auth"] is None for r in other.requests)
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- resume, checksum, cancel -------------------------------------------------------------
def test_a_dropped_connection_is_resumed_in_place(hub, tiny_bytes):
    block = BLOCK_SIZE  # http_get writes whole blocks: the tail of one is fetched again
    hub.drop_after = 3 * block + 1000
    result = download_model("Q4_K_M")
    assert result.path.read_bytes() == tiny_bytes and result.verified_by == "Hub"
    assert [r["range"] for r in file_gets(hub)] == [None, f"bytes={3 * block}-"]


def test_a_cut_download_is_kept_and_resumed_later(hub, tiny_bytes):
    kept = 2 * BLOCK_SIZE
    hub.drop_after, hub.then_status = kept + 5000, [503]
    with pytest.raises(UserError, match=r"HTTP 503") as error:
        download_model("Q4_K_M")
    part = models() / (NAME + ".part")
    assert part.stat().st_size == kept and "kept in" in str(error.value)
    assert not (models() / NAME).exists()
    result = download_model("Q4_K_M")  # later, the Hub is back
    assert result.path.read_bytes() == tiny_bytes
    assert (result.resumed_from, result.downloaded) == (kept, len(tiny_bytes) - kept)
    assert file_gets(hub)[-1]["range"] == f"bytes={kept}-"
    assert result.sha256 == sha(tiny_bytes) and not part.exists()


def test_a_server_ignoring_range_restarts_cleanly(hub, tiny_bytes):
    part = models() / (NAME + ".part")
    models().mkdir(parents=True, exist_ok=True)
    part.write_bytes(tiny_bytes[:50_000])
    hub.ignore_range = True
    result = download_model("Q4_K_M")
    assert result.path.read_bytes() == tiny_bytes and result.sha256 == sha(tiny_bytes)


def test_a_checksum_mismatch_is_renamed_corrupt(hub):
    hub.listed_sha[NAME] = "cd" * 32
    with pytest.raises(ModelError, match="is corrupt") as error:
        download_model("Q4_K_M")
    assert "cd" * 32 in str(error.value) and "lists for it" in str(error.value)
    assert (models() / (NAME + ".corrupt")).exists() and not (models() / NAME).exists()


def test_a_given_sha256_wins(hub):
    with pytest.raises(ModelError, match="the --sha256 you gave"):
        download_model("Q4_K_M", sha256="ab" * 32)


def test_cancel_within_a_second_keeps_the_part_and_resumes(hub, tiny_bytes):
    hub.trickle_s = 0.03  # ~530 KB/s: a block takes half a second, the file a minute
    cancel = CancelToken()
    seen: list[int] = []

    def progress(p: DownloadProgress) -> None:
        seen.append(p.done)
        if p.done >= 64 * 1024 and not cancel.cancelled:
            threading.Timer(0.0, cancel.cancel).start()
            seen.append(-int(time.monotonic() * 1000))

    started = time.monotonic()
    with pytest.raises(DownloadCancelled) as stop:
        download_model("Q4_K_M", progress=progress, cancel=cancel)
    cancelled_at = -min(seen) / 1000
    assert time.monotonic() - cancelled_at < 1.0, "cancel took too long"
    part = models() / (NAME + ".part")
    assert stop.value.part == part and 0 < part.stat().st_size == stop.value.done
    assert stop.value.done < len(tiny_bytes) and time.monotonic() - started < 5
    hub.trickle_s = 0.0
    result = download_model("Q4_K_M")
    assert result.resumed_from == stop.value.done and result.path.read_bytes() == tiny_bytes


def test_cancel_reaches_a_stalled_connection(hub, tiny_bytes):
    """A server that stops sending mid-file sends no block to notice the cancel by:
    huggingface_hub would wait out its read timeout five times (minutes)."""
    blocks = 2 * BLOCK_SIZE
    hub.stall_after = blocks + 64 * 1024  # two whole blocks, then part of one, then nothing
    cancel, pressed = CancelToken(), []

    def press_once_silent() -> None:
        hub.stalled.wait(10)
        time.sleep(0.3)  # the read is blocked by now
        pressed.append(time.monotonic())
        cancel.cancel()

    threading.Thread(target=press_once_silent, daemon=True).start()
    with pytest.raises(DownloadCancelled) as stop:
        download_model("Q4_K_M", cancel=cancel, timeout=20)
    assert pressed and time.monotonic() - pressed[0] < 1.0, "the cancel waited for the read"
    hub.unstall.set()
    part = models() / (NAME + ".part")
    assert stop.value.part == part and part.stat().st_size == stop.value.done == blocks
    result = download_model("Q4_K_M")  # and it resumes from there
    assert result.resumed_from == blocks and result.path.read_bytes() == tiny_bytes


def test_cancel_while_the_hub_does_not_answer(hub):
    hub.stall_listing = True
    cancel = CancelToken()
    threading.Timer(0.5, cancel.cancel).start()
    started = time.monotonic()
    with pytest.raises(DownloadCancelled) as stop:
        download_model("Q4_K_M", cancel=cancel, timeout=20)
    hub.unstall.set()
    assert time.monotonic() - started < 1.5 and stop.value.part is None
    assert not list(models().glob("*.part"))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_disk_that_fills_up_mid_download_says_so(hub):
    """Something else fills the disk after the free-space check: every write fails with
    ENOSPC for real (/dev/full stands in for the .part file)."""
    part = models() / (NAME + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.symlink_to("/dev/full")
    with pytest.raises(UserError) as error:
        download_model("Q4_K_M")
    assert "disk filled up" in error.value.message and "continues" in error.value.hint
    assert "connection" not in error.value.message  # not blamed on the network
    assert not (models() / NAME).exists()


def test_disk_space_is_checked_before_downloading(hub, monkeypatch):
    monkeypatch.setattr(download.shutil, "disk_usage", lambda _: type("U", (), {"free": 1000})())
    with pytest.raises(UserError, match="Not enough disk space"):
        download_model("Q4_K_M")
    assert file_gets(hub) == []


def test_an_explicit_url_already_present_asks_nothing(hub, tiny_bytes):
    models().mkdir(parents=True, exist_ok=True)
    (models() / NAME).write_bytes(tiny_bytes)
    url = f"{hub.base}/{REPO}/resolve/main/{NAME}"
    assert download_model(url=url, sha256=sha(tiny_bytes)).already_present
    with pytest.raises(ModelError, match="already in the models folder but its SHA-256"):
        download_model(url=url, sha256="cd" * 32)
    assert hub.requests == []


# -- failures say what to do --------------------------------------------------------------
def test_a_missing_file_url(hub):
    url = f"{hub.base}/{REPO}/resolve/main/nope.Q4_K_M.gguf"
    with pytest.raises(UserError, match="HTTP 404|not found") as error:
        download_model(url=url)
    assert "nope.Q4_K_M.gguf was not found" in error.value.message  # the file, not the Hub


def test_nothing_answers():
    started = time.monotonic()
    with pytest.raises(UserError, match="refused the connection") as error:
        download_model("Q4_K_M")
    assert "proxy" in str(error.value) and time.monotonic() - started < 10
    assert error.value.exit_code == 6  # a network problem, as the README's exit codes say


def test_an_untrusted_certificate_names_the_system_store(untrusted_https):
    """An on-prem mirror behind a company CA the system does not trust yet."""
    with pytest.raises(UserError, match="secure connection to 127.0.0.1") as error:
        download_model(url=f"{untrusted_https}/owner/repo/resolve/main/m.Q4_K_M.gguf")
    assert "system's certificate store" in str(error.value)
    assert not list(models().glob("*.part"))  # nothing was fetched, nothing kept


def test_hf_hub_offline_is_honoured(hub, monkeypatch):
    download_model("Q4_K_M")  # imports huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    before = len(hub.requests)
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        download_model("Q8_0")
    assert len(hub.requests) == before
    assert constants.HF_HUB_DISABLE_TELEMETRY


def test_bad_arguments():
    with pytest.raises(UserError, match="Unknown quantization"):
        download_model("Q2_K")
    with pytest.raises(UserError, match="Nothing to download"):
        download_model()
    with pytest.raises(UserError, match="not a SHA-256"):
        download_model("Q4_K_M", sha256="xyz")
    with pytest.raises(UserError, match="does not end in a .gguf"):
        download_model(url="https://huggingface.co/owner/repo")


def test_one_download_per_file(hub, tiny_bytes):
    errors: list[str] = []

    def progress(p: DownloadProgress) -> None:
        if p.phase == "downloading" and not errors:
            with pytest.raises(UserError) as caught:
                download_model("Q4_K_M")
            errors.append(caught.value.message)

    download_model("Q4_K_M", progress=progress)
    assert errors == [f"{NAME} is already being downloaded."]


# -- the CLI ------------------------------------------------------------------------------
def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_models_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(["models", *argv])


def test_cli_download(hub, tiny_bytes, capsys):
    out = io.StringIO()
    assert cmd_models(parse("--download", "q4_k_m", "--no-hash"), out) == 0
    text = out.getvalue()
    assert f"Downloaded {human_size(len(tiny_bytes))} from " in text
    assert f" to {models() / NAME}" in text
    assert f"sha256:   {sha(tiny_bytes)} (verified against Hub)" in text
    assert "qwen3moe" in text
    assert "100%" in capsys.readouterr().err
