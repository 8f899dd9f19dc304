"""Each line of a step's memory traced to the passage it came from (or marked as the
model's inference), citations that name a page once, and answers that only echo the
prompt kept out of the cited claims."""

from __future__ import annotations

from app.evidence.provenance import (
    Evidence,
    cite_answer,
    is_prompt_echo,
    trace_lines,
)
from tests.evidence.memory_run import FACTS, INVENTED, engine_events


def finished_steps(tmp_path, store):
    doc, _, events, _ = engine_events(tmp_path, store)
    done = [e.step for e in events if type(e).__name__ == "StepFinished"]
    return doc, done


def test_every_memory_line_traces_to_its_page_or_is_inference(tmp_path, store):
    doc, steps = finished_steps(tmp_path, store)
    last = len(steps) - 1
    traces = {t.line: t for t in trace_lines(doc, steps, last)}
    for page, fact in FACTS.items():
        ev = traces[fact].evidence
        assert ev is not None and ev.page == page and ev.confidence == 1.0
        assert fact in " ".join(doc.text[ev.char_start : ev.char_end].split())
        # the step that brought the line in read that page
        first = steps[ev.step_first].chunk
        assert first.page_first <= page <= first.page_last
    assert traces[INVENTED].evidence is None and traces[INVENTED].traceable
    # an earlier step's memory traces only against what had been read by then
    early = next(i for i, s in enumerate(steps) if FACTS[2] in s.memory)
    assert all(
        t.evidence is None or t.evidence.page <= steps[early].chunk.page_last
        for t in trace_lines(doc, steps, early)
    )


def test_a_line_whose_numbers_the_passage_does_not_state_is_inference(tmp_path, store):
    from dataclasses import replace

    doc, steps = finished_steps(tmp_path, store)
    wrong = FACTS[4].replace("3 bridges", "5 bridges")
    odd = replace(steps[-1], memory=f"{FACTS[4]}\n{wrong}")
    right, misquoted = trace_lines(doc, [*steps[:-1], odd], len(steps) - 1)
    assert right.evidence is not None and right.evidence.page == 4
    assert misquoted.evidence is None and misquoted.traceable


def test_headings_and_placeholders_are_not_called_inference(tmp_path, store):
    from dataclasses import replace

    doc, steps = finished_steps(tmp_path, store)
    odd = replace(steps[0], memory="Findings:\nNo previous memory\n\n" + FACTS[2])
    traces = trace_lines(doc, [odd], 0)
    assert [t.traceable for t in traces] == [False, False, True]
    assert trace_lines(doc, steps, 99) == []


def _ev(page: int, claim: str = "Alvarez approved 14 invoices") -> Evidence:
    return Evidence(claim, claim, 0, 0, 10 * page, 10 * page + 5, page, (), 1.0)


def test_a_page_is_cited_once_per_claim():
    evidence = [_ev(3), _ev(3), _ev(5)]
    ((claim, backing),) = cite_answer("Alvarez approved 14 invoices.", evidence)
    assert [e.page for e in backing] == [3, 5]


def test_answers_that_echo_the_prompt_are_not_cited_claims():
    question = "How many safety incidents did the auditors record in total?"
    echo = (
        "You are presented with a problem and a previous memory. "
        "Please answer the problem based on the previous memory. <problem> "
        "How many safety incidents did the auditors record in total? "
        "Therefore, the answer is (insert answer here)."
    )
    assert cite_answer(echo, [_ev(2)], question) == []
    assert is_prompt_echo("The previous memory contains details about a safety incident.", question)
    for real in (
        "The auditors recorded 7 safety incidents in total.",
        "Therefore, the answer is 7.",
    ):
        assert not is_prompt_echo(real, question)
    mixed = cite_answer(f"{echo} Alvarez approved 14 invoices.", [_ev(2)], question)
    assert [c for c, _ in mixed] == ["Alvarez approved 14 invoices."]
