"""The stored runs: ``sessions`` lists them, ``show`` prints one again, ``export``
writes its report, ``compare`` sets two side by side."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.agent.events import AnswerStarted, RunFinished, RunStarted, StepFinished, StepStarted
from app.cli.transcript import Printer
from app.store import collections
from app.store.database import open_database


def cmd_sessions(args: argparse.Namespace) -> int:
    store = open_database()
    for row in store.list_sessions(search=args.search):
        print(f"{row['id']:>5}  {row.get('updated_at', '')}  {row.get('title', '')}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = open_database()
    run = store.get_run(args.run_id)
    printer = Printer(sys.stdout, stream_tokens=False)
    printer(
        RunStarted(run.id, run.mode, run.mode_reason, run.q_core, run.q_inst, tuple(run.chunks))
    )
    for step in run.steps:
        printer(StepStarted(run.id, step.chunk, len(run.chunks)))
        printer(StepFinished(run.id, step, len(run.chunks), ""))
    if run.answer is not None:
        printer(AnswerStarted(run.id))
        printer(RunFinished(run.id, run.answer))
    else:
        print(f"\n(no answer: run is {run.status}; {len(run.steps)}/{len(run.chunks)} steps)")
    members = collections.members_of(store, run.document_id)
    if members:  # a collection: which files it read, and any that changed since
        changed = {c.member.index: c for c in collections.changed_members(members)}
        print(f"\nDocuments ({len(members)}):")
        for m in members:
            flag = (
                f"  ** {changed[m.index].what} on disk since the run **"
                if m.index in changed
                else ""
            )
            print(f"  {m.number}. {m.title}  {m.page_count} pages  sha256 {m.sha256[:16]}…{flag}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from app.evidence.report import export_run

    for path in export_run(open_database(), args.run_id, Path(args.out)).values():
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from app.evidence.compare import compare_runs, to_markdown

    markdown = to_markdown(compare_runs(open_database(), args.run_a, args.run_b))
    if args.out:
        Path(args.out).write_text(markdown, encoding="utf-8")
        print(args.out)
    else:
        sys.stdout.write(markdown)
    return 0
