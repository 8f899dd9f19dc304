"""The CLI tests run `python -m app` in a child process with this test's app home."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def env(app_home) -> dict[str, str]:
    return {**os.environ, "QWENLONG_READER_HOME": str(app_home)}
