"""The Settings dialog's server waits and proxy (issues #13, #16): typed into the real
widgets, saved, read back; a proxy that is not an http(s) URL is refused with the reason."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox

from app.gui.settings_dialog import PROXY_NOTE, SettingsDialog
from app.settings import (
    FIRST_TOKEN_RANGE_S,
    SILENCE_RANGE_S,
    Settings,
    load_settings,
    save_settings,
    settings_path,
)

SERVER = Settings(backend="remote", remote_url="http://gpu-server:8080")


def _dialog(qtbot, settings: Settings) -> SettingsDialog:
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _type(qtbot, widget, text: str) -> None:
    """Replace the widget's text as a user would: select it all, then type."""
    widget.selectAll()
    qtbot.keyClicks(widget, text)


def _save(qtbot, dialog: SettingsDialog) -> None:
    save = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save)
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)


def test_waits_have_the_bounds_settings_validation_has(qtbot):
    dialog = _dialog(qtbot, SERVER)
    for box, field, (low, high) in (
        (dialog.first_token, "remote_timeout_s", FIRST_TOKEN_RANGE_S),
        (dialog.silence, "remote_silence_s", SILENCE_RANGE_S),
    ):
        assert (box.minimum(), box.maximum()) == (low, high)
        for value in (low, high):  # the spin box's limits are valid settings
            assert not SERVER.with_changes(**{field: value}).validate()
        for value in (low - 0.1, high + 0.1):  # just past them are not
            assert SERVER.with_changes(**{field: value}).validate()
    assert (dialog.first_token.value(), dialog.silence.value()) == (120.0, 60.0)
    assert dialog.proxy.text() == "" and "environment variables are never used" in PROXY_NOTE


def test_waits_and_proxy_typed_in_are_saved_and_shown_again(qtbot):
    dialog = _dialog(qtbot, SERVER)
    _type(qtbot, dialog.first_token, "300")
    _type(qtbot, dialog.silence, "45.5")
    _type(qtbot, dialog.proxy, "  http://proxy.example:3128 ")
    _save(qtbot, dialog)
    assert dialog.result() == QDialog.DialogCode.Accepted and not dialog.error.text()
    save_settings(dialog.result_settings)  # what the window does with an accepted dialog

    stored = json.loads(settings_path().read_text(encoding="utf-8"))["settings"]
    assert stored["remote_timeout_s"] == 300.0
    assert stored["remote_silence_s"] == 45.5
    assert stored["proxy_url"] == "http://proxy.example:3128"
    again = _dialog(qtbot, load_settings())
    assert again.first_token.value() == 300.0 and again.silence.value() == 45.5
    assert again.proxy.text() == "http://proxy.example:3128"


def test_spin_boxes_keep_typed_waits_within_bounds(qtbot):
    dialog = _dialog(qtbot, SERVER)
    _type(qtbot, dialog.first_token, "99999")
    _type(qtbot, dialog.silence, "1")
    dialog.silence.interpretText()
    assert dialog.first_token.value() <= FIRST_TOKEN_RANGE_S[1]
    assert dialog.silence.value() >= SILENCE_RANGE_S[0]
    _save(qtbot, dialog)
    assert dialog.result_settings is not None and not dialog.result_settings.validate()


@pytest.mark.parametrize("proxy", ["socks5://proxy:1080", "proxy.example:3128"])
def test_a_bad_proxy_is_refused_with_the_reason_and_not_saved(qtbot, proxy):
    save_settings(SERVER)
    before = settings_path().read_text(encoding="utf-8")
    dialog = _dialog(qtbot, load_settings())
    _type(qtbot, dialog.proxy, proxy)
    _save(qtbot, dialog)
    assert dialog.result_settings is None and dialog.isVisible()
    assert dialog.result() != QDialog.DialogCode.Accepted
    assert dialog.error.text().startswith("Not saved: ")
    assert "the proxy must be an http:// or https:// URL" in dialog.error.text()
    assert settings_path().read_text(encoding="utf-8") == before
    # corrected, it is accepted
    _type(qtbot, dialog.proxy, "https://proxy.example:3128")
    _save(qtbot, dialog)
    assert dialog.result_settings is not None
    assert dialog.result_settings.proxy_url == "https://proxy.example:3128"


# -- the server's API key: in the system keyring, never in the settings file --------------
def test_an_api_key_typed_in_goes_to_the_keyring_not_the_settings_file(qtbot, memory_keyring):
    dialog = _dialog(qtbot, SERVER)
    assert dialog.api_key.echoMode() == dialog.api_key.EchoMode.Password
    assert not dialog.forget_key.isVisibleTo(dialog)  # nothing saved yet
    _type(qtbot, dialog.api_key, "sk-team-123")
    _save(qtbot, dialog)
    assert dialog.result() == QDialog.DialogCode.Accepted
    save_settings(dialog.result_settings)
    assert memory_keyring.data == {("QwenLongReader", "http://gpu-server:8080"): "sk-team-123"}
    assert "sk-team-123" not in settings_path().read_text(encoding="utf-8")

    again = _dialog(qtbot, load_settings())
    assert again.api_key.text() == "" and "saved" in again.api_key.placeholderText()
    assert again.forget_key.isVisibleTo(again)
    again.forget_key.setChecked(True)
    _save(qtbot, again)
    assert again.result() == QDialog.DialogCode.Accepted and memory_keyring.data == {}


def test_an_api_key_without_a_server_url_or_a_keyring_is_refused_with_the_reason(qtbot):
    import keyring
    from keyring.backends import fail

    dialog = _dialog(qtbot, Settings())  # no server URL yet
    dialog.backend.setCurrentIndex(1)  # "a server" chosen, its key typed before its URL
    _type(qtbot, dialog.api_key, "sk-1")
    _save(qtbot, dialog)
    assert dialog.result_settings is None and "server URL" in dialog.error.text()

    keyring.set_keyring(fail.Keyring())  # a machine without one (conftest restores it)
    _type(qtbot, dialog.remote_url, "http://gpu-server:8080")
    _save(qtbot, dialog)
    assert dialog.result_settings is None
    assert "keyring" in dialog.error.text() and dialog.error.text().startswith("Not saved: ")


def test_only_the_chosen_backends_fields_can_be_edited(qtbot):
    dialog = _dialog(qtbot, Settings())
    assert dialog.model_path.isEnabled() and not dialog.remote_url.isEnabled()
    assert not dialog.api_key.isEnabled() and dialog.proxy.isEnabled()  # downloads use it
    dialog.backend.setCurrentIndex(1)  # a server
    assert dialog.remote_url.isEnabled() and dialog.first_token.isEnabled()
    assert not dialog.model_path.isEnabled()


def test_the_demo_note_shows_only_while_the_demo_is_the_model(qtbot, tmp_path):
    dialog = _dialog(qtbot, Settings())  # no model file: the bundled demo
    note = dialog.demo_note
    assert "Demo model: SmolLM2-135M" in note.text() and note.isVisible()
    _type(qtbot, dialog.model_path, str(tmp_path / "QwenLong-L1.5-30B-A3B-Q4_K_M.gguf"))
    assert not note.isVisible()
    dialog.model_path.clear()  # "Use demo"
    assert note.isVisible()
    dialog.backend.setCurrentIndex(dialog.backend.findData("remote"))
    assert not note.isVisible()
    chosen = _dialog(qtbot, Settings(model_path=str(tmp_path / "own.gguf")))
    assert not chosen.demo_note.isVisible()


def test_a_password_in_the_server_url_goes_to_the_keyring_and_is_never_shown_again(
    qtbot, memory_keyring
):
    from app.llm.remote_keys import url_password_for

    dialog = _dialog(qtbot, SERVER)
    _type(qtbot, dialog.remote_url, "http://alice:s3cret%21@gpu-server:8080/v1")
    _save(qtbot, dialog)
    assert dialog.result() == QDialog.DialogCode.Accepted
    saved = dialog.result_settings
    assert saved.remote_url == "http://alice@gpu-server:8080/v1"
    save_settings(saved)
    assert "s3cret" not in settings_path().read_text(encoding="utf-8")
    assert url_password_for("http://alice@gpu-server:8080") == "s3cret!"
    again = _dialog(qtbot, load_settings())
    assert "s3cret" not in again.remote_url.text()


def test_a_model_path_that_is_no_gguf_is_refused_in_the_dialog(qtbot, tmp_path):
    notes = tmp_path / "bank.pdf"
    notes.write_bytes(b"%PDF-1.7 not a model")
    for path, words in (
        (notes, "not a GGUF"),
        (tmp_path, "folder"),
        (tmp_path / "gone.gguf", "not found"),
    ):
        dialog = _dialog(qtbot, Settings())
        _type(qtbot, dialog.model_path, str(path))
        _save(qtbot, dialog)
        assert dialog.result_settings is None and words in dialog.error.text(), dialog.error.text()


def test_the_plan_follows_the_model_path_and_the_backend(qtbot, tmp_path):
    dialog = _dialog(qtbot, Settings())
    _type(qtbot, dialog.model_path, str(tmp_path))
    dialog.model_path.editingFinished.emit()
    assert "folder" in dialog.plan_label.text()
    dialog.backend.setCurrentIndex(dialog.backend.findData("remote"))
    assert dialog.plan_label.text() == "A server places the model itself."
