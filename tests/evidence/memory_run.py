"""A memory-agent run to trace (no Qt): a real PDF with known facts on known pages, and a
scripted model that keeps them and adds one line of its own."""

from __future__ import annotations

import re

from app.agent.engine import Engine
from app.documents.ingest import load_document
from app.records import Mode, Question
from app.settings import Settings
from tests.conftest import make_pdf
from tests.fakes import FakeBackend, memory_output

FILLER = "The committee met and discussed routine matters of no consequence. " * 10
FACTS = {
    2: "The treasurer Ines Alvarez approved 14 invoices in March.",
    4: "The storm damaged 3 bridges on the Orla river.",
    5: "Repairs cost 2.7 million euros in total.",
}
INVENTED = "Probably the council will fund more repairs next spring."


def facts_document(tmp_path):
    pages = [FILLER + (FACTS.get(n, "") + " " + FILLER if n in FACTS else "") for n in range(1, 7)]
    return load_document(make_pdf(tmp_path / "minutes.pdf", pages))


def keeper(prompt: str) -> str:
    """Keeps every sentence with a number, adds one line of its own, plans ahead."""
    if "<section>" not in prompt:
        return "Alvarez approved 14 invoices. Alvarez approved 14 invoices."
    old = re.search(r"<memory>\n(.*?)\n</memory>", prompt.split("<section>")[0], re.DOTALL)
    section = prompt.split("<section>")[1].split("</section>")[0]
    new = [" ".join(s.split()) for s in re.split(r"(?<=\.)\s+", section) if re.search(r"\d", s)]
    kept = [k for k in (old.group(1).splitlines() if old else []) if k != INVENTED]
    lines = [line for line in kept + new if line and line != "Nothing relevant yet."]
    if lines:
        lines.append(INVENTED)
    plan = "Look for costs.\nLook for damage." if new else "Look for damage."
    return memory_output("\n".join(lines) or "Nothing relevant yet.", plan, "I read it.")


def engine_events(tmp_path, store, script=keeper, cancel_at=None):
    """A real engine run (scripted model, real SQLite) on the facts PDF: its events."""
    from app.llm.backend import CancelToken

    doc = facts_document(tmp_path)
    engine = Engine(
        FakeBackend(script), store, Settings(n_ctx=2048, chunk_tokens=160, memory_tokens=400)
    )
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, "q")
    plan = engine.plan(doc, Question("q", "What was damaged and approved?", "", Mode.MEMORY_AGENT))
    cancel = CancelToken()
    events = engine.ask(doc, doc_id, session, plan, cancel)
    return doc, plan, events, cancel
