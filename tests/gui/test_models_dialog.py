"""Getting the model from the window: a real download from a loopback HTTP server (the
same server as the download tests), import of a real GGUF, and the window's unload and
load-again-on-ask."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import paths
from app.gui.models_dialog import ModelsDialog
from app.llm import download
from app.llm.download import CatalogueEntry
from app.llm.hardware import Hardware
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe
from tests.llm.test_download import server, small_blocks, tiny_bytes  # noqa: F401 - fixtures

HARDWARE = Hardware(total_ram=32 << 30, available_ram=24 << 30, cpu_count=8, system="Linux")


@pytest.fixture
def dialog(qtbot):
    d = ModelsDialog(HARDWARE)
    qtbot.addWidget(d)
    d.show()
    yield d
    d.done(0)


def test_lists_each_quantization_with_size_and_fit(dialog):
    assert dialog.table.rowCount() == len(download.CATALOGUE)
    for row in range(dialog.table.rowCount()):
        assert dialog.table.item(row, 1).text().endswith("GB")
        assert dialog.table.item(row, 2).text()  # a verdict for this machine


def test_download_from_a_server_then_it_becomes_the_model(qtbot, server, monkeypatch):  # noqa: F811
    body = server.served.body
    monkeypatch.setattr(download, "URL_PATTERN", "{endpoint}/files/{file}")
    monkeypatch.setattr(download, "HF_ENDPOINT", server.base)
    entry = CatalogueEntry("Q4_K_M", "QwenLong-test.Q4_K_M.gguf", len(body))
    monkeypatch.setattr(download, "CATALOGUE", {"Q4_K_M": entry})
    d = ModelsDialog(HARDWARE)
    qtbot.addWidget(d)
    with qtbot.waitSignal(d.model_chosen, timeout=30_000) as chosen:
        d.download_button.click()
    target = Path(chosen.args[0])
    assert target == paths.models_dir() / entry.file_name
    assert target.read_bytes() == body
    assert "Ready" in d.status.text() and d.download_button.isEnabled()
    d.done(0)


def test_a_failed_download_says_why_and_keeps_the_dialog_usable(qtbot, server, monkeypatch):  # noqa: F811
    server.served.mode = "404"
    monkeypatch.setattr(download, "URL_PATTERN", "{endpoint}/files/{file}")
    monkeypatch.setattr(download, "HF_ENDPOINT", server.base)
    d = ModelsDialog(HARDWARE)
    qtbot.addWidget(d)
    d.download_button.click()
    qtbot.waitUntil(lambda: d.download_button.isEnabled(), timeout=30_000)
    assert "404" in d.status.text() or "not found" in d.status.text().lower()
    assert not any(paths.models_dir().glob("*.gguf"))
    d.done(0)


def test_import_copies_a_real_gguf_into_the_models_folder(qtbot, dialog, tmp_path):
    (tmp_path / "usb").mkdir()
    source = write_tiny_qwen3moe(tmp_path / "usb" / "Tiny-Q8.gguf")
    with qtbot.waitSignal(dialog.model_chosen, timeout=30_000) as chosen:
        dialog.import_path(str(source))
    assert Path(chosen.args[0]).read_bytes() == source.read_bytes()
    assert Path(chosen.args[0]).parent == paths.models_dir()


def test_import_refuses_a_file_that_is_not_a_gguf(qtbot, dialog, tmp_path):
    fake = tmp_path / "notes.gguf"
    fake.write_text("not a model", encoding="utf-8")
    dialog.import_path(str(fake))
    qtbot.waitUntil(lambda: dialog.import_button.isEnabled(), timeout=30_000)
    assert "GGUF" in dialog.status.text()
