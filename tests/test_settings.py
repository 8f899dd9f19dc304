"""A settings file that cannot be used is kept beside it and the user is told, once."""

from __future__ import annotations

import json

import pytest

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


def test_a_bug_in_a_command_is_logged_with_an_id_and_named_on_stderr(capsys, monkeypatch, caplog):
    import app.cli
    from app.__main__ import main

    def broken(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.cli, "cmd_sessions", broken)
    parser = app.cli.build_parser
    monkeypatch.setattr(
        app.cli,
        "build_parser",
        lambda: _with_func(parser(), broken),
    )
    assert main(["sessions"]) == 1
    err = capsys.readouterr().err
    assert "error id" in err and "boom" in err and "Traceback" not in err
    assert any(r.exc_info and "error id" in r.getMessage() for r in caplog.records)


def _with_func(parser, func):  # noqa: ANN001, ANN202 - argparse's own types
    parser.set_defaults(func=func)
    for action in parser._subparsers._group_actions:  # the subcommands' own defaults
        for sub in action.choices.values():
            sub.set_defaults(func=func)
    return parser


@pytest.mark.parametrize(
    "url", ["http://", "https://:8080", "http://[::1", "ftp://host", "host:8080"]
)
def test_a_server_url_without_a_host_is_refused(url):
    problems = Settings(backend="remote", remote_url=url).validate()
    assert any("server URL" in p for p in problems), problems


def test_each_run_records_the_installed_llama_cpp_python_whether_loaded_or_not(monkeypatch):
    import sys

    import llama_cpp  # the version the install has, read before it is hidden

    from app.version import software

    monkeypatch.delitem(sys.modules, "llama_cpp")  # as in a remote-only process
    recorded = software()["llama_cpp_python"]
    assert recorded and recorded == llama_cpp.__version__
