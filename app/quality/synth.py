"""Synthetic long documents with scattered facts and questions whose answers are known.

A document is filler prose (paragraphs about weather, markets, rivers and festivals that
never name a person, an office or a city) with fact sentences about a small invented
organisation inserted at recorded character offsets. Every office has a city, a head and
an archive size, so the facts that one question needs sit among look-alike facts about
the other offices. The facts a question needs are spread over separate parts of the
document (one per equal segment), so a reader must carry something from one part to
another.

Question kinds, each with a short answer (a city, a person's name or a number):

- ``single``: one fact ("In which city is the Aldermoor office located?").
- ``number``: one fact, numeric answer (boxes in an office's archive).
- ``two_hop``: city -> office -> head ("Who heads the office located in Tallinn?").
- ``three_hop``: person -> head -> office -> city ("... was transferred to the office
  that X heads; in which city does ... work now?"): three facts.
- ``count``: aggregation over 2-5 facts ("How many archivists joined ...?"), with
  archivists of other offices as distractors.

Everything is drawn from ``random.Random(seed)``: the same seed and size give the same
text, facts, offsets and questions on any machine.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from app.documents.model import Document

CHARS_PER_TOKEN = 4  # English prose in the Qwen and SmolLM2 tokenizers: about 4-4.5


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


KINDS = ("three_hop", "two_hop", "single", "count", "number")

FIRST_NAMES = _words(
    "Mira Tomas Ilse Bruno Agata Casimir Delphine Emil Freya Gideon Hedda Ivo Jolanta "
    "Konrad Liesel Matthias Nadia Oskar Petra Quentin Rosalind Stellan Tamsin Ulrich "
    "Vesna Wendel Xenia Yorick Zofia Anselm Birgit Cyprian Dorota Evander Fenna Gustav"
)
LAST_NAMES = _words(
    "Kovac Lindqvist Marchetti Okonkwo Halloran Vasquez Brennecke Dujardin Ferreira "
    "Gallagher Haugland Ishikawa Jaskolski Kettering Larousse Mbeki Nordahl Oyelaran "
    "Pennington Quarles Rasmussen Szabo Thorvaldsen Ulbricht Valtonen Whitcombe Yardley "
    "Zielinski Abernethy Castellanos Drummond Esterhazy Fairweather Grimaldi Hollis"
)
OFFICES = _words(
    "Aldermoor Brackenridge Copperfield Dunmore Eastwick Fallowmere Greystone Hawthorne "
    "Ironbridge Juniper Kestrel Larkspur Marlowe Northgate Oakhurst Pemberton Quillon "
    "Ravenscar Saltmarsh Thistledown Underhill Vale Westerby Yarrowfield"
)
CITIES = _words(
    "Lisbon Tallinn Osaka Valparaiso Krakow Nairobi Montreal Bergen Porto Antwerp "
    "Ljubljana Tbilisi Cusco Adelaide Hanoi Reykjavik Marrakesh Tampere Bilbao Graz "
    "Trieste Halifax Dunedin Seville"
)

FACT_TEMPLATES = {
    "located": (
        "The {office} office is located in {city}.",
        "The staff of the {office} office work from a building in {city}, where the office "
        "is located.",
    ),
    "head": (
        "{head} heads the {office} office.",
        "The {office} office is headed by {head}.",
    ),
    "boxes": (
        "The archive of the {office} office holds {n} boxes of records.",
        "An inventory found that the {office} office keeps {n} boxes of records in its archive.",
    ),
    "archivist": (
        "{person} joined the {office} office as an archivist.",
        "The {office} office hired {person} as an archivist.",
    ),
    "transfer": (
        "{person} was transferred to the office that {head} heads.",
        "Last spring {person} moved to the office headed by {head}.",
    ),
}

QUESTION_TEMPLATES = {
    "single": "In which city is the {office} office located?",
    "number": "How many boxes of records does the archive of the {office} office hold?",
    "two_hop": "Who heads the office that is located in {city}?",
    "three_hop": "{person} was transferred to another office. In which city does {person} "
    "work now?",
    "count": "How many archivists joined the {office} office?",
}

# Filler: plain prose on unrelated topics, assembled from these parts.
_SUBJECTS = (
    "The river",
    "The morning market",
    "An old stone bridge",
    "The harvest festival",
    "A flock of starlings",
    "The valley wind",
    "The lighthouse keeper's garden",
    "The northern orchard",
    "A narrow footpath",
    "The autumn rain",
    "The village bakery",
    "A line of poplars",
    "The tidal marsh",
    "The weekly fair",
    "A quiet reading room",
    "The mountain pass",
)
_VERBS = (
    "drew visitors",
    "changed slowly",
    "was repaired",
    "looked different",
    "grew busier",
    "stayed quiet",
    "was described at length",
    "caught the light",
    "was measured again",
    "drifted east",
)
_TAILS = (
    "after the long dry summer",
    "whenever the tide turned",
    "in the weeks before the first frost",
    "as the old almanacs had predicted",
    "while the fishing boats were away",
    "during the wettest month in a decade",
    "once the snow had melted on the ridge",
    "for reasons nobody wrote down",
    "as travellers had noticed for years",
    "under a pale and heavy sky",
)
_ASIDES = (
    "Local guides still argue about the details.",
    "Some accounts mention a second, smaller crossing upstream.",
    "Painters came to sketch the scene every evening.",
    "The records of that season are incomplete.",
    "Children counted the swallows on the wires.",
    "Farmers compared the yield with earlier years.",
    "A few letters from that time describe the smell of salt and pine.",
    "The almanac notes a brief thunderstorm on the third day.",
)


@dataclass
class Office:
    """One office of the invented organisation: the truth behind its fact sentences."""

    name: str
    city: str
    head: str
    boxes: int
    archivists: list[str] = field(default_factory=list)
    transferred: list[str] = field(default_factory=list)  # people moved to this office


@dataclass(frozen=True)
class Fact:
    id: str  # e.g. "located:Aldermoor"
    kind: str
    text: str
    start: int  # offsets into the document text: text[start:end] == fact.text
    end: int
    position: float  # start / len(text), 0..1


@dataclass(frozen=True)
class SynthQuestion:
    id: str
    kind: str
    text: str
    answer: str
    fact_ids: tuple[str, ...]  # the facts the answer is derived from


@dataclass
class SyntheticDocument:
    seed: int
    target_tokens: int
    text: str
    facts: dict[str, Fact]
    questions: list[SynthQuestion]
    # The world behind the text, so tests can derive every answer independently.
    offices: dict[str, Office] = field(default_factory=dict)

    def document(self) -> Document:
        sha = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        return Document(
            path=f"synthetic-seed{self.seed}-{self.target_tokens}tok.txt",
            sha256=sha,
            kind="text",
            title=f"Synthetic document (seed {self.seed}, ~{self.target_tokens:,} tokens)",
            text=self.text,
        )


def _filler_paragraph(rng: random.Random) -> list[str]:
    sentences = []
    for _ in range(rng.randint(4, 7)):
        if rng.random() < 0.25:
            sentences.append(rng.choice(_ASIDES))
        else:
            sentences.append(f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_TAILS)}.")
    return sentences


def generate(seed: int = 0, doc_tokens: int = 1500, questions: int = 5) -> SyntheticDocument:
    """A document of about ``doc_tokens`` tokens (``CHARS_PER_TOKEN`` characters each)
    with ``questions`` questions cycling through ``KINDS``."""
    if questions < 1:
        raise ValueError("at least one question")
    rng = random.Random(seed)
    kinds = [KINDS[i % len(KINDS)] for i in range(questions)]
    n_offices = min(len(OFFICES), questions + 2)  # two offices that only distract
    if questions > len(OFFICES) - 2:
        raise ValueError(f"at most {len(OFFICES) - 2} questions per document")
    offices = rng.sample(OFFICES, n_offices)
    cities = rng.sample(CITIES, n_offices)
    people = rng.sample([f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES], 160)
    take = iter(people)

    def variant(kind: str, **slots: object) -> str:
        return rng.choice(FACT_TEMPLATES[kind]).format(**slots)

    world: dict[str, Office] = {}
    facts: dict[str, str] = {}  # id -> sentence
    for office, city in zip(offices, cities, strict=True):
        head = next(take)
        boxes = rng.randint(12, 980)
        world[office] = Office(office, city, head, boxes)
        facts[f"located:{office}"] = variant("located", office=office, city=city)
        facts[f"head:{office}"] = variant("head", office=office, head=head)
        facts[f"boxes:{office}"] = variant("boxes", office=office, n=boxes)

    qs: list[SynthQuestion] = []
    count_offices = set()
    for i, (kind, office) in enumerate(zip(kinds, offices, strict=False)):
        w = world[office]
        qid = f"q{i + 1}"
        if kind == "single":
            text = QUESTION_TEMPLATES[kind].format(office=office)
            qs.append(SynthQuestion(qid, kind, text, w.city, (f"located:{office}",)))
        elif kind == "number":
            text = QUESTION_TEMPLATES[kind].format(office=office)
            qs.append(SynthQuestion(qid, kind, text, str(w.boxes), (f"boxes:{office}",)))
        elif kind == "two_hop":
            text = QUESTION_TEMPLATES[kind].format(city=w.city)
            pair = (f"located:{office}", f"head:{office}")
            qs.append(SynthQuestion(qid, kind, text, w.head, pair))
        elif kind == "three_hop":
            person = next(take)
            w.transferred.append(person)
            facts[f"transfer:{person}"] = variant("transfer", person=person, head=w.head)
            text = QUESTION_TEMPLATES[kind].format(person=person)
            chain = (f"transfer:{person}", f"head:{office}", f"located:{office}")
            qs.append(SynthQuestion(qid, kind, text, w.city, chain))
        else:  # count
            count_offices.add(office)
            n = rng.randint(2, 5)
            joined = []
            for _ in range(n):
                person = next(take)
                w.archivists.append(person)
                facts[f"archivist:{person}"] = variant("archivist", person=person, office=office)
                joined.append(f"archivist:{person}")
            text = QUESTION_TEMPLATES[kind].format(office=office)
            qs.append(SynthQuestion(qid, kind, text, str(n), tuple(joined)))
    # Distractor archivists at offices nobody asks to count.
    for office in offices:
        if office in count_offices:
            continue
        for _ in range(rng.randint(0, 1)):
            person = next(take)
            world[office].archivists.append(person)
            facts[f"archivist:{person}"] = variant("archivist", person=person, office=office)

    # Filler paragraphs up to the target size, leaving room for the facts.
    target_chars = max(1, doc_tokens) * CHARS_PER_TOKEN
    fact_chars = sum(len(s) + 1 for s in facts.values())
    paragraphs: list[list[str]] = []
    size = 0
    while size < target_chars - fact_chars or len(paragraphs) < 6:
        paragraph = _filler_paragraph(rng)
        paragraphs.append(paragraph)
        size += sum(len(s) + 1 for s in paragraph) + 1

    # Where each fact goes: the facts of one question in separate, equal segments of the
    # document (in a shuffled order), every other fact anywhere.
    n_par = len(paragraphs)
    placed: dict[str, int] = {}
    for q in qs:
        ids = list(q.fact_ids)
        rng.shuffle(ids)
        for k, fid in enumerate(ids):
            lo = k * n_par // len(ids)
            hi = max(lo, (k + 1) * n_par // len(ids) - 1)
            placed.setdefault(fid, rng.randint(lo, hi))
    for fid in facts:
        placed.setdefault(fid, rng.randrange(n_par))
    inserts: dict[int, list[str]] = {}
    for fid in sorted(facts):  # sorted: the order of insertion is seed-determined only
        inserts.setdefault(placed[fid], []).append(fid)
    for index, fids in inserts.items():
        for fid in fids:
            at = rng.randint(0, len(paragraphs[index]))
            paragraphs[index].insert(at, "\x00" + fid)

    # Render, recording each fact's offsets.
    out: list[str] = []
    pos = 0
    spans: dict[str, tuple[int, int]] = {}
    for p, paragraph in enumerate(paragraphs):
        if p:
            out.append("\n\n")
            pos += 2
        for s, sentence in enumerate(paragraph):
            if s:
                out.append(" ")
                pos += 1
            if sentence.startswith("\x00"):
                fid = sentence[1:]
                sentence = facts[fid]
                spans[fid] = (pos, pos + len(sentence))
            out.append(sentence)
            pos += len(sentence)
    text = "".join(out)
    fact_records = {
        fid: Fact(fid, fid.split(":", 1)[0], facts[fid], a, b, a / max(1, len(text)))
        for fid, (a, b) in spans.items()
    }
    return SyntheticDocument(seed, doc_tokens, text, fact_records, qs, world)
