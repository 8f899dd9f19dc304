"""Help > About QwenLong Reader shows what this llama.cpp can do and what to install."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from app.gui.about import about_box
from app.gui.main import make_app
from app.gui.window import MainWindow
from app.llm.build_info import assess
from app.llm.build_probe import BuildInfo, Device, Driver
from app.llm.hardware import GPU, Hardware
from app.settings import Settings

GiB = 1024**3
RTX = Hardware(32 * GiB, 28 * GiB, GPU("cuda", "NVIDIA GeForce RTX 3060", 12 * GiB, 11 * GiB))


def test_about_shows_this_cpu_build(qtbot):
    make_app()
    box = about_box()
    qtbot.addWidget(box)
    assert "CPU only" in box.text()
    assert "backends compiled in: CPU" in box.text()
    assert box.icon() == QMessageBox.Icon.Information


def test_about_warns_about_an_old_driver(qtbot):
    make_app()
    cuda = BuildInfo(True, True, ("CUDA", "CPU"), (Device("CPU", "x", "cpu"),), (), 13050, 35)
    box = about_box(report=assess(cuda, RTX, Driver("535.183.01", 12020)))
    qtbot.addWidget(box)
    assert "<b>The NVIDIA driver 535.183.01 (CUDA 12.2) is too old" in box.text()
    assert box.icon() == QMessageBox.Icon.Warning


def test_about_names_the_cuda_edition_for_an_idle_gpu(qtbot):
    make_app()
    cpu = BuildInfo(True, False, ("CPU",), (Device("CPU", "x", "cpu"),))
    box = about_box(report=assess(cpu, RTX, Driver("580.95.05", 13000), version="0.2.0"))
    qtbot.addWidget(box)
    assert "cuda13" in box.text() and "NVIDIA GeForce RTX 3060" in box.text()


def test_help_menu_has_the_about_entry(qtbot):
    make_app()
    win = MainWindow(Settings(n_ctx=2048))
    qtbot.addWidget(win)
    try:
        help_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Help")
        assert "About QwenLong &Reader" in [a.text() for a in help_menu.actions()]
    finally:
        win.model.stop()
