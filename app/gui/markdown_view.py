"""Markdown answers rendered safely: no raw HTML, no remote resources, links on click only."""

from __future__ import annotations

from markdown_it import MarkdownIt
from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QTextBrowser, QWidget

# "commonmark" with html=False escapes any HTML the model writes instead of rendering it.
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def to_html(markdown: str) -> str:
    return _md.render(markdown)


class SafeMarkdownView(QTextBrowser):
    citation_clicked = Signal(int)  # index of a cited passage ("cite:N" links)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)  # never navigate inside the view
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._open_on_click)

    def set_markdown(self, markdown: str) -> None:
        self.setHtml(to_html(markdown))

    def loadResource(self, kind: int, url: QUrl | str) -> object:  # noqa: N802 - Qt override
        # Images and style sheets the model may reference are never fetched.
        return None

    def _open_on_click(self, url: QUrl) -> None:
        if url.scheme() == "cite" and url.path().isdigit():
            self.citation_clicked.emit(int(url.path()))
        elif url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
