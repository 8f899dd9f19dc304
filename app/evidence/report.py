"""Exporting one run as a report: Markdown, PDF, and a JSON evidence bundle.

The bundle follows resources/evidence-bundle.schema.json (documented there) and holds
only this run: question, answer, citations with quoted passages and pages, the whole
memory/plan timeline, the document's and model file's hashes and every setting, so
someone else can check or re-run it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import private
from app.documents.model import Member
from app.errors import UserError
from app.evidence.provenance import cite_answer
from app.records import Evidence, Mode, RunRecord

if TYPE_CHECKING:
    from app.store.database import Store

BUNDLE_VERSION = 1


def export_run(store: Store, run_id: int, folder: Path) -> dict[str, Path]:
    """Run ``run_id``'s report as run-<id>.md, .pdf and .json in ``folder`` (the window's
    File > Export and the ``export`` command)."""
    from app.evidence.provenance import evidence_from_row
    from app.store import collections

    run = store.get_run(run_id)
    rows = store.list_evidence(run.answer_id) if run.answer_id is not None else []
    members = collections.members_of(store, run.document_id)
    changed = {c.member.index: c.what for c in collections.changed_members(members)}
    data = bundle(
        run,
        store.get_document_row(run.document_id),
        [evidence_from_row(row) for row in rows],
        members,
        changed,
    )
    return write_reports(data, folder, f"run-{run.id}")


def bundle(
    run: RunRecord,
    document_row: dict[str, Any],
    evidence: list[Evidence],
    members: list[Member] | None = None,
    changed: dict[int, str] | None = None,
) -> dict[str, Any]:
    """Everything about one run as JSON. A collection's ``members`` are listed with their
    hashes (``changed``: member index -> "changed"/"missing" when the file on disk no
    longer is what the run read), and each citation names its document and own page."""
    answer = run.answer
    citations = cite_answer(answer.text, evidence) if answer else []
    members = members or []
    changed = changed or {}

    def where(e: Evidence) -> str:
        member = _member_of(members, e.char_start)
        if member is None:
            return f"p. {e.page}"
        return f"{member.title}, p. {member.local_page(e.page)}"

    data = {
        "bundle_version": BUNDLE_VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "app": "QwenLong Reader",
        "document": {
            "title": document_row["title"],
            "path": document_row["path"],
            "sha256": document_row["sha256"],
            "pages": document_row.get("page_count") or 0,
        },
        "model": {
            "backend": run.model_backend,
            "name": run.model_name,
            "file_sha256": run.model_sha256 or "",
            "n_ctx": run.n_ctx,
        },
        "settings": run.settings,
        "run": {
            "id": run.id,
            "question": run.question,
            "q_core": run.q_core,
            "q_inst": run.q_inst,
            "mode": run.mode.value,
            "mode_reason": run.mode_reason,
            "status": run.status.value,
            "chunks": len(run.chunks),
            "coverage": coverage(run, document_row),
        },
        "steps": [
            {
                "index": s.index,
                "char_start": s.chunk.start,
                "char_end": s.chunk.end,
                "page_first": s.chunk.page_first,
                "page_last": s.chunk.page_last,
                "memory": s.memory,
                "plan": s.plan,
                "thinking": s.stats.thinking,
                "prompt_tokens": s.stats.prompt_tokens,
                "completion_tokens": s.stats.completion_tokens,
                "wall_ms": round(s.stats.wall_ms, 1),
                "malformed": s.malformed,
                "notes": list(s.stats.notes),
            }
            for s in run.steps
        ],
        "answer": None
        if answer is None
        else {"text": answer.text, "thinking": answer.stats.thinking},
        "evidence": [_evidence_json(e) for e in evidence],
        "citations": [
            {
                "claim": claim,
                "supported": bool(backing),
                "pages": sorted({e.page for e in backing}),
                "where": list(dict.fromkeys(where(e) for e in backing)),
                "quotes": [e.quote for e in backing],
            }
            for claim, backing in citations
        ],
    }
    if members:
        data["documents"] = [
            {
                "number": m.number,
                "title": m.title,
                "path": m.path,
                "sha256": m.sha256,
                "kind": m.kind,
                "pages": m.page_count,
                "first_page_in_collection": m.first_page,
                "on_disk": changed.get(m.index, "unchanged"),
            }
            for m in members
        ]
    return data


def _member_of(members: list[Member], offset: int) -> Member | None:
    found = None
    for member in members:
        if member.start <= offset:
            found = member
    return found


def _evidence_json(e: Evidence) -> dict[str, Any]:
    return {
        "claim": e.claim,
        "quote": e.quote,
        "page": e.page,
        "char_start": e.char_start,
        "char_end": e.char_end,
        "rects": [{"page": p, "rect": list(r)} for p, r in e.rects],
        "step_first": e.step_first,
        "step_last_changed": e.step_last_changed,
        "confidence": e.confidence,
        "supported": e.supported,
    }


def coverage(run: RunRecord, document_row: dict[str, Any]) -> dict[str, Any]:
    """Which pages the run read: all for single pass, the chunks' pages otherwise."""
    total = int(document_row.get("page_count") or 0)
    if run.mode == Mode.SINGLE_PASS:
        read = set(range(1, total + 1)) if run.answer else set()
    else:
        read = {p for s in run.steps for p in range(s.chunk.page_first, s.chunk.page_last + 1)}
    chars = sum(s.chunk.end - s.chunk.start for s in run.steps)
    return {
        "pages_read": len(read),
        "pages_total": total,
        "chars_read": chars,
        "unread_pages": sorted(set(range(1, total + 1)) - read),
    }


def to_markdown(data: dict[str, Any]) -> str:
    doc, run = data["document"], data["run"]
    cov = run["coverage"]
    lines = [
        f"# {run['question']}",
        "",
        f"*Document:* {doc['title']} (SHA-256 `{doc['sha256'][:16]}…`, {doc['pages']} pages)  ",
        f"*Model:* {data['model']['name']} ({data['model']['backend']})  ",
        f"*Mode:* {run['mode'].replace('_', ' ')} - {run['mode_reason']}  ",
        f"*Coverage:* read {cov['pages_read']} of {cov['pages_total']} pages",
        "",
        "## Answer",
        "",
        (data["answer"] or {}).get("text") or "_No answer: the run did not finish._",
        "",
        "## Citations",
        "",
    ]
    for d in data.get("documents", []):
        flag = "" if d["on_disk"] == "unchanged" else f" - **{d['on_disk']} on disk since**"
        lines.insert(
            lines.index("## Answer"),
            f"{d['number']}. {d['title']} ({d['pages']} pages, SHA-256 `{d['sha256'][:16]}…`)"
            f"{flag}  ",
        )
    if data.get("documents"):
        lines.insert(lines.index("## Answer"), "")
    for c in data["citations"]:
        if c["supported"]:
            pages = ", ".join(c.get("where") or [f"p. {p}" for p in c["pages"]])
            lines.append(f"- {c['claim']} ({pages})")
            lines.extend(f"  > {q}" for q in c["quotes"])
        else:
            lines.append(f"- {c['claim']} - **unsupported**: no passage found in the document")
    lines += ["", "## Memory timeline", ""]
    for s in data["steps"]:
        flag = " (malformed output)" if s["malformed"] else ""
        lines += [
            f"### Step {s['index'] + 1}: pages {s['page_first']}-{s['page_last']}{flag}",
            "",
            "**Memory**",
            "",
            "```",
            s["memory"],
            "```",
            "",
            "**Plan**",
            "",
            "```",
            s["plan"],
            "```",
            "",
        ]
        lines.extend(f"*Note: {n}*" for n in s["notes"])
    return "\n".join(lines) + "\n"


def write_reports(data: dict[str, Any], folder: Path, stem: str) -> dict[str, Path]:
    """Writes <stem>.md, <stem>.pdf and <stem>.json into ``folder`` (created if missing).
    Each is written beside its place and renamed into it: a report exported again
    replaces the old one, and a link planted where one goes is replaced, not followed."""
    from app.evidence.pdf_export import markdown_to_pdf

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError, FileNotFoundError):
        raise UserError(
            f"Cannot write the report into {folder}: it is a file, or inside one.",
            hint="Give a folder for the report (it is created if missing).",
        ) from None
    markdown = to_markdown(data)
    paths = {
        "md": folder / f"{stem}.md",
        "pdf": folder / f"{stem}.pdf",
        "json": folder / f"{stem}.json",
    }
    # Owner-only (0600), like the database they come from: they quote the document,
    # possibly a password-protected one. Sharing one is then a deliberate copy.
    private.write_file(paths["md"], markdown.encode("utf-8"))
    private.write_file(paths["json"], json.dumps(data, indent=2, ensure_ascii=False).encode())
    pdf = paths["pdf"].with_name(f".{stem}.{os.getpid()}.pdf")
    try:
        private.create_private(pdf)  # PyMuPDF keeps an existing file's mode
        markdown_to_pdf(markdown, pdf)
        private.tighten(pdf)
        os.replace(pdf, paths["pdf"])
    finally:
        pdf.unlink(missing_ok=True)
    return paths
