"""Evidence on a real PDF with known facts on known pages: provenance, citations and the
exported report (Markdown, PDF, JSON bundle against the documented schema)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import jsonschema
import pymupdf
import pytest

from app.agent.engine import Engine
from app.agent.events import RunFinished
from app.documents.ingest import load_document
from app.evidence.provenance import cite_answer
from app.evidence.report import bundle, write_reports
from app.llm.backend import CancelToken
from app.records import Mode, Question
from app.resources import resources_dir
from app.settings import Settings
from tests.conftest import make_pdf
from tests.fakes import FakeBackend, memory_output

FILLER = "The committee met and discussed routine matters of no consequence. " * 12
FACTS = {
    2: "The treasurer Ines Alvarez approved 14 invoices in March.",
    4: "The storm damaged 3 bridges on the Orla river.",
    5: "Repairs cost 2.7 million euros in total.",
}


def facts_pdf(tmp_path):
    pages = [FILLER + (FACTS.get(n, "") + " " + FILLER if n in FACTS else "") for n in range(1, 7)]
    return make_pdf(tmp_path / "minutes.pdf", pages)


def extractive_script(prompt: str) -> str:
    """Keeps every sentence with a number, like a careful reader would."""
    if "<section>" not in prompt:
        return "Alvarez approved 14 invoices; 3 bridges were damaged. The moon is cheese."
    old = re.search(r"<memory>\n(.*?)\n</memory>", prompt.split("<section>")[0], re.DOTALL)
    section = prompt.split("<section>")[1].split("</section>")[0]
    new = [" ".join(s.split()) for s in re.split(r"(?<=\.)\s+", section) if re.search(r"\d", s)]
    kept = old.group(1).splitlines() if old else []
    lines = [line for line in kept + new if line and line != "Nothing relevant yet."]
    return memory_output("\n".join(lines) or "Nothing relevant yet.", "find more numbers")


def run_memory_agent(tmp_path, store):
    doc = load_document(facts_pdf(tmp_path))
    engine = Engine(
        FakeBackend(extractive_script),
        store,
        Settings(n_ctx=2048, chunk_tokens=160, memory_tokens=400),
    )
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, "q")
    question = Question("What was damaged?", "What was damaged and approved?", "")
    plan = engine.plan(doc, replace(question, mode=Mode.MEMORY_AGENT))
    events = list(engine.ask(doc, doc_id, session, plan, CancelToken()))
    assert isinstance(events[-1], RunFinished)
    return doc, store.get_run(events[-1].run_id)


def test_each_fact_resolves_to_its_page_and_rectangle(tmp_path, store):
    doc, run = run_memory_agent(tmp_path, store)
    evidence = store.list_evidence(run.answer_id)
    assert len(evidence) == 3
    pdf = pymupdf.open(doc.path)
    for page, fact in FACTS.items():
        row = next(e for e in evidence if e["claim"] == fact)
        assert row["page"] == page and row["supported"] and row["confidence"] == 1.0
        assert fact in " ".join(row["quote"].split())
        first_word = fact.split()[1]
        hit = pdf[page - 1].search_for(first_word)[0]
        assert any(p == page and r[1] <= hit.y1 and r[3] >= hit.y0 for p, r in row["rects"])
        # the step that first remembered it is the one that read that page
        step = run.steps[row["step_first"]]
        assert step.chunk.page_first <= page <= step.chunk.page_last


def test_answer_citations_and_unsupported_claims(tmp_path, store):
    doc, run = run_memory_agent(tmp_path, store)
    from app.evidence.provenance import trace_memory

    cited = cite_answer(run.answer.text, trace_memory(doc, run.steps))
    by_claim = dict(cited)
    supported = next(c for c in by_claim if "Alvarez" in c)
    assert {e.page for e in by_claim[supported]} >= {2}
    assert by_claim["The moon is cheese."] == []  # shown as unsupported, not hidden


def test_export_writes_markdown_pdf_and_a_valid_bundle(tmp_path, store):
    doc, run = run_memory_agent(tmp_path, store)
    from app.evidence.provenance import trace_memory

    data = bundle(run, store.get_document_row(run.document_id), trace_memory(doc, run.steps))
    schema = json.loads((resources_dir() / "evidence-bundle.schema.json").read_text())
    jsonschema.validate(data, schema)
    paths = write_reports(data, tmp_path / "out", "run")
    assert json.loads(paths["json"].read_text())["document"]["sha256"] == doc.sha256
    markdown = paths["md"].read_text()
    assert "**unsupported**" in markdown and "p. 4" in markdown
    text = "".join(page.get_text() for page in pymupdf.open(paths["pdf"]))
    assert "The storm damaged 3 bridges" in " ".join(text.split())
    assert data["run"]["coverage"]["pages_read"] == 6


def test_export_replaces_a_planted_link_instead_of_writing_through_it(tmp_path, store):
    """A link where a report goes (planted, or left by someone) is replaced by the report:
    the file it points to keeps its content and mode."""
    import os
    import stat

    from app.evidence.report import export_run

    _, run = run_memory_agent(tmp_path, store)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    victim.chmod(0o644)
    for suffix in ("md", "json", "pdf"):
        os.symlink(victim, out / f"run-{run.id}.{suffix}")
    paths = export_run(store, run.id, out)
    assert victim.read_text() == "mine" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    for path in paths.values():
        assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "What was damaged?" in paths["md"].read_text()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths.values())
    again = export_run(store, run.id, out)  # exported again: replaced, nothing left over
    assert again == paths and len(list(out.iterdir())) == 3


def test_export_into_a_file_says_to_give_a_folder(tmp_path, store):
    from app.errors import UserError
    from app.evidence.report import export_run

    _, run = run_memory_agent(tmp_path, store)
    a_file = tmp_path / "report.md"
    a_file.write_text("x")
    for where in (a_file, a_file / "sub"):
        with pytest.raises(UserError, match="Give a folder"):
            export_run(store, run.id, where)
