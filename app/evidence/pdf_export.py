"""Markdown -> PDF with PyMuPDF's Story (HTML layout engine), no extra dependencies."""

from __future__ import annotations

from pathlib import Path

import pymupdf
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False})
CSS = """
body { font-family: sans-serif; font-size: 10pt; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; } h3 { font-size: 11pt; }
pre { font-family: monospace; font-size: 8pt; background-color: #f3f3f3; }
blockquote { color: #333333; margin-left: 12pt; font-style: italic; }
"""


def markdown_to_pdf(markdown: str, path: Path) -> None:
    story = pymupdf.Story(html=_md.render(markdown), user_css=CSS)
    writer = pymupdf.DocumentWriter(str(path))
    page = pymupdf.paper_rect("a4")
    where = page + (50, 50, -50, -50)
    more = True
    while more:
        device = writer.begin_page(page)
        more, _ = story.place(where)
        story.draw(device)
        writer.end_page()
    writer.close()
