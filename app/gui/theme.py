"""Light, dark or the system's palette. Its own module so the window and the start-up
code both use it without importing each other."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


def dark_palette() -> QPalette:
    """Fusion's dark colours, set explicitly: not every platform theme (X11 without a
    desktop portal, say) honours a requested dark colour scheme."""
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, color in (
        (roles.Window, "#2d2f33"),
        (roles.WindowText, "#e6e6e6"),
        (roles.Base, "#232427"),
        (roles.AlternateBase, "#34363b"),
        (roles.ToolTipBase, "#34363b"),
        (roles.ToolTipText, "#e6e6e6"),
        (roles.Text, "#e6e6e6"),
        (roles.PlaceholderText, "#8c9096"),
        (roles.Button, "#34363b"),
        (roles.ButtonText, "#e6e6e6"),
        (roles.BrightText, "#ff6b6b"),
        (roles.Link, "#6cb4ff"),
        (roles.Highlight, "#3d7bd9"),
        (roles.HighlightedText, "#ffffff"),
        (roles.Mid, "#4a4d52"),
        (roles.Dark, "#1e1f22"),
        (roles.Light, "#4a4d52"),
    ):
        palette.setColor(role, QColor(color))
    disabled = QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(disabled, role, QColor("#7a7d82"))
    return palette


def apply_theme(theme: str) -> None:
    """``system`` follows the OS's light/dark setting; ``light``/``dark`` force one."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    scheme = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}
    QGuiApplication.styleHints().setColorScheme(scheme.get(theme, Qt.ColorScheme.Unknown))
    style = app.style()
    app.setPalette(dark_palette() if theme == "dark" else style.standardPalette())
