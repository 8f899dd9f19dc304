"""Text from a model, a server, a file name or a document never reaches a rich-text
widget as markup.

Qt's QLabel and QMessageBox guess: text that looks like HTML (``mightBeRichText``) is
rendered as HTML, so a GGUF named ``<img src=...>`` or an error quoting a document would
be markup. Labels that show such text are set to plain text; a message box's text, which
cannot be, goes through ``plain_html``: escaped and wrapped so Qt always reads it as the
literal text it is.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


def plain_html(text: str) -> str:
    """``text`` as rich text that displays exactly ``text`` (line breaks kept)."""
    return "<p>" + html.escape(text, quote=False).replace("\n", "<br>") + "</p>"


def plain_label(label: QLabel) -> QLabel:
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label
