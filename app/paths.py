"""Where the app keeps its files. The only module that calls platformdirs.

QWENLONG_READER_HOME overrides everything (tests, portable installs): data, config,
cache and logs all go under that one folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from app.private import private_dir

APP_NAME = "QwenLongReader"
HOME_ENV = "QWENLONG_READER_HOME"


def _base(kind: str) -> Path:
    override = os.environ.get(HOME_ENV)
    if override:
        path = Path(override) / kind
    else:
        getter = {
            "data": platformdirs.user_data_dir,
            "config": platformdirs.user_config_dir,
            "cache": platformdirs.user_cache_dir,
            "logs": platformdirs.user_log_dir,
        }[kind]
        path = Path(getter(APP_NAME, appauthor=False))
    # Owner-only: these folders hold documents' text, answers and excerpts (app.private).
    return private_dir(path)


def data_dir() -> Path:
    return _base("data")


def config_dir() -> Path:
    return _base("config")


def cache_dir() -> Path:
    return _base("cache")


def log_dir() -> Path:
    return _base("logs")


def models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_path() -> Path:
    return Path(os.environ.get("QWENLONG_READER_DB") or data_dir() / "reader.sqlite3")
