from app.agent.parsing import parse_memory_step
from app.llm.backend import split_thinking


def test_well_formed_step_with_thinking():
    raw = (
        "let me think </think>\nUpdated memory:\n<memory>\nA=1\n</memory>\n<plan>\nfind B\n</plan>"
    )
    step = parse_memory_step(raw, "old plan")
    assert step == step.__class__("let me think", "A=1", "find B", False, ())


def test_split_on_last_think_end():
    thinking, content = split_thinking("a </think> b </think> answer")
    assert thinking == "a </think> b"
    assert content == "answer"


def test_no_think_tag_means_no_thinking():
    assert split_thinking("just an answer") == ("", "just an answer")


def test_missing_tags_fall_back_to_whole_answer_and_keep_plan():
    step = parse_memory_step("Updated memory:\nThe fee is 40 EUR.", "look for fees")
    assert step.malformed
    assert step.memory == "The fee is 40 EUR."
    assert step.plan == "look for fees"
    assert "previous plan kept" in step.problems


def test_unclosed_memory_before_plan():
    step = parse_memory_step("<memory>\nfact one\n<plan>next</plan>", "")
    assert step.memory == "fact one"
    assert step.plan == "next"
    assert step.malformed  # the memory block was never closed


def test_last_block_wins_over_restated_example():
    raw = (
        "<memory>\n(Your updated memory here.)\n</memory>\n<plan>\n(plan)\n</plan>\n"
        "<memory>\nreal fact\n</memory>\n<plan>\nreal plan\n</plan>"
    )
    step = parse_memory_step(raw, "")
    assert (step.memory, step.plan, step.malformed) == ("real fact", "real plan", False)
