"""A settings file that cannot be used is kept beside it and the user is told, once."""

from __future__ import annotations

import json

from app.settings import Settings, load_settings, save_settings, settings_path, take_notices


def test_a_corrupt_settings_file_is_kept_aside_and_noticed_once(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"settings": {"chunk_tokens": 512,', encoding="utf-8")  # cut short
    take_notices()
    assert load_settings(path) == Settings()
    kept = list(tmp_path.glob("settings.json.bad-*"))
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8").endswith("512,")
    assert not path.exists()
    notices = take_notices()
    assert len(notices) == 1 and str(kept[0]) in notices[0] and "default" in notices[0]
    assert take_notices() == []  # said once
    save_settings(Settings(chunk_tokens=512), path)
    assert load_settings(path).chunk_tokens == 512 and take_notices() == []


def test_invalid_values_are_kept_aside_too(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"settings": {"theme": "purple"}}), encoding="utf-8")
    take_notices()
    assert load_settings(path).theme == "system"
    assert "theme must be" in take_notices()[0] and list(tmp_path.glob("settings.json.bad-*"))


def test_the_cli_prints_the_notice_on_stderr(capsys):
    from app.__main__ import main

    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not json", encoding="utf-8")
    take_notices()
    load_settings()  # as a command does while it runs
    assert main(["sessions"]) == 0
    err = capsys.readouterr().err
    assert "Note: The settings file" in err and ".bad-" in err
