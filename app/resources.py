"""Locating files in resources/, from a source checkout or a PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    bundle = getattr(sys, "_MEIPASS", None)  # set inside a frozen PyInstaller app
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def sample_document() -> Path:
    return resources_dir() / "sample-audit-report.pdf"


SAMPLE_QUESTION = (
    "How many safety incidents did the auditors record in total? Answer with a number."
)
