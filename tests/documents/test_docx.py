"""Word documents written by python-docx (footnotes added to the package by hand, as
python-docx cannot write them): structure, pages, citations' spans, bad files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx
import pytest
from docx.enum.section import WD_SECTION
from docx.enum.text import WD_BREAK

from app.__main__ import main
from app.documents.ingest import load_document
from app.errors import DocumentError

TREASURER = "The treasurer is Ines Alvarez."


def report(path: Path) -> Path:
    """Three pages: a page break run, a pageBreakBefore paragraph, then a new section."""
    d = docx.Document()
    d.core_properties.title = "Annual Report 2025"
    d.sections[0].header.paragraphs[0].text = "ACME Corp confidential"
    d.sections[0].footer.paragraphs[0].text = "Printed by the finance office"
    d.add_heading("Annual Report", level=1)
    d.add_paragraph("This report covers the fiscal year.")
    d.add_heading("Results", level=2)
    d.add_paragraph("Revenue rose by 12 percent.")
    d.add_paragraph("Costs fell", style="List Bullet")
    d.add_paragraph("Margins grew", style="List Bullet")
    d.add_paragraph("Hire auditors", style="List Number")
    d.add_paragraph("Publish accounts", style="List Number")
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([["Region", "Q1", "Q2"], ["North", "10", "12"], ["South", "7", "9"]]):
        for c, value in enumerate(row):
            table.rows[r].cells[c].text = value
    run = d.add_paragraph("End of page one.").add_run()
    run.add_break(WD_BREAK.PAGE)
    officers = d.add_paragraph(TREASURER)
    d.add_comment(officers.runs, text="Check the spelling of her name", author="Ana")
    d.add_paragraph("The auditor is Bo Lind.")
    board = d.add_paragraph("The board met four times.")
    board.paragraph_format.page_break_before = True
    d.add_section(WD_SECTION.NEW_PAGE)
    d.add_paragraph("Appendix: the chair is Mira Holm.")
    d.save(path)
    return path


def test_structure_headings_lists_tables_comments(tmp_path):
    doc = load_document(report(tmp_path / "report.docx"))
    assert doc.kind == "docx" and doc.title == "Annual Report 2025"
    lines = doc.text.split("\n")
    for expected in [
        "# Annual Report",
        "## Results",
        "- Costs fell",
        "- Margins grew",
        "1. Hire auditors",
        "2. Publish accounts",
        "Region | Q1 | Q2",  # the header row first, then the rows in order
        "North | 10 | 12",
        "[Comment by Ana: Check the spelling of her name]",
        "[Header: ACME Corp confidential]",
        "[Footer: Printed by the finance office]",
    ]:
        assert expected in lines, expected
    assert lines.index("Region | Q1 | Q2") + 1 == lines.index("North | 10 | 12")
    # the comment follows the paragraph it is attached to
    assert (
        lines.index("[Comment by Ana: Check the spelling of her name]")
        == lines.index(TREASURER) + 1
    )
    assert doc.text.index("# Annual Report") < doc.text.index("Region") < doc.text.index(TREASURER)


def test_word_page_breaks_give_pages_and_a_citation_highlights_its_span(tmp_path):
    doc = load_document(report(tmp_path / "report.docx"))
    assert doc.page_count == 4, doc.page_starts
    assert doc.metadata["pages"] == "Word page breaks" and not doc.warnings
    pages = {
        "Revenue rose": 1,
        "End of page one.": 1,
        TREASURER: 2,  # after w:br type=page
        "The board met": 3,  # pageBreakBefore
        "Appendix: the chair": 4,  # a section that starts on a new page
    }
    for phrase, page in pages.items():
        assert doc.page_of(doc.text.index(phrase)) == page, phrase
    start = doc.text.index(TREASURER)
    end = start + len(TREASURER)
    assert doc.page_range(start, end) == (2, 2)
    assert doc.text[start:end] == TREASURER
    # the page map's line spans around the citation: exactly its line, on page 2
    spans = [s for s in doc.spans if s.end > start and s.start < end]
    assert [(s.start, s.end, s.page) for s in spans] == [(start, end, 2)]
    assert doc.rects_for(start, end) == [(2, spans[0].rect)]


def test_headers_and_footers_can_be_dropped(tmp_path):
    path = report(tmp_path / "report.docx")
    kept = load_document(path)
    dropped = load_document(path, drop_headers_footers=True)
    assert "ACME Corp confidential" in kept.text
    assert "ACME" not in dropped.text and "finance office" not in dropped.text
    assert TREASURER in dropped.text


def test_without_page_breaks_pages_are_virtual_and_say_so(tmp_path):
    d = docx.Document()
    for i in range(300):
        d.add_paragraph(f"Paragraph {i}: the committee reviewed item {i} in detail today.")
    d.save(tmp_path / "long.docx")
    doc = load_document(tmp_path / "long.docx")
    assert doc.page_count > 4 and doc.metadata["pages"] == "virtual"
    assert any("virtual" in w for w in doc.warnings)
    sizes = [b - a for a, b in zip(doc.page_starts, doc.page_starts[1:], strict=False)]
    assert all(2900 <= size <= 3200 for size in sizes), sizes
    assert doc.page_of(doc.text.index("Paragraph 299:")) == doc.page_count


def _add_footnote(src: Path, dst: Path, anchor: str, note: str) -> None:
    """Word's own footnote markup, added to a python-docx file: a footnotes part, its
    relationship and content type, and a w:footnoteReference run after ``anchor``."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    footnotes = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:footnotes xmlns:w="{w}">'
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p>'
        '</w:footnote><w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:r>'
        "<w:continuationSeparator/></w:r></w:p></w:footnote>"
        f'<w:footnote w:id="1"><w:p><w:r><w:t>{note}</w:t></w:r></w:p></w:footnote>'
        "</w:footnotes>"
    )
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if not item.filename.endswith((".xml", ".rels")):
                zout.writestr(item, zin.read(item.filename))  # the thumbnail
                continue
            data = zin.read(item.filename).decode("utf-8")
            if item.filename == "word/document.xml":
                data = data.replace(
                    f"{anchor}</w:t></w:r>",
                    f'{anchor}</w:t></w:r><w:r><w:footnoteReference w:id="1"/></w:r>',
                    1,
                )
            elif item.filename == "word/_rels/document.xml.rels":
                data = data.replace(
                    "</Relationships>",
                    '<Relationship Id="rIdFn1" Type="http://schemas.openxmlformats.org/'
                    'officeDocument/2006/relationships/footnotes" Target="footnotes.xml"/>'
                    "</Relationships>",
                )
            elif item.filename == "[Content_Types].xml":
                data = data.replace(
                    "</Types>",
                    '<Override PartName="/word/footnotes.xml" ContentType="application/'
                    'vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"/></Types>',
                )
            zout.writestr(item, data)
        zout.writestr("word/footnotes.xml", footnotes)


def test_footnotes_are_marked_and_stay_on_their_page(tmp_path):
    d = docx.Document()
    d.add_paragraph("First page text.")
    d.add_page_break()
    d.add_paragraph("Profit was 5 million")
    d.add_paragraph("Next paragraph.")
    d.save(tmp_path / "plain.docx")
    _add_footnote(tmp_path / "plain.docx", tmp_path / "notes.docx", "Profit was 5 million",
                  "Audited figures, see annex B.")  # fmt: skip
    doc = load_document(tmp_path / "notes.docx")
    lines = doc.text.split("\n")
    assert "Profit was 5 million[1]" in lines
    note = "[Footnote 1: Audited figures, see annex B.]"
    assert lines.index(note) == lines.index("Profit was 5 million[1]") + 1
    assert doc.page_of(doc.text.index(note)) == 2
    assert "separator" not in doc.text.lower()


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["text", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_corrupt_docx_is_refused_clearly(tmp_path, capsys):
    good = report(tmp_path / "good.docx").read_bytes()
    cut = tmp_path / "cut.docx"
    cut.write_bytes(good[: len(good) // 2])  # a download that stopped halfway
    with pytest.raises(DocumentError, match="damaged") as caught:
        load_document(cut)
    assert "save it again as .docx" in str(caught.value)
    code, _, err = _cli(capsys, str(cut))
    assert code == 7 and "damaged" in err  # README: 7 damaged document, as for a PDF


def test_docx_without_its_main_part_is_damaged(tmp_path):
    path = tmp_path / "hollow.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("docProps/app.xml", "<Properties/>")
    with pytest.raises(DocumentError, match="damaged"):
        load_document(path)


def test_empty_docx_says_it_has_no_text(tmp_path, capsys):
    docx.Document().save(tmp_path / "empty.docx")
    with pytest.raises(DocumentError, match="no text"):
        load_document(tmp_path / "empty.docx")
    code, _, err = _cli(capsys, str(tmp_path / "empty.docx"))
    assert code == 3 and "no text" in err


def test_legacy_doc_and_rtf_say_save_as_docx_or_pdf(tmp_path, capsys):
    # The first bytes of a Word 97-2003 file: the OLE2 compound-file signature, then (in
    # its directory) the UTF-16 name of the "WordDocument" stream.
    header = bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504)
    directory = "Root Entry".encode("utf-16-le").ljust(128, b"\0")
    directory += "WordDocument".encode("utf-16-le").ljust(128, b"\0")
    legacy = tmp_path / "minutes.doc"
    legacy.write_bytes(header + directory + bytes(4096))
    with pytest.raises(DocumentError, match=r"legacy Word document \(\.doc") as caught:
        load_document(legacy)
    assert ".docx or PDF" in str(caught.value)
    code, _, err = _cli(capsys, str(legacy))
    assert code == 3 and ".docx or PDF" in err
    # named .docx, the content still decides
    renamed = tmp_path / "minutes.docx"
    renamed.write_bytes(legacy.read_bytes())
    with pytest.raises(DocumentError, match="legacy Word"):
        load_document(renamed)
    rtf = tmp_path / "letter.rtf"
    rtf.write_bytes(rb"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard Dear Sir,\par}")
    with pytest.raises(DocumentError, match="Rich Text Format") as caught:
        load_document(rtf)
    assert ".docx or PDF" in str(caught.value)
