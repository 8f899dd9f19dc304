"""Starting the window: application object, palette, first document."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app.resources import SAMPLE_QUESTION, sample_document


def make_app() -> QApplication:
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication(sys.argv[:1])
        app.setApplicationName("QwenLong Reader")
        app.setOrganizationName("QwenLongReader")
        app.setStyle("Fusion")  # draws Qt's light and dark palettes the same everywhere
    return app  # type: ignore[return-value]


def run_gui(open_file: str | None = None, sample: bool = False) -> int:
    app = make_app()
    from app.gui.window import MainWindow

    window = MainWindow()
    window.resize(window.sizeHint())
    window.show()
    if open_file:
        window.open_file(open_file)
    elif sample or not window.settings.recent_files:
        window.open_file(str(sample_document()))
        window.ask_panel.set_question(SAMPLE_QUESTION)
    return app.exec()
