"""Readable in an 800x600 window: the plan under the question wraps across the panel
instead of a column cut after three lines, a history row shows its run's status first,
the memory chart's caption fits its width, and one page is "1 page"."""

from __future__ import annotations

from app.gui.ask_panel import AskPanel
from app.gui.library import LibraryPanel
from app.gui.main import make_app
from app.gui.memory_chart import MemoryChart, Point

PLAN = (
    "Memory agent · 33 steps · about 13 min - the question asks about the whole "
    "document, so every chunk is read and the memory carries what was found."
)


def test_the_plan_wraps_across_a_narrow_ask_panel(qtbot):
    make_app()
    panel = AskPanel()
    qtbot.addWidget(panel)
    panel.resize(330, 300)  # the ask panel's share of an 800x600 window
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_plan_text(PLAN)
    label = panel.plan_label
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()), timeout=2000)
    assert label.width() > panel.width() * 0.8  # the panel's width, not a column
    assert label.toolTip() == PLAN


def test_history_rows_show_the_status_first_and_documents_count_pages(qtbot):
    make_app()
    panel = LibraryPanel()
    qtbot.addWidget(panel)
    panel.resize(150, 500)
    panel.show()
    panel.set_documents(
        [{"id": 1, "title": "lease", "page_count": 1, "kind": "docx", "path": "/d/lease.docx"}],
        1,
    )
    assert panel.documents.item(0).text().splitlines()[1] == "1 page · docx"
    assert "1 page · docx" in panel.documents.item(0).toolTip()
    run = {"id": 6, "status": "finished", "mode": "memory_agent", "question": "Who pays?"}
    panel.set_history([({"id": 1, "title": "Who pays?"}, [run])])
    row = panel.history.topLevelItem(0).child(0)
    assert row.text(0).startswith("Finished")  # what a cut row still shows
    assert row.toolTip(0) == "Run 6 · finished · memory agent\nWho pays?"


def test_the_memory_chart_caption_fits_a_narrow_chart(qtbot):
    make_app()
    chart = MemoryChart()
    qtbot.addWidget(chart)
    chart.reset(33)
    for i in range(33):
        chart.add(Point(i, 55, 3, 1))
    metrics = chart.fontMetrics()
    for width in (230, 300, 600):
        chart.resize(width, 76)
        legend = chart.legend(55)
        assert metrics.horizontalAdvance(legend) <= width - 8
        assert "+add" in legend and "−rem" in legend and "55 tokens" in legend
    assert chart.legend(55) == "memory ≈55 tokens · +added / −removed lines"  # room for it
