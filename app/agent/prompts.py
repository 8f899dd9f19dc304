"""The prompts QwenLong-L1.5 was RL-trained on, verbatim.

Source: QwenLong-L1.5 technical report (arXiv 2512.12967), appendix D, and the model
card's single-pass template. Treat these like a chat template: the model's quality
depends on this exact text, so never reword them; change only what fills the slots.
"""

from __future__ import annotations

MEMORY_UPDATE = """<problem>
{question}
</problem>
<previous_memory>
{memory}
</previous_memory>
<section>
{chunk}
</section>
You are an assistant equipped with information memory capabilities. Based on the provided <problem>, <previous_memory> (both <memory> and <plan>), and a <section> of a long article, you will traverse the sections of the article in the original order. Carefully read each section and update the memory with new information that helps answer the problem, while retaining all relevant details from the previous memory. After outputting the updated memory, do some simple planning to record the plan you need to answer the question, in addition to the existing memory.
[Important Notes]
1. You cannot see the full article; only focus on information memorization. You do not need to answer the <problem> directly at this stage.
2. Ensure the memory is self-contained – meaning the final memory alone, without additional context, should contain sufficient information to fully answer the <problem>.
3. Recognize that both the <previous_memory>.<memory> and <previous_memory>.<plan> may contain inaccuracies or be suboptimal for the current task. Therefore,
• Pay close attention to the <problem>, critically evaluate the existing memory and plan, and make appropriate updates and adjustments to the memory based on the information found in the current <section>.
• Your primary directive is to serve the <problem>, even if it means correcting prior memory or plans.
4. This is a strictly one-way reading process. You cannot go back to re-read previous sections. Therefore,
• when you identify information to be extracted for the memory, you must directly and completely integrate the target content into the <memory> section.
• Do not simply mark or reference key information; ensure the full, relevant segment is incorporated.
5. Carefully evaluate whether the extracted memory information truly serves the target requirement of the <problem>.
• Avoid being misled by content that contains similar entities or semantic information but does not directly contribute to answering the <problem>.
• Prioritize factual relevance and contribution to the overall solution.
[Output Format Example]
Updated memory:
<memory>
(Your updated and consolidated memory here. Ensure it is self-contained and comprehensive for answering the <problem>.)
</memory>
<plan>
(Your brief plan for the next stage of memory extraction, indicating what type of information you will look for in subsequent sections related to the <problem>.)
</plan>
[End Example]
Updated memory:
"""

# The first step has no memory yet; the paper fills the slot with an explicit placeholder.
NO_PREVIOUS_MEMORY = "No previous memory"

FINAL_ANSWER = """You are presented with a problem and a previous memory. Please answer the problem based on the previous memory.
<problem>
{question}
</problem>
<memory>
{memory}
</memory>
Your answer:
"""

SINGLE_PASS = """Please read the following text and answer the question below.

<text>
{document}
</text>

{question}

Format your response as follows: "Therefore, the answer is (insert answer here)"."""

# The single-pass prompt split at the question, so the document part is a stable prefix
# whose KV cache a follow-up question on the same document can reuse.
SINGLE_PASS_PREFIX, SINGLE_PASS_SUFFIX = SINGLE_PASS.split("{question}")


def previous_memory_block(memory: str, plan: str) -> str:
    """What fills {memory} in the update prompt: both blocks, or the placeholder."""
    if not memory and not plan:
        return NO_PREVIOUS_MEMORY
    return f"<memory>\n{memory}\n</memory>\n<plan>\n{plan}\n</plan>"


def memory_update_prompt(q_core: str, memory: str, plan: str, chunk: str) -> str:
    return MEMORY_UPDATE.format(
        question=q_core, memory=previous_memory_block(memory, plan), chunk=chunk
    )


def final_answer_prompt(q_core: str, q_inst: str, memory: str) -> str:
    # q_inst reaches only the final answer (paper, section 2.3).
    question = f"{q_core}\n\n{q_inst}" if q_inst else q_core
    return FINAL_ANSWER.format(question=question, memory=memory)


def single_pass_prompt(document: str, q_core: str, q_inst: str) -> str:
    question = f"{q_core}\n\n{q_inst}" if q_inst else q_core
    return SINGLE_PASS_PREFIX.format(document=document) + question + SINGLE_PASS_SUFFIX
