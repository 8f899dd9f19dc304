"""A collection read as one document: real PDFs and text files made here, joined in
reading order with a header line each; every offset maps back to its document and page."""

from __future__ import annotations

import os

import pytest

from app.documents.collection import expand_paths, header_line, load_collection, scan_paths
from app.documents.ingest import load_document
from app.errors import DocumentError
from tests.conftest import make_pdf


@pytest.fixture
def room(tmp_path):
    folder = tmp_path / "data-room"
    folder.mkdir()
    make_pdf(folder / "a-lease.pdf", ["Lease page one.", "Rent is 900 EUR a month.", "End."])
    (folder / "b-memo.txt").write_text("Memo: the tenant is Harbor Ltd.\n", encoding="utf-8")
    make_pdf(folder / "c-audit.pdf", ["Audit opinion: unqualified.", "Signed by Ferro."])
    (folder / ".hidden.txt").write_text("never read", encoding="utf-8")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def test_a_folder_means_its_documents_sorted_by_name(room):
    names = [p.name for p in expand_paths([room])]
    assert names == ["a-lease.pdf", "b-memo.txt", "c-audit.pdf"]
    # a file given twice is read once, in its first place
    assert [p.name for p in expand_paths([room / "c-audit.pdf", room])] == [
        "c-audit.pdf",
        "a-lease.pdf",
        "b-memo.txt",
    ]


def test_members_texts_in_order_with_a_header_line_each(room):
    doc = load_collection([room])
    assert doc.kind == "collection" and len(doc.members) == 3
    assert doc.page_count == 3 + 1 + 2
    titles = [m.title for m in doc.members]
    for number, member in enumerate(doc.members, start=1):
        line = header_line(number, 3, titles[number - 1])
        assert doc.text[member.start : member.text_start].strip() == line
    assert (
        doc.text.index("Rent is 900")
        < doc.text.index("Harbor Ltd")
        < doc.text.index("Signed by Ferro")
    )


def test_every_passage_knows_its_document_and_page(room):
    doc = load_collection([room])
    lease = load_document(room / "a-lease.pdf")
    at = doc.text.index("Signed by Ferro")
    member = doc.member_at(at)
    assert member is not None and member.title == doc.members[2].title
    assert doc.cite(at, at + 15) == f"{member.title}, p. 2"  # its own page 2, not page 6
    assert doc.page_of(at) == 6
    # highlighting: the rectangles are the member's own, on the collection's page
    rent = doc.text.index("Rent is 900")
    assert doc.cite(rent, rent + 10) == f"{doc.members[0].title}, p. 2"
    own = lease.text.index("Rent is 900")
    assert [r for _, r in doc.rects_for(rent, rent + 10)] == [
        r for _, r in lease.rects_for(own, own + 10)
    ]
    assert {p for p, _ in doc.rects_for(rent, rent + 10)} == {2}
    assert [m.index for m in doc.members_in(rent, at)] == [0, 1, 2]


def test_a_bad_member_is_named(room):
    (room / "d-empty.txt").write_bytes(b"")
    with pytest.raises(DocumentError, match="^d-empty.txt.*empty"):
        load_collection([room])


def test_one_file_is_read_as_itself(room):
    doc = load_collection([room / "b-memo.txt"])
    assert doc.kind != "collection" and not doc.members


def test_a_link_out_of_the_folder_is_not_read_and_is_named(room, tmp_path):
    secret = tmp_path / "elsewhere" / "passwd.txt"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (room / "notes.txt").symlink_to(secret)
    (room / "etc").symlink_to(secret.parent, target_is_directory=True)
    doc = load_collection([room])
    assert "root:x:0:0" not in doc.text and len(doc.members) == 3
    assert any(
        w.startswith("data-room/notes.txt was not read")
        and "outside data-room" in w
        and str(secret) in w
        for w in doc.warnings
    )
    assert any(w.startswith("data-room/etc was not read") for w in doc.warnings)


def test_broken_links_loops_and_odd_files_are_named_not_dropped(room):
    (room / "broken.txt").symlink_to(room / "gone.txt")
    (room / "loop.txt").symlink_to(room / "loop.txt")
    os.mkfifo(room / "pipe.txt")  # reading it would block forever
    files, notices = scan_paths([room])
    assert [p.name for p in files] == ["a-lease.pdf", "b-memo.txt", "c-audit.pdf"]
    assert notices == [
        f"data-room/broken.txt was not read: it is a broken link (it points to "
        f"{room / 'gone.txt'}, which does not exist).",
        "data-room/loop.txt was not read: it is a link that leads back to itself.",
        "data-room/pipe.txt was not read: it is not a regular file.",
    ]


def test_a_link_inside_the_folder_is_read_once(room):
    (room / "sub").mkdir()
    (room / "sub" / "memo-link.txt").symlink_to(room / "b-memo.txt")
    (room / "z-audit.pdf").symlink_to("c-audit.pdf")
    files, notices = scan_paths([room])
    assert [p.name for p in files] == ["a-lease.pdf", "b-memo.txt", "c-audit.pdf"]
    assert notices == []


def test_an_unreadable_subfolder_is_named(room, monkeypatch):
    (room / "locked").mkdir()
    (room / "locked" / "x.txt").write_text("hidden from us", encoding="utf-8")
    scandir = os.scandir

    def denied(path="."):  # mode 000 does not stop root, who runs some test machines
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    doc = load_collection([room])
    assert "hidden from us" not in doc.text
    assert doc.warnings[0] == (
        "data-room/locked was not read: the folder cannot be opened (Permission denied)."
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 folder anyway")
def test_a_mode_000_subfolder_is_named(room):
    locked = room / "locked"
    locked.mkdir()
    (locked / "x.txt").write_text("hidden", encoding="utf-8")
    locked.chmod(0)
    try:
        _, notices = scan_paths([room])
    finally:
        locked.chmod(0o700)
    assert notices == [
        "data-room/locked was not read: the folder cannot be opened (Permission denied)."
    ]


def test_a_folder_of_only_outside_links_says_why_it_is_empty(tmp_path):
    room = tmp_path / "room"
    room.mkdir()
    (room / "notes.txt").symlink_to("/etc/hostname")
    with pytest.raises(DocumentError, match="holds no document.*notes.txt was not read"):
        load_collection([room])


def test_a_single_member_left_keeps_the_notice(tmp_path):
    room = tmp_path / "room"
    room.mkdir()
    (room / "memo.txt").write_text("Memo.\n", encoding="utf-8")
    (room / "notes.txt").symlink_to("/etc/hostname")
    doc = load_collection([room])
    assert doc.kind == "text" and doc.warnings[0].startswith("room/notes.txt was not read")
