"""Reading the model's memory-step output: thinking, <memory> and <plan>.

A model that forgets or breaks the tags must not lose the run: the step falls back
(whole answer as memory, previous plan kept) and is marked malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.llm.backend import split_thinking

_MEMORY = re.compile(r"<memory>(.*?)(?:</memory>|(?=<plan>)|\Z)", re.DOTALL | re.IGNORECASE)
_PLAN = re.compile(r"<plan>(.*?)(?:</plan>|\Z)", re.DOTALL | re.IGNORECASE)
_LEAD = re.compile(r"^\s*Updated memory:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedStep:
    thinking: str
    memory: str
    plan: str
    malformed: bool
    problems: tuple[str, ...] = ()


def parse_memory_step(raw: str, previous_plan: str) -> ParsedStep:
    thinking, content = split_thinking(raw)
    problems: list[str] = []
    memories = _MEMORY.findall(content)
    plans = _PLAN.findall(content)
    if "</memory>" not in content.lower():
        problems.append("no closed <memory> block")
    if "</plan>" not in content.lower():
        problems.append("no closed <plan> block")
    # The last block wins: models sometimes restate the example format before answering.
    memory = memories[-1].strip() if memories else ""
    plan = plans[-1].strip() if plans else ""
    if not memory:
        # Fallback from the design: keep the whole answer as memory so nothing is lost.
        memory = _LEAD.sub("", re.sub(r"</?(memory|plan)>", "", content)).strip()
        problems.append("memory taken from the whole answer")
    if not plan:
        plan = previous_plan
        problems.append("previous plan kept")
    return ParsedStep(thinking, memory, plan, malformed=bool(problems), problems=tuple(problems))
