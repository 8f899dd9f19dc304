"""``text FILE [--pages A-B]``: print what the app gives the model for a file, with a
``--- page N ---`` line at each page start, so a user can check what was read (tables,
hidden text dropped, reading order) before asking. Notices and warnings go to stderr.
Registered on the CLI's subparsers by ``add_text_command``."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from app.documents.ingest import load_with_passwords
from app.documents.markers import mark_pages
from app.errors import UserError
from app.settings import load_settings

_RANGE = re.compile(r"\s*(\d+)\s*(?:-\s*(\d*)\s*)?$")


def parse_pages(value: str) -> tuple[int, int | None]:
    """Page range: 3 is (3, 3), 2-5 is (2, 5), 4- is (4, None), to the end."""
    match = _RANGE.match(value)
    if not match or int(match.group(1)) < 1:
        raise UserError(
            f"--pages {value!r} is not a page range.", hint="Write a page or a range: 3, 2-5, 4-."
        )
    first = int(match.group(1))
    if match.group(2) is None:
        return first, first
    last = int(match.group(2)) if match.group(2) else None
    if last is not None and last < first:
        raise UserError(f"--pages {value}: the range ends before it starts.", hint="Try 2-5.")
    return first, last


def add_text_command(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "text",
        help="print the text the model gets from a document, with a marker at each page",
    )
    parser.add_argument("file")
    parser.add_argument("--pages", metavar="A-B", help="only these pages: 3, 2-5 or 4-")
    parser.add_argument(
        "--password",
        action="append",
        help="password of an encrypted PDF ('-': asked on the terminal, unseen; "
        "QWENLONG_READER_PASSWORD gives one too)",
    )
    parser.add_argument(
        "--accept-damaged",
        action="store_true",
        help="read only the pages of a damaged file that survived (else exit code 7)",
    )
    # Default: what the window does, from Settings; these override it for one run.
    parser.add_argument(
        "--drop-headers-footers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop repeated page headers and footers (default: as in Settings)",
    )
    parser.add_argument(
        "--ocr",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="OCR pages without text, needs Tesseract (default: as in Settings)",
    )
    parser.set_defaults(func=cmd_text)
    return parser


def cmd_text(args: argparse.Namespace) -> int:
    settings = load_settings()
    first, last = parse_pages(args.pages) if args.pages else (1, None)
    from app.cli.documents import given_passwords

    document = load_with_passwords(
        Path(args.file),
        given_passwords(args),
        drop_headers_footers=(
            settings.drop_headers_footers
            if args.drop_headers_footers is None
            else args.drop_headers_footers
        ),
        ocr=settings.ocr if args.ocr is None else args.ocr,
        accept_damaged=args.accept_damaged,  # the damaged-file hint names this flag
    )
    for warning in document.warnings:
        print(f"Notice: {warning}", file=sys.stderr)
    if first > document.page_count:
        raise UserError(
            f"{Path(args.file).name} has {document.page_count} pages; there is no page {first}.",
            hint=f"Choose pages 1-{document.page_count}.",
        )
    marked = mark_pages(document, first, last)
    out = sys.stdout
    out.write(marked.text)
    if not marked.text.endswith("\n"):
        out.write("\n")
    out.flush()
    return 0
