import pytest

from app.agent.decompose import decompose


@pytest.mark.parametrize(
    ("query", "core", "inst"),
    [
        (
            "Who signed the contract? Answer in one word.",
            "Who signed the contract?",
            "Answer in one word.",
        ),
        (
            "How many incidents are reported? Respond in JSON with keys count and pages.",
            "How many incidents are reported?",
            "Respond in JSON with keys count and pages.",
        ),
        ("What is the story about?", "What is the story about?", ""),
        ("Summarise the risks. Be brief.", "Summarise the risks.", "Be brief."),
        ("List the parties. Use bullet points.", "List the parties.", "Use bullet points."),
        ("Answer in one word.", "Answer in one word.", ""),  # never an empty q_core
    ],
)
def test_decompose(query, core, inst):
    q = decompose(query)
    assert (q.q_core, q.q_inst) == (core, inst)
