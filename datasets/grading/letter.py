"""Multiple-choice letters (GPQA): anchored on ``Answer: X``, with only unambiguous fallbacks.

A letter is taken only from an explicit answer statement, a box, or a line that holds
nothing but the letter; never from prose ("answer choice C is tempting", "Option A
and B"), so a model that does not commit to an answer gets no credit by accident.
"""

from __future__ import annotations

import re


def _patterns(letters: str) -> list[re.Pattern[str]]:
    L = f"[{letters}]"
    # "Answer: (A) or (B)" names two letters: no single choice.
    not_two = rf"(?![\)\]]?\s*(?:and|or|/|,)\s*[\(\[]?{L}(?![A-Za-z0-9]))"
    # After the letter: no more word characters, and "A" must not be the article ("Answer: A good ...").
    end = r"(?![A-Za-z0-9])(?!(?<=A)\s+(?!is\b|because\b|since\b|as\b|and\b|or\b)[a-z])"
    return [
        # "Answer: C", "**Answer:** C", "Final Answer: (C)", "ANSWER: C"
        re.compile(rf"(?i:answer)\s*\**\s*[:：]\s*\**\s*[\(\[]?\s*\**({L}){end}{not_two}"),
        # "the answer is (C)", "The correct answer is C.", "answer is: **C**"
        re.compile(
            rf"(?i:answer|choice|option)\s+(?i:is|would be|should be)\s*:?\s*\**\s*[\(\[]?\s*"
            rf"(?i:option\s+|choice\s+)?({L}){end}{not_two}"
        ),
        re.compile(rf"\\boxed\{{\s*(?:\\text\{{)?\s*\(?({L})\)?\s*\}}?\s*\}}"),
    ]


_LINE_ONLY = re.compile(r"^\s*\**\s*[\(\[]?\s*([A-Z])\s*[\)\]]?\s*[.:]?\s*\**\s*$")


def extract(text: str, letters: str = "ABCD") -> str | None:
    """The chosen letter in ``text`` (one of ``letters``), or None if there is no clear choice.

    Order: the last ``Answer: X`` / ``answer is X`` / ``\\boxed{X}``; else a final line that is
    only the letter (``C``, ``(C)``, ``**C.**``).
    """
    best: tuple[int, str] | None = None
    for pattern in _patterns(letters):
        for m in pattern.finditer(text):
            if best is None or m.start() > best[0]:
                best = (m.start(), m.group(1))
    if best is not None:
        return best[1]
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines:
        alone = _LINE_ONLY.match(lines[-1])
        if alone and alone.group(1) in letters:
            return alone.group(1)
    return None
