"""The quality harness: generator, scoring, retrieval ranking, plot, end-to-end runs."""

from __future__ import annotations

import json
import re

import pytest

from app.agent.chunking import plan_chunks
from app.gui.quality_plot import Bar, HistoryPoint, draw
from app.quality import main
from app.quality.command import resolve_methods
from app.quality.report import history
from app.quality.retrieval import BM25, select, terms
from app.quality.scoring import contains_match, exact_match, extract_answer, normalize
from app.quality.synth import CHARS_PER_TOKEN, CITIES, OFFICES, generate
from tests.fakes import FakeBackend, memory_output


def words(text: str) -> int:
    return len(text.split())


# -- generator ------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "size"), [(0, 1200), (1, 5000), (42, 20000)])
def test_facts_sit_at_their_stated_offsets(seed, size):
    synth = generate(seed, size, 5)
    assert {q.kind for q in synth.questions} == {
        "three_hop",
        "two_hop",
        "single",
        "count",
        "number",
    }
    for fact in synth.facts.values():
        assert synth.text[fact.start : fact.end] == fact.text
        assert fact.position == pytest.approx(fact.start / len(synth.text))
    for q in synth.questions:
        assert q.fact_ids and all(f in synth.facts for f in q.fact_ids)


def test_the_facts_of_one_question_are_spread_over_separate_parts():
    synth = generate(3, 8000, 10)
    text = synth.text
    n_paragraphs = text.count("\n\n") + 1
    for q in synth.questions:
        k = len(q.fact_ids)
        segments = {
            text[: synth.facts[f].start].count("\n\n") * k // n_paragraphs for f in q.fact_ids
        }
        assert segments == set(range(k)), q


def test_size_scales_with_the_parameter_and_the_facts_do_not():
    small, large = generate(5, 2000, 5), generate(5, 40000, 5)
    for synth, tokens in ((small, 2000), (large, 40000)):
        assert abs(len(synth.text) - tokens * CHARS_PER_TOKEN) < 0.1 * tokens * CHARS_PER_TOKEN
    assert len(small.facts) == len(large.facts)
    assert [q.answer for q in small.questions] == [q.answer for q in large.questions]


def test_generation_is_deterministic_by_seed():
    a, b, c = generate(11, 3000, 6), generate(11, 3000, 6), generate(12, 3000, 6)
    assert a.text == b.text and a.questions == b.questions and a.facts == b.facts
    assert a.text != c.text
    assert a.document().sha256 == b.document().sha256


def oracle(text: str, question: str, kind: str) -> str:
    """Answer from the text alone, with regular expressions over the fact sentences."""

    def city_of(office: str) -> str:
        m = re.search(rf"The {office} office is located in (\w+)\.", text) or re.search(
            rf"The staff of the {office} office work from a building in (\w+),", text
        )
        assert m, office
        return m.group(1)

    def office_headed_by(head: str) -> str:
        m = re.search(rf"{head} heads the (\w+) office\.", text) or re.search(
            rf"The (\w+) office is headed by {head}\.", text
        )
        assert m, head
        return m.group(1)

    if kind == "single":
        return city_of(re.search(r"the (\w+) office", question).group(1))
    if kind == "number":
        office = re.search(r"the (\w+) office", question).group(1)
        m = re.search(rf"{office} office holds (\d+) boxes", text) or re.search(
            rf"the {office} office keeps (\d+) boxes", text
        )
        return m.group(1)
    if kind == "two_hop":
        city = re.search(r"located in (\w+)\?", question).group(1)
        offices = dict.fromkeys(re.findall(r"(?i)the (\w+) office", text))
        office = next(o for o in offices if city_of(o) == city)
        m = re.search(rf"(\w+ \w+) heads the {office} office\.", text) or re.search(
            rf"The {office} office is headed by (\w+ \w+)\.", text
        )
        return m.group(1)
    if kind == "three_hop":
        person = re.match(r"(\w+ \w+) was transferred", question).group(1)
        m = re.search(rf"{person} was transferred to the office that (\w+ \w+) heads", text)
        m = m or re.search(rf"{person} moved to the office headed by (\w+ \w+)\.", text)
        return city_of(office_headed_by(m.group(1)))
    office = re.search(r"the (\w+) office", question).group(1)
    joined = re.findall(rf"joined the {office} office as an archivist", text)
    hired = re.findall(rf"The {office} office hired \w+ \w+ as an archivist", text)
    return str(len(joined) + len(hired))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_answer_can_be_derived_from_the_text(seed):
    synth = generate(seed, 3000, 10)
    for q in synth.questions:
        assert oracle(synth.text, q.text, q.kind) == q.answer, q
        world = synth.offices
        if q.kind == "count":
            office = re.search(r"the (\w+) office", q.text).group(1)
            assert len(world[office].archivists) == int(q.answer)


def test_filler_never_names_an_office_a_city_or_a_person():
    synth = generate(9, 6000, 5)
    text = synth.text
    for fact in sorted(synth.facts.values(), key=lambda f: -f.start):
        text = text[: fact.start] + text[fact.end :]
    people = {p for o in synth.offices.values() for p in (o.head, *o.archivists)}
    for name in (*OFFICES, *CITIES, *people, "office", "archivist"):
        assert name not in text


# -- scoring --------------------------------------------------------------------------


def test_normalise_like_squad_plus_number_words():
    assert normalize("The  Lisbon!") == "lisbon"
    assert normalize("An Ode, to A city") == "ode to city"
    assert normalize("Three") == normalize("3") == "3"
    assert exact_match("  mira KOVAC. ", "Mira Kovac")
    assert not exact_match("Mira", "Mira Kovac")


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        ('Therefore, the answer is "Lisbon".', "Lisbon"),
        ("Therefore, the answer is (Lisbon).", "Lisbon"),
        ("Answer: **Mira Kovac**\nBecause the memory says so.", "Mira Kovac"),
        ("Osaka. The office moved there in spring.", "Osaka"),
        ("The answer is 42.", "42"),
        ("The answer is (insert answer here). The answer is Porto.", "Porto"),
        ("", ""),
    ],
)
def test_extract_answer(reply, answer):
    assert extract_answer(reply) == answer


def test_contains_match_is_on_whole_words():
    assert contains_match("I believe it is Lisbon, in Portugal.", "lisbon")
    assert contains_match("There were three of them.", "3")
    assert not contains_match("There were 13 of them.", "3")
    assert not contains_match("anything", "")


# -- retrieval ------------------------------------------------------------------------


def test_bm25_ranks_the_chunk_naming_the_fact_first():
    chunks = [
        "The Quillon office is headed by Mira Kovac. Rain fell over the harbour.",
        "The Dunmore office is located in Cusco. The bakery stayed quiet.",
        "The Quillon office hired Ivo Szabo. The Vale office is located in Porto.",
        "The Quillon office is located in Osaka. Starlings drifted east.",
        "Nothing here but rain, wind and a line of poplars.",
    ]
    ranked = BM25(chunks).rank("In which city is the Quillon office located?")
    assert ranked[0][0] == 3 and ranked[-1] == (4, 0.0)


def test_retrieval_finds_single_facts_in_generated_documents():
    hits = total = 0
    for seed in range(12):
        synth = generate(seed, 4000, 10)
        chunks = plan_chunks(synth.text, words, 100)
        bm25 = BM25([synth.text[c.start : c.end] for c in chunks])
        for q in synth.questions:
            if q.kind in ("single", "number"):
                fact = synth.facts[q.fact_ids[0]]
                best = chunks[bm25.rank(q.text)[0][0]]
                hits += best.start <= fact.start < best.end
                total += 1
    assert total == 48 and hits / total >= 0.95


def test_select_keeps_top_k_within_the_budget_in_document_order():
    chunks = [
        "rain over the harbour",
        "the Quillon office holds 12 boxes of records",
        "more rain and wind",
        "Quillon again, boxes here too",
        "nothing relevant",
    ]
    assert terms("How many boxes does the Quillon office hold?") == [
        "boxes",
        "quillon",
        "office",
        "hold",
    ]
    assert select(chunks, "How many boxes does the Quillon office hold?", 2, 100, words) == [1, 3]
    assert select(chunks, "boxes Quillon office", 5, 8, words) == [1]  # budget of 8 words
    assert select(chunks, "unrelated", 3, 100, words) == []


def test_method_names():
    assert resolve_methods(["agent,rag"]) == ["memory_agent", "retrieval"]
    assert resolve_methods(["single", "single_pass"]) == ["single_pass"]
    with pytest.raises(SystemExit):
        resolve_methods(["nope"])


# -- plot -----------------------------------------------------------------------------


def test_plot_writes_a_png_of_the_asked_size(tmp_path):
    from PySide6.QtGui import QColor, QImage

    bars = [
        Bar("memory_agent", 0.6, 0.8),
        Bar("single_pass", None, None, "does not fit"),
        Bar("retrieval", 0.4, 0.4),
    ]
    points = [
        HistoryPoint("11-22 10:00", {"memory_agent": 0.2, "retrieval": 0.4}),
        HistoryPoint("11-23 10:00", {"memory_agent": 0.6, "retrieval": 0.4}),
    ]
    path = draw(tmp_path / "q.png", bars, points, "title", "subtitle", size=(800, 400))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    image = QImage(str(path))
    assert (image.width(), image.height()) == (800, 400)
    colours = {image.pixelColor(x, y).name() for x in range(0, 800, 3) for y in range(0, 400, 3)}
    assert QColor("#1f77b4").name() in colours and QColor("#2ca02c").name() in colours


# -- end to end -----------------------------------------------------------------------


def scripted(answers: dict[str, str], reply: str = "Therefore, the answer is {answer}."):
    """A fake model: memory steps keep a memory; answers look up the question's gold."""

    def script(prompt: str) -> str:
        if prompt.rstrip().endswith("Updated memory:"):
            return memory_output("facts so far", "keep reading", thinking="reading")
        question = next(q for q in answers if q in prompt)
        return "thinking</think>" + reply.format(answer=answers[question])

    return script


def run_fake(tmp_path, args, reply="Therefore, the answer is {answer}.", n_ctx=4096):
    def arg(name: str, default: int) -> int:
        return int(args[args.index(name) + 1]) if name in args else default

    synth = generate(arg("--seed", 0), arg("--doc-tokens", 1200), arg("--questions", 5))
    answers = {q.text: q.answer for q in synth.questions}
    backend = FakeBackend(scripted(answers, reply), n_ctx=n_ctx)
    out = tmp_path / "results"
    assert main([*args, "--out", str(out), "--quiet"], backend=backend) == 0
    files = sorted(out.glob("quality-*.json"))
    return json.loads(files[-1].read_text()), out, backend


def test_end_to_end_with_a_model_that_knows_the_answers(tmp_path, capsys):
    args = ["--doc-tokens", "1500", "--seed", "3", "--chunk-tokens", "256"]
    data, out, backend = run_fake(tmp_path, args)
    assert set(data["summary"]) == {"memory_agent", "single_pass", "retrieval"}
    for method, s in data["summary"].items():
        assert s["answered"] == s["questions"] == 5, method
        assert s["em"] == 1.0 and s["contains"] == 1.0, method
    agent = [r for r in data["results"] if r["method"] == "memory_agent"]
    assert all(r["steps"] >= 4 and r["tokens"] > 0 and r["seconds"] >= 0 for r in agent)
    single = [r for r in data["results"] if r["method"] == "single_pass"]
    assert all(r["steps"] == 1 for r in single)
    assert any("needed facts in the prompt" in r["note"] for r in data["results"])
    assert data["document"]["tokens"] > 900 and len(data["questions"]) == 5
    assert list(out.glob("quality-*.png"))
    printed = capsys.readouterr().out
    assert "memory_agent" in printed and "1.00" in printed
    # the memory-agent prompts really were the app's: a memory step per chunk, then the answer
    assert sum("<previous_memory>" in p for p in backend.prompts) >= 15


def test_scores_separate_exact_from_contained_answers(tmp_path):
    args = ["--doc-tokens", "800", "--seed", "1", "--methods", "single,rag"]
    data, _, _ = run_fake(tmp_path, args, reply="Well, I would say {answer} probably\nor not")
    for s in data["summary"].values():
        assert s["em"] == 0.0 and s["contains"] == 1.0


def test_single_pass_is_skipped_when_the_document_does_not_fit(tmp_path):
    args = ["--doc-tokens", "3000", "--seed", "2", "--ctx", "2048", "--questions", "2"]
    args += ["--methods", "single_pass", "retrieval"]
    data, out, _ = run_fake(tmp_path, args, n_ctx=2048)
    single = data["summary"]["single_pass"]
    assert single["em"] is None and single["skipped"] == 2 and single["answered"] == 0
    assert all(
        r["status"] == "does_not_fit" for r in data["results"] if r["method"] == "single_pass"
    )
    assert data["summary"]["retrieval"]["em"] == 1.0
    # a second run: the plot's history has two points
    run_fake(tmp_path, args, n_ctx=2048)
    assert len(history(out)) >= 2


@pytest.mark.llm
def test_tiny_run_on_the_demo_model(demo_model, tmp_path):
    out = tmp_path / "real"
    # ~600 demo-model tokens in 320-token chunks: two memory steps and the answer.
    args = ["--doc-tokens", "250", "--questions", "1", "--ctx", "2048", "--chunk-tokens", "320"]
    args += ["--max-new-tokens", "16", "--out", str(out), "--quiet"]
    assert main(args) == 0
    data = json.loads(next(out.glob("quality-*.json")).read_text())
    assert data["model"]["backend"] == "local" and "demo" in data["model"]["name"]
    for method, s in data["summary"].items():
        assert s["answered"] == 1, method
        assert 0.0 <= s["em"] <= 1.0 and 0.0 <= s["contains"] <= 1.0
    agent = [r for r in data["results"] if r["method"] == "memory_agent"]
    assert all(r["steps"] >= 3 and r["prompt_tokens"] > 300 for r in agent)
    assert list(out.glob("quality-*.png"))


def test_a_failing_model_is_recorded_not_fatal(tmp_path):
    def broken(prompt: str) -> str:
        raise ValueError("the model fell over")

    out = tmp_path / "broken"
    args = ["--doc-tokens", "600", "--questions", "2", "--out", str(out), "--quiet"]
    assert main(args, backend=FakeBackend(broken)) == 0
    data = json.loads(next(out.glob("quality-*.json")).read_text())
    for s in data["summary"].values():
        assert s["em"] is None and s["failed"] == 2
    assert all("fell over" in r["note"] for r in data["results"])
