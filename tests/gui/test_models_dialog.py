"""Getting the model from the window: a real download from the fake Hub on loopback (the
same one as the download tests), with the repository typed in the dialog, a pause that
keeps the part, import of a real GGUF."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app import paths
from app.gui.models_dialog import ModelsDialog
from app.llm.hardware import Hardware
from app.llm.model_sources import CATALOGUE, KNOWN_REPOS
from tests.fixtures.tiny_qwen3moe import write_tiny_qwen3moe
from tests.llm.test_download import NAME, hub, offline_hub, tiny_bytes  # noqa: F401 - fixtures

HARDWARE = Hardware(total_ram=32 << 30, available_ram=24 << 30, cpu_count=8, system="Linux")


@pytest.fixture
def dialog(qtbot):
    d = ModelsDialog(HARDWARE)
    qtbot.addWidget(d)
    d.show()
    yield d
    d.done(0)


def test_lists_each_quantization_with_size_and_fit(dialog):
    assert dialog.table.rowCount() == len(CATALOGUE)
    for row in range(dialog.table.rowCount()):
        assert dialog.table.item(row, 1).text().endswith("GB")
        assert dialog.table.item(row, 2).text()  # a verdict for this machine
    verdicts = {dialog.table.item(r, 0).text(): dialog.table.item(r, 2).text() for r in range(3)}
    assert verdicts["Q4_K_M"].startswith("Fits: ")
    # 24 GiB available, 90% of it planned with: Q8_0's 32.6 GB cannot fit, and it says so
    assert verdicts["Q8_0"].startswith("Does not fit: needs about 3")
    assert verdicts["Q8_0"].endswith("23.2 GB usable here")
    assert KNOWN_REPOS[0] in dialog.repo.placeholderText()


def test_download_from_the_hub_then_it_becomes_the_model(qtbot, dialog, hub, tiny_bytes):  # noqa: F811
    with qtbot.waitSignal(dialog.model_chosen, timeout=60_000) as chosen:
        dialog.download_button.click()
    target = Path(chosen.args[0])
    assert target == paths.models_dir() / NAME and target.read_bytes() == tiny_bytes
    assert "Ready" in dialog.status.text() and dialog.download_button.isEnabled()


def test_a_typed_repository_is_the_one_asked(qtbot, dialog, hub, tiny_bytes):  # noqa: F811
    hub.repos["someone/Other-GGUF"] = {"other-Q4_K_M.gguf": tiny_bytes}
    dialog.repo.setText(" someone/Other-GGUF ")
    with qtbot.waitSignal(dialog.model_chosen, timeout=60_000) as chosen:
        dialog.download_button.click()
    assert Path(chosen.args[0]).name == "other-Q4_K_M.gguf"
    listed = [r["path"] for r in hub.requests if r["path"].startswith("/api/")]
    assert listed == ["/api/models/someone/Other-GGUF"]


def test_a_failed_download_says_why_and_keeps_the_dialog_usable(qtbot, dialog, hub):  # noqa: F811
    dialog.repo.setText("someone/Missing-GGUF")
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.download_button.isEnabled(), timeout=30_000)
    assert "No Q4_K_M GGUF" in dialog.status.text()
    assert dialog.repo.isEnabled() and not any(paths.models_dir().glob("*.gguf"))


def test_pause_keeps_the_part(qtbot, dialog, hub):  # noqa: F811
    hub.trickle_s = 0.03
    started = threading.Event()
    dialog.worker.progress.connect(lambda line, per_mille: per_mille > 0 and started.set())
    dialog.download_button.click()
    qtbot.waitUntil(started.is_set, timeout=30_000)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.download_button.isEnabled(), timeout=5_000)
    assert "Paused" in dialog.status.text()
    assert (paths.models_dir() / (NAME + ".part")).stat().st_size > 0


def test_a_cancel_clicked_at_once_is_not_lost(qtbot, dialog, hub):  # noqa: F811
    """Cancel right after Download, before the worker thread has even started it."""
    hub.trickle_s = 0.03  # slow enough that a lost cancel would show as a finished file
    dialog.download_button.click()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.download_button.isEnabled(), timeout=10_000)
    text = dialog.status.text()
    assert "Cancelled before the download started" in text or "Paused" in text, text
    assert not (paths.models_dir() / NAME).exists()


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
