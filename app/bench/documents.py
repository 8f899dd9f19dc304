"""The benchmarks that read documents: ingestion (a generated PDF against raw PyMuPDF,
and the cached re-open), scale (a huge text read and chunked) and html (an EDGAR-like
filing)."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from app.bench.synthetic import synthetic_text


def bench_ingestion(pages: int) -> dict[str, Any]:
    import pymupdf

    from app.documents.ingest import load_document

    folder = Path(tempfile.mkdtemp())
    path = folder / "big.pdf"
    pdf = pymupdf.open()
    body = synthetic_text(2500)
    for i in range(pages):
        pdf.new_page().insert_textbox(
            pymupdf.Rect(50, 50, 550, 800), f"Page {i}. {body}", fontsize=9
        )
    pdf.save(path)
    pdf.close()
    started = time.perf_counter()
    with pymupdf.open(path) as raw:
        for page in raw:
            page.get_text()
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    load_document(path, use_cache=True)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    load_document(path, use_cache=True)
    cached_s = time.perf_counter() - started
    return {
        "pages": pages,
        "raw_get_text_s": round(raw_s, 3),
        "ingest_s": round(first_s, 3),
        "pages_per_s": round(pages / first_s),
        "ratio_to_raw": round(first_s / raw_s, 3),
        "cached_s": round(cached_s, 4),
        "cache_speedup": round(first_s / cached_s, 1),
    }


def bench_scale(megabytes: int) -> dict[str, Any]:
    from app.agent.planning import Planner, Speed, estimate_seconds
    from app.documents.ingest import load_document
    from app.llm.factory import open_backend
    from app.records import Mode, Question
    from app.settings import Settings

    folder = Path(tempfile.mkdtemp())
    path = folder / "huge.txt"
    path.write_text(synthetic_text(megabytes * 1_000_000), encoding="utf-8")
    settings = Settings(n_ctx=131072)  # the paper's budgets: 32K chunks, 15K memory
    backend = open_backend(settings.with_changes(n_ctx=2048))  # only its tokenizer is used
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    doc = load_document(path, use_cache=False)
    read_s = time.perf_counter() - started
    question = Question("q", "How many vessels on pier 3?", "", Mode.MEMORY_AGENT)
    plan = Planner(backend, settings).plan(doc, question)
    total_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend.close()
    return {
        "megabytes": megabytes,
        "tokens": plan.document_tokens,
        "steps": len(plan.chunks),
        "read_s": round(read_s, 2),
        "read_and_chunk_s": round(total_s, 2),
        "peak_rss_mb": round(peak_mb),
        "rss_before_mb": round(before / 1024),
        "estimated_run_h_at_1000_tps": round(estimate_seconds(plan, Speed(1000, 50)) / 3600, 1),
    }


def bench_html(megabytes: int) -> dict[str, Any]:
    """An EDGAR-like filing: inline-XBRL header hidden in a display:none div, styled
    <div>/<font> soup, tables padded with spacer cells, a CSS page break per page."""
    from selectolax.lexbor import LexborHTMLParser

    from app.documents.ingest import load_document

    head = (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns:ix="http://www.xbrl.org/2013/'
        'inlineXBRL"><head><title>10-K</title></head><body><div style="display:none">'
        "<ix:header><ix:hidden>"
        + "".join(f'<ix:nonNumeric name="dei:F{i}">fact {i}</ix:nonNumeric>' for i in range(500))
        + "</ix:hidden></ix:header></div>"
    )
    row = (
        '<tr><td style="padding-left:10pt"><font style="font-size:10pt">{name}</font></td>'
        '<td style="width:1%"></td><td>$</td><td style="text-align:right"><ix:nonFraction '
        'name="us-gaap:Revenues" contextRef="c1" decimals="-6">{value:,}</ix:nonFraction>'
        "</td><td></td></tr>"
    )
    parts = [head]
    size, page = len(head), 0
    while size < megabytes * 1_000_000:
        page += 1
        prose = synthetic_text(2500)
        rows = "".join(
            row.format(name=f"Segment {page}-{r}", value=page * 97 + r) for r in range(15)
        )
        chunk = (
            f'<div style="margin-top:12pt"><font style="font-weight:bold">Item {page}.</font>'
            f'</div><div><font style="font-family:Times New Roman">{prose}</font></div>'
            f'<table style="width:100%"><tr><td><b>Segment</b></td><td></td><td colspan="2">'
            f"<b>Revenue</b></td><td></td></tr>{rows}</table>"
            f'<p style="text-align:center">{page}</p><hr style="page-break-after:always"/>'
        )
        parts.append(chunk)
        size += len(chunk)
    parts.append("</body></html>")
    data = "".join(parts).encode("utf-8")
    path = Path(tempfile.mkdtemp()) / "filing.htm"
    path.write_bytes(data)
    started = time.perf_counter()
    LexborHTMLParser(data.decode("utf-8"))
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    doc = load_document(path, use_cache=False)
    ingest_s = time.perf_counter() - started
    return {
        "megabytes": round(len(data) / 1e6, 1),
        "pages": doc.page_count,
        "chars": len(doc.text),
        "parse_only_s": round(parse_s, 3),
        "ingest_s": round(ingest_s, 2),
        "mb_per_s": round(len(data) / 1e6 / ingest_s, 1),
    }
