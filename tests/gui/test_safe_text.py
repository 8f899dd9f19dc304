"""Text that came from a model, a server or a document is shown as the literal text it
is, never rendered as markup, in the widgets that show it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument

from app.evidence.compare import compare_runs
from app.gui.safe_text import plain_html
from tests.evidence.test_compare import two_runs  # noqa: F401 - the fixture

HOSTILE = "<img src='file:///etc/passwd'><b>evil</b> & co"


def rendered(rich: str) -> str:
    document = QTextDocument()
    document.setHtml(rich)
    return document.toPlainText()


def test_plain_html_displays_exactly_the_text(qapp):
    assert rendered(plain_html(HOSTILE + "\nline two")) == HOSTILE + "\nline two"


def test_compare_header_escapes_a_server_supplied_model_name(qtbot, two_runs):  # noqa: F811
    from app.gui.compare_dialog import CompareDialog

    store, a, b = two_runs
    store.conn.execute("UPDATE runs SET model_name = ? WHERE id = ?", (HOSTILE, a))
    dialog = CompareDialog(compare_runs(store, a, b))
    qtbot.addWidget(dialog)
    header = dialog.columns[0].findChildren(type(dialog.verdict))[0]
    assert header.textFormat() == Qt.TextFormat.RichText
    assert HOSTILE in rendered(header.text())  # shown as text: no image, no bold


def test_model_and_plan_labels_are_plain_text(qtbot):
    from app.gui.main import make_app
    from app.gui.window import MainWindow
    from app.settings import Settings

    make_app()
    win = MainWindow(Settings(n_ctx=2048))
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.model_ready, timeout=60_000):
        pass
    win._model_loaded(HOSTILE, False)
    assert win.model_label.textFormat() == Qt.TextFormat.PlainText
    assert HOSTILE in win.model_label.text()
    assert win.ask_panel.plan_label.textFormat() == Qt.TextFormat.PlainText
    win.model.stop()
