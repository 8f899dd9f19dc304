"""Help > About QwenLong Reader: the version, and what its llama.cpp can do on this
machine (app.llm.build_info), so an analyst whose GPU sits idle is told which edition or
driver to install instead of guessing."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QMessageBox, QWidget

from app.llm.build_info import BuildReport, build_report
from app.version import app_version


def about_html(report: BuildReport) -> str:
    """The dialog's text: the message first (what to do), then the facts."""
    version = app_version()
    title = f"QwenLong Reader {version}".strip()
    facts = "".join(f"<li>{html.escape(f)}</li>" for f in report.facts)
    # A status that asks the user to act is shown in bold.
    message = html.escape(report.message)
    if report.status in ("gpu-unused", "driver-too-old", "broken"):
        message = f"<b>{message}</b>"
    return (
        f"<h3>{html.escape(title)}</h3>"
        "<p>Reads long documents offline with a local model (llama.cpp).</p>"
        f"<p>{message}</p><ul>{facts}</ul>"
    )


def about_box(parent: QWidget | None = None, report: BuildReport | None = None) -> QMessageBox:
    report = report or build_report()
    box = QMessageBox(parent)
    box.setWindowTitle("About QwenLong Reader")
    warn = report.status in ("driver-too-old", "broken")
    box.setIcon(QMessageBox.Icon.Warning if warn else QMessageBox.Icon.Information)
    box.setText(about_html(report))
    return box


def show_about(parent: QWidget | None = None) -> None:
    about_box(parent).exec()
