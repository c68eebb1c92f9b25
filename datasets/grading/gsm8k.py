"""GSM8K answers: ``#### n``, else "the answer is n", else the last number; exact numeric comparison.

Numbers keep their sign and decimals and lose thousands separators, currency and
trailing zeros, so ``$1,234.50`` reads as ``1234.5``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal

from datasets.grading.math import extract_boxed

# A number as people write it: -1,234.5 / 1234 / .5 / 3/4 is read as two numbers on purpose
# (GSM8K answers are integers or decimals; a fraction means the model did not finish).
NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+"
_NUMBER_RE = re.compile(rf"(?<![\w.])(?:{NUMBER})(?!\w)|(?<![\w.,])(?:{NUMBER})")
# A number followed by "/4" is the start of a fraction, not a final answer.
_NOT_FRACTION = r"(?!\d|/\d)"
_HASHES_RE = re.compile(rf"####\s*\$?\s*({NUMBER}){_NOT_FRACTION}")
_ANSWER_IS_RE = re.compile(
    rf"[Tt]he (?:final )?answer is\s*:?\s*\**\s*\$?\\?\$?\s*({NUMBER}){_NOT_FRACTION}", re.IGNORECASE
)

Mode = Literal["strict", "flexible"]


def canonical_number(text: str) -> str | None:
    """``"1,234.50"`` -> ``"1234.5"``; None if ``text`` is not a plain number."""
    cleaned = text.strip().replace(",", "").replace("$", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    normal = format(value.normalize(), "f")
    if "." in normal:
        normal = normal.rstrip("0").rstrip(".")
    return "0" if normal in ("-0", "") else normal


def extract(text: str, mode: Mode = "flexible") -> str | None:
    """The final number in a GSM8K-style answer, canonicalised, or None.

    strict: only ``#### n`` or ``The answer is n`` (the last one).
    flexible: those, else the last ``\\boxed{}`` number, else the last number in the text.
    """
    for pattern in (_HASHES_RE, _ANSWER_IS_RE):
        hits = pattern.findall(text)
        if hits:
            return canonical_number(hits[-1])
    if mode == "strict":
        return None
    boxed = extract_boxed(text)
    if boxed is not None:
        numbers = _NUMBER_RE.findall(boxed.replace("\\!", "").replace("{,}", ","))
        if numbers:
            return canonical_number(numbers[-1])
    numbers = _NUMBER_RE.findall(text)
    return canonical_number(numbers[-1]) if numbers else None


def reference_answer(solution: str) -> str:
    """The number after ``####`` in a GSM8K reference solution, commas removed."""
    hits = _HASHES_RE.findall(solution)
    if not hits:
        raise ValueError(f"no '#### n' final answer in solution ending {solution[-60:]!r}")
    answer = canonical_number(hits[-1])
    assert answer is not None  # the pattern only matches numbers
    return answer


def is_equiv(a: str, b: str) -> bool:
    """Exact numeric equality of two GSM8K answers (``18`` = ``18.00`` = ``$18``)."""
    ca, cb = canonical_number(a), canonical_number(b)
    if ca is None or cb is None:
        return a.strip() == b.strip()
    return Fraction(ca) == Fraction(cb)
