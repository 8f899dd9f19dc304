"""Split a user's query into q_core (what is asked) and q_inst (how to format the answer).

The paper drives the reading loop with q_core only and appends q_inst to the final
answer prompt, so format instructions ("answer in JSON", "one word") don't distract the
reading. This is a deterministic heuristic; the GUI shows both parts and lets the user
edit them before a run starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence is a format instruction when it is mostly about the shape of the answer.
_INSTRUCTION = re.compile(
    r"""^(
        (please\s+)?(answer|respond|reply|write|give|output|return|format|present|provide|list)
            \b.*\b(in|as|with|using)\s+(json|yaml|csv|markdown|a\s+table|a\s+list|bullet|
            (one|a\s+single|\d+|two|three|five|ten)\s+(word|sentence|paragraph|line|number)s?)
        |(answer|respond|reply)\s+(only|briefly|concisely|with\s+(yes|no|a|one|the))
        |(be\s+)?(brief|concise)\b
        |(do\s+not|don't)\s+(explain|elaborate|include)
        |(use|in)\s+(json|yaml|markdown|bullet\s+points)
        |(keep|limit)\s+(it|the\s+answer|your\s+answer)\b
        |(only\s+)?(output|return)\s+(only\s+)?(the|a|one)\b
        |format\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])|\n+")


@dataclass(frozen=True)
class Query:
    q_core: str
    q_inst: str


def decompose(query: str) -> Query:
    sentences = [s.strip() for s in _SENTENCE.split(query.strip()) if s.strip()]
    core = [s for s in sentences if not _INSTRUCTION.match(s)]
    inst = [s for s in sentences if _INSTRUCTION.match(s)]
    if not core:  # never leave the reading loop without a question
        return Query(query.strip(), "")
    return Query(" ".join(core), " ".join(inst))
