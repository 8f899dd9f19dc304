"""Collections in the store and through the engine: real files, real SQLite; the schema
upgrade keeps earlier runs; every run names the files it read with their hashes, and a
file changed on disk since is flagged and never silently mixed into a resume."""

from __future__ import annotations

import argparse
import sqlite3
from io import StringIO

import pytest

from app.agent.engine import Engine
from app.agent.events import RunFinished, StepStarted
from app.documents.collection import load_collection
from app.errors import UserError
from app.evidence.report import bundle, to_markdown
from app.llm.backend import CancelToken
from app.records import Mode, Question
from app.settings import Settings
from app.store import collections, migrations
from app.store.database import open_database
from tests.conftest import make_pdf
from tests.fakes import FakeBackend, memory_output


@pytest.fixture
def room(tmp_path):
    folder = tmp_path / "room"
    folder.mkdir()
    make_pdf(folder / "1-lease.pdf", ["The lease runs to 2031. " * 30, "Rent: 900 EUR. " * 30])
    (folder / "2-memo.txt").write_text("The tenant is Harbor Ltd. " * 60, encoding="utf-8")
    make_pdf(folder / "3-audit.pdf", ["The auditor is Ferro & Co. " * 30])
    return folder


def headers_script(prompt: str) -> str:
    """Remembers which documents' header lines it has read."""
    if "<section>" not in prompt:
        return "</think>Therefore, the answer is Harbor Ltd."
    section = prompt.split("<section>")[1].split("</section>")[0]
    seen = [line for line in section.splitlines() if line.startswith("Document ")]
    return memory_output("; ".join(seen) or "nothing new", "keep reading")


def run_collection(store, doc):
    engine = Engine(FakeBackend(headers_script), store, Settings(n_ctx=2048, chunk_tokens=200))
    doc_id = store.add_document(doc)
    session = store.create_session(doc_id, "Who is the tenant?")
    q = "Who is the tenant?"
    plan = engine.plan(doc, Question(q, q, "", Mode.MEMORY_AGENT))
    events = list(engine.ask(doc, doc_id, session, plan, CancelToken()))
    assert isinstance(events[-1], RunFinished)
    return doc_id, events


def test_a_schema_3_database_upgrades_with_its_runs(tmp_path):
    path = tmp_path / "v3.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate(conn, target=3)
    conn.executescript(
        "INSERT INTO documents (id, path, sha256, kind, title, page_count, char_count, text) "
        "VALUES (1, '/d', 'x', 'text', 'Old', 1, 30, 'The harbour holds twelve ships.');"
        "INSERT INTO sessions (id, document_id, title) VALUES (1, 1, 'How many ships?');"
        "INSERT INTO runs (id, session_id, document_id, question, q_core, q_inst, mode, "
        "mode_reason, status, model_backend, model_name, model_path, model_sha256, n_ctx, "
        "settings, chunks) VALUES (1, 1, 1, 'How many ships?', 'How many ships?', '', "
        "'single_pass', 'fits', 'finished', 'local', 'm', '/m', 'f', 4096, '{}', '[]');"
    )
    conn.close()
    store = open_database(path)
    assert migrations.schema_version(store.conn) == migrations.LATEST == 4
    assert store.get_run(1).question == "How many ships?"
    assert [s["id"] for s in store.list_sessions()] == [1]
    assert collections.members_of(store, 1) == []  # a plain document has no members
    store.close()


def test_a_collection_run_names_every_document_and_page(store, room):
    doc = load_collection([room], name="Harbor deal")
    doc_id, events = run_collection(store, doc)
    members = collections.members_of(store, doc_id)
    assert [m.title for m in members] == [m.title for m in doc.members]
    assert [m.sha256 for m in members] == [m.sha256 for m in doc.members]
    assert members[1].first_page == 3  # the lease has two pages
    # the model read each document's header line inside the section text
    read = {e.chunk.index for e in events if isinstance(e, StepStarted)}
    assert len(read) >= 3
    memories = " ".join(s.memory for s in store.get_run(events[-1].run_id).steps)
    for number in (1, 2, 3):
        assert f"Document {number} of 3:" in memories
    # the evidence bundle lists every document with its hash, unchanged on disk
    run = store.get_run(events[-1].run_id)
    data = bundle(run, store.get_document_row(doc_id), [], members, {})
    assert [d["sha256"] for d in data["documents"]] == [m.sha256 for m in doc.members]
    assert {d["on_disk"] for d in data["documents"]} == {"unchanged"}
    assert "3. " in to_markdown(data) and "SHA-256" in to_markdown(data)


def test_a_changed_member_is_flagged_and_a_resume_refused(store, room, capsys):
    from app.cli.documents import reload_document

    doc = load_collection([room], name="Harbor deal")
    doc_id, events = run_collection(store, doc)
    (room / "2-memo.txt").write_text("The tenant is someone else now.", encoding="utf-8")
    changes = collections.changed_members(collections.members_of(store, doc_id))
    assert [(c.member.number, c.what) for c in changes] == [(2, "changed")]
    (room / "3-audit.pdf").unlink()
    changes = collections.changed_members(collections.members_of(store, doc_id))
    assert [(c.member.number, c.what) for c in changes] == [(2, "changed"), (3, "missing")]
    args = argparse.Namespace(password=None, accept_damaged=False)
    row = store.get_document_row(doc_id)
    with pytest.raises(UserError, match="has changed since the run read it.*no longer there"):
        reload_document(store, args, doc_id, row, "run 1")
    data = bundle(store.get_run(events[-1].run_id), row, [], collections.members_of(store, doc_id),
                  {c.member.index: c.what for c in changes})  # fmt: skip
    assert "changed on disk since" in to_markdown(data)


def test_a_named_collection_is_reused_and_reread_from_disk(store, room):
    from app.cli.documents import reload_document

    doc = load_collection([room], name="Harbor deal")
    doc_id = store.add_document(doc)
    collections.name_collection(store, "Harbor deal", doc_id)
    assert collections.find_collection(store, "Harbor deal") == doc_id
    assert collections.list_collections(store) == [("Harbor deal", 3)]
    args = argparse.Namespace(password=None, accept_damaged=False)
    again = reload_document(store, args, doc_id, store.get_document_row(doc_id), "x")
    assert again.sha256 == doc.sha256 and again.text == doc.text
    # reordered: a new collection document; the name follows it, the old row stays
    reordered = load_collection(sorted(room.iterdir(), reverse=True), name="Harbor deal")
    new_id = store.add_document(reordered)
    collections.name_collection(store, "Harbor deal", new_id)
    assert new_id != doc_id and collections.find_collection(store, "Harbor deal") == new_id
    assert len(collections.members_of(store, doc_id)) == 3


def test_ask_and_show_a_collection_from_the_command_line(room, capsys, monkeypatch, tiny_model):
    """The real CLI and a real model (the tiny one: its answer is not looked at): a folder
    as a collection, then the same collection by its name; `show` lists the documents
    and flags one changed on disk."""
    from app.__main__ import main

    fast = ["--model", str(tiny_model), "--mode", "single_pass", "--max-new-tokens", "8"]
    fast += ["--ctx", "2048"]
    assert main(["ask", str(room), "Who is the tenant?", "--collection", "Deal", *fast]) == 0
    err = capsys.readouterr().err
    assert "Collection Deal: 3 documents, 4 pages." in err
    assert main(["ask", "--collection", "Deal", "Who audits?", *fast]) == 0
    assert "Collection Deal: 3 documents" in capsys.readouterr().err
    (room / "1-lease.pdf").write_bytes(b"%PDF-1.4 replaced")
    out = StringIO()
    monkeypatch.setattr("sys.stdout", out)
    assert main(["show", "2"]) == 0
    shown = out.getvalue()
    assert "Documents (3):" in shown and "changed on disk since the run" in shown
