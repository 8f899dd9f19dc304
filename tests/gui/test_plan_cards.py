"""The Plans cards follow the palette: after switching to the dark theme, the step links
take the dark palette's link colour at once, not the light theme's blue."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication, QPalette, QTextDocument
from PySide6.QtWidgets import QApplication

from app.gui.main import make_app
from app.gui.plan_cards import PlanCards
from app.gui.theme import apply_theme, dark_palette


def _link_colours(document: QTextDocument) -> set[str]:
    colours = set()
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fmt = it.fragment().charFormat()
            if fmt.isAnchor() and fmt.anchorHref().startswith("step:"):
                colours.add(fmt.foreground().color().name())
            it += 1
        block = block.next()
    return colours


def test_links_take_the_dark_palette_at_once(qtbot):
    app = make_app()
    assert isinstance(app, QApplication)
    before = app.palette()
    cards = PlanCards()
    qtbot.addWidget(cards)
    cards.show()
    cards.add(0, "pages 1–2", "Look for costs.")
    cards.add(1, "pages 3–4", "Look for costs.\nLook for damage.")
    light = cards.palette().color(QPalette.ColorRole.Link).name()
    assert _link_colours(cards.document()) == {light}
    dark = dark_palette().color(QPalette.ColorRole.Link).name()
    try:
        apply_theme("dark")
        qtbot.waitUntil(lambda: _link_colours(cards.document()) == {dark}, timeout=2000)
    finally:
        app.setPalette(before)
        QGuiApplication.styleHints().unsetColorScheme()
    qtbot.waitUntil(lambda: _link_colours(cards.document()) == {light}, timeout=2000)
    assert "Step 2" in cards.toPlainText()
