"""A real OpenAI-compatible server on loopback: llama-cpp-python's own, so the remote
backend is tested against the HTTP it will really meet. It serves the demo model for the
tests of what that model answers (identity, token counts), and the tiny qwen3moe
(QwenLong's architecture, vocabulary and thinking template, ~35x faster) for the memory
agent's runs through it, whose model output only has to exist."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start_server(model: Path, log: Path, timeout_s: float = 60) -> ServerProcess:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "1",  # the test machine's cores are shared
                "--verbose",
                "False",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited:\n{log.read_text(errors='replace')[-2000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response,
        ):
            if response.status == 200:
                return ServerProcess(url, process, log)
        time.sleep(0.25)
    stop_server(process)
    pytest.fail(f"llama_cpp.server did not answer within {timeout_s:g} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def serving(model: Path, log: Path) -> Iterator[ServerProcess]:
    """A server of ``model`` for as long as the block runs, stopped even when it fails."""
    server = start_server(model, log)
    try:
        yield server
    finally:
        stop_server(server.process)


@pytest.fixture(scope="session")
def llama_server(demo_model, tmp_path_factory) -> Iterator[ServerProcess]:
    """One server for the session (starting one takes a few seconds)."""
    with serving(demo_model, tmp_path_factory.mktemp("server") / "server.log") as server:
        yield server


@pytest.fixture
def doomed_server(demo_model, tmp_path) -> Iterator[ServerProcess]:
    """A server of its own for a test that kills it."""
    with serving(demo_model, tmp_path / "doomed.log") as server:
        yield server


@pytest.fixture(scope="session")
def tiny_server(tiny_model, tmp_path_factory) -> Iterator[ServerProcess]:
    """One server of the tiny model for the session."""
    with serving(tiny_model, tmp_path_factory.mktemp("tiny-server") / "server.log") as server:
        yield server


@pytest.fixture
def doomed_tiny_server(tiny_model, tmp_path) -> Iterator[ServerProcess]:
    """A server of the tiny model of its own, for a test that kills it."""
    with serving(tiny_model, tmp_path / "doomed.log") as server:
        yield server


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself: no trust store knows it, as a
    company CA is unknown until it is installed in the system's store."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Corp CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def untrusted_https(tmp_path) -> Iterator[str]:
    """The URL of an HTTPS server on loopback whose certificate nobody trusts."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class QuietTLSServer(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client refusing the handshake is the point

    cert, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = QuietTLSServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
