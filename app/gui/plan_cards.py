"""The plan as a sequence of short cards, one a step: what the model said it would look
for next, with the items new since the previous plan marked and the dropped ones struck
through. Clicking a card selects its step."""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QUrl, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.gui.memory_text import plan_changes

NEW, GONE = "#2e8b57", "#c0392b"
MAX_ITEMS = 4  # a card is short: the first few items, then "+ N more"


def card_html(index: int, pages: str, plan: str, previous: str, selected: bool) -> str:
    marked, dropped = plan_changes(previous, plan)
    if not plan.strip():
        body = "<i>no plan</i>"
    elif previous.strip() and not dropped and not any(new for _, new in marked):
        body = "<i style='color:gray'>same plan as before</i>"
    else:
        items = [
            html.escape(item[:140]) + (f" <b style='color:{NEW}'>new</b>" if new else "")
            for item, new in marked[:MAX_ITEMS]
        ]
        if len(marked) > MAX_ITEMS:
            items.append(f"<span style='color:gray'>+ {len(marked) - MAX_ITEMS} more</span>")
        items += [f"<s style='color:{GONE}'>{html.escape(item[:80])}</s>" for item in dropped[:2]]
        body = "<br>".join(items)
    border = "#3d7bd9" if selected else "#8a8f98"
    return (
        f"<table width='100%' cellpadding='4' cellspacing='0' "
        f"style='border:{2 if selected else 1}px solid {border}; margin-bottom:4px'>"
        f"<tr><td><a href='step:{index}'><b>Step {index + 1}</b></a> "
        f"<span style='color:gray'>{html.escape(pages)}</span><br>{body}</td></tr></table>"
    )


class PlanCards(QTextBrowser):
    step_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Plans, step by step")
        self.setOpenLinks(False)
        self.anchorClicked.connect(self._anchor)
        self.cards: list[tuple[int, str, str]] = []  # (chunk index, pages, plan)
        self.selected = -1

    def reset(self) -> None:
        self.cards, self.selected = [], -1
        self._render(follow=False)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        # The HTML took its link colour from the palette it was set under: light-theme
        # blue would stay on a dark background until the next step re-rendered it.
        if event.type() == QEvent.Type.PaletteChange:
            self._render(follow=False)

    def add(self, index: int, pages: str, plan: str) -> None:
        self.cards.append((index, pages, plan))
        self._render(follow=True)

    def select(self, index: int) -> None:
        self.selected = index
        self._render(follow=False)
        self.scrollToAnchor(f"card{index}")

    def _render(self, follow: bool) -> None:
        link = self.palette().color(QPalette.ColorRole.Link).name()
        self.document().setDefaultStyleSheet(f"a {{ color: {link}; }}")
        if not self.cards:
            self.setHtml("<p style='color:gray'>The plan after each step appears here.</p>")
            return
        bar = self.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        parts = []
        previous = ""
        for index, pages, plan in self.cards:
            parts.append(f"<a name='card{index}'></a>")
            parts.append(card_html(index, pages, plan, previous, index == self.selected))
            previous = plan
        value = bar.value()
        self.setHtml("".join(parts))
        bar.setValue(bar.maximum() if follow and at_end else value)

    def _anchor(self, url: QUrl) -> None:
        target = url.toString()
        if target.startswith("step:"):
            self.step_clicked.emit(int(target[5:]))
