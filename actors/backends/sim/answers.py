r"""Answer normalisation and the plausible wrong answers of a problem.

Wrong answers are derived from the reference by the slips real models make:
off-by-one, sign, doubling/halving, a digit slip, a wrong power of ten, an
intermediate result given as final (GSM8K), a common fraction mistake
(reciprocal, numerator or denominator off), an integer changed inside a symbolic
answer, another choice for multiple choice. A candidate that is numerically equal
to the reference is discarded, so a "wrong" answer is never right. No sympy here:
this runs in the hot path; ``same_answer`` is a fast structural comparison.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from actors.backends.sim.skill import key_prefix, unit, unit_after

_NUM = re.compile(r"^-?\d+(?:\.\d+)?$")
_FRAC = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(\d+)\}$")
_COMPACT_FRAC = re.compile(r"^(-?)\\frac(\d)(\d)$")
_SLASH = re.compile(r"^(-?\d+)/(\d+)$")
_INT_TOKEN = re.compile(r"\d+")
_CALC = re.compile(r"<<[^=<>]*=([-\d.,]+)>>")
LETTERS = "ABCDEFGHIJ"

# Relative frequency of each kind of slip among a model's wrong answers (reasoning:
# arithmetic slips and wrong intermediate quantities dominate error analyses of
# GSM8K/MATH; sign and power-of-ten errors are rarer).
_KIND_WEIGHT = {
    "intermediate": 3.0,
    "off_by_one": 2.0,
    "fraction": 2.0,
    "double_half": 1.5,
    "digit": 1.5,
    "inner_int": 2.0,
    "sign": 0.7,
    "power10": 0.5,
    "choice": 1.0,
    "fallback": 0.2,
}


@lru_cache(maxsize=16384)
def normalize(answer: str) -> str:
    r"""A cheap canonical form: no spaces, ``$``, ``\left``/``\right``, ``\dfrac``, ``\text{}`` wrappers."""
    s = answer.strip().strip("$").rstrip(".")
    for old, new in (
        ("\\left", ""),
        ("\\right", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\!", ""),
        ("^\\circ", ""),
        ("^{\\circ}", ""),
        ("\\%", ""),
        ("%", ""),
        ("\\text{", "{"),
        ("\\mbox{", "{"),
        (" ", ""),
    ):
        s = s.replace(old, new)
    if s.startswith("{") and s.endswith("}") and s.count("{") == 1:
        s = s[1:-1]
    number = as_number(s)
    return str(number) if number is not None else s


@lru_cache(maxsize=16384)
def as_number(answer: str) -> Fraction | None:
    r"""The exact value of a plain number (``-12``, ``1,450``, ``0.5``, ``\frac{3}{4}``, ``3/4``), else None.

    Cached (a pure function; ``Fraction`` is immutable): building a problem's wrong answers
    compares each candidate with the reference, which parsed the reference ~70 times a
    problem and was a quarter of the simulator's CPU.
    """
    s = answer.strip().strip("$").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace(" ", "")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", s):
        s = s.replace(",", "")
    if _NUM.match(s):
        return Fraction(s)
    m = _FRAC.match(s) or _COMPACT_FRAC.match(s)
    if m:
        if int(m.group(3)) == 0:
            return None
        value = Fraction(int(m.group(2)), int(m.group(3)))
        return -value if m.group(1) else value
    m = _SLASH.match(s)
    if m and int(m.group(2)) != 0:
        return Fraction(int(m.group(1)), int(m.group(2)))
    return None


def same_answer(a: str | None, b: str | None) -> bool:
    """Whether two written answers are the same (numbers compared exactly, else normal forms)."""
    if a is None or b is None:
        return False
    na, nb = as_number(a), as_number(b)
    if na is not None and nb is not None:
        return na == nb
    return normalize(a) == normalize(b)


def render_number(value: Fraction, style: str) -> str:
    r"""Write a number as an integer, a decimal, or a LaTeX ``\frac`` (``style``: int/decimal/frac)."""
    if value.denominator == 1:
        return str(value.numerator)
    if style == "decimal":
        text = f"{float(value):.6f}".rstrip("0").rstrip(".")
        if Fraction(text) == value:
            return text
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _numeric_slips(value: Fraction) -> list[tuple[str, Fraction]]:
    out: list[tuple[str, Fraction]] = [("off_by_one", value + 1), ("off_by_one", value - 1)]
    out += [("double_half", value * 2), ("double_half", value / 2)]
    if value != 0:
        out.append(("sign", -value))
    out += [("power10", value * 10)]
    if value.denominator == 1:
        n = value.numerator
        digits = str(abs(n))
        for i, d in enumerate(digits):
            # Change one digit by one (never creating a leading zero).
            for delta in (1, -1):
                nd = int(d) + delta
                if 0 <= nd <= 9 and not (i == 0 and nd == 0 and len(digits) > 1):
                    slipped = int(digits[:i] + str(nd) + digits[i + 1 :])
                    out.append(("digit", Fraction(slipped if n >= 0 else -slipped)))
        if len(digits) >= 2:
            swapped = int(digits[1] + digits[0] + digits[2:])
            out.append(("digit", Fraction(swapped if n >= 0 else -swapped)))
        if n % 10 == 0 and n != 0:
            out.append(("power10", Fraction(n // 10)))
    else:
        num, den = value.numerator, value.denominator
        out += [("fraction", 1 / value), ("fraction", Fraction(num + 1, den)), ("fraction", Fraction(num, den + 1))]
        out.append(("fraction", Fraction(num, den - 1) if den > 1 else value + 2))
    return out


def _inner_int_slips(reference: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    # Integers in a base subscript, a unit or right after a compact \frac are not slipped:
    # graders ignore the first two, and "\frac14" -> "\frac28" would still be right.
    unit_at = [i for i in (reference.find("\\mbox"), reference.find("\\text")) if i >= 0]
    unit_start = min(unit_at, default=len(reference))
    tokens = [
        m
        for m in _INT_TOKEN.finditer(reference)
        if m.start() < unit_start and not reference[: m.start()].endswith(("_", "_{", "\\frac"))
    ]
    for m in tokens[:6]:
        n = int(m.group())
        for new in (n + 1, n - 1 if n > 0 else n + 2, 2 * n if n > 1 else n + 3):
            out.append(("inner_int", reference[: m.start()] + str(new) + reference[m.end() :]))
    if "+" in reference:
        out.append(("sign", reference.replace("+", "-", 1)))
    elif "-" in reference[1:]:
        out.append(("sign", reference[0] + reference[1:].replace("-", "+", 1)))
    if reference.startswith("-"):
        out.append(("sign", reference[1:]))
    return out


def wrong_candidates(
    reference: str,
    answer_format: str,
    key: tuple[object, ...],
    choices: int = 4,
    solution: str | None = None,
) -> list[str]:
    """Distinct wrong answers for a problem, most plausible first (order seeded by ``key``).

    Args:
        reference: the gold answer as written in the dataset.
        answer_format: ``boxed`` / ``gsm8k`` / ``letter`` / ``free``.
        key: the hashing key that orders candidates (a problem's identity).
        choices: how many options a multiple-choice problem has.
        solution: a reference solution; its intermediate results are candidate wrong finals.
    """
    kinds: list[tuple[str, str]] = []
    if answer_format == "letter":
        ref = reference.strip().strip("()").upper()[:1]
        kinds = [("choice", c) for c in LETTERS[: max(choices, 2)] if c != ref]
    else:
        value = as_number(reference)
        if value is not None:
            style = "decimal" if "." in reference else ("frac" if "frac" in reference or "/" in reference else "int")
            if solution:
                for m in _CALC.finditer(solution):
                    v = as_number(m.group(1).rstrip("."))
                    if v is not None:
                        kinds.append(("intermediate", render_number(v, style)))
            kinds += [(k, render_number(v, style)) for k, v in _numeric_slips(value)]
        else:
            kinds = _inner_int_slips(reference)
        kinds += [("fallback", f"{reference}+1"), ("fallback", f"2({reference})")]
    seen: set[str] = set()
    scored: list[tuple[float, str]] = []
    for kind, text in kinds:
        if text in seen or same_answer(text, reference) or text.strip() == "":
            continue
        seen.add(text)
        # Weighted random order (Efraimidis-Spirakis keys): frequent kinds tend to rank first.
        u = unit(*key, "wrong-order", text)
        scored.append((u ** (1.0 / _KIND_WEIGHT[kind]), text))
    scored.sort(key=lambda t: -t[0])
    return [text for _, text in scored]


@lru_cache(maxsize=4096)  # the in-flight set (``world.CACHE_SIZE``): several models ask about each in-flight problem
def scatter_answers(
    reference: str, answer_format: str, key: tuple[object, ...], count: int, choices: int = 4
) -> tuple[str, ...]:
    """The first ``count`` scattered wrong answers of a problem (cached: a pure function of its inputs)."""
    value = None if answer_format == "letter" else as_number(reference)
    prefix = key_prefix(*key)
    return tuple(_scatter(reference, answer_format, prefix, j, choices, value) for j in range(count))


def scatter_answer(reference: str, answer_format: str, key: tuple[object, ...], slot: int, choices: int = 4) -> str:
    """The ``slot``-th scattered wrong answer of a problem: what a model that is lost says.

    Lost models do not make one characteristic slip; they end anywhere. Numbers become
    another number of the same sign and rough size, symbolic answers get a random integer
    changed, letters another choice. Never equal to the reference.
    """
    value = None if answer_format == "letter" else as_number(reference)
    return _scatter(reference, answer_format, key_prefix(*key), slot, choices, value)


def _scatter(reference: str, answer_format: str, prefix: str, slot: int, choices: int, value: Fraction | None) -> str:
    u = unit_after(prefix, slot, "a")  # unit(*key, slot, "a"), the key joined once a problem
    v = unit_after(prefix, slot, "b")
    if answer_format == "letter":
        ref = reference.strip().strip("()").upper()[:1]
        others = [c for c in LETTERS[: max(choices, 2)] if c != ref] or ["A"]
        return others[int(u * len(others))]
    if value is not None:
        size = max(10, int(abs(value)) * 3)
        candidate = Fraction(int(u * size) + 1)
        if value < 0:
            candidate = -candidate
        if candidate.numerator == value:
            candidate += 1 + int(v * 7)
        if value.denominator != 1 and v < 0.5:
            candidate = Fraction(int(u * 20) + 1, int(v * 18) + 2)
        text = render_number(candidate, "frac" if "frac" in reference else "int")
        # A number stays a number: "2125+1" would be read as 2125 by a lenient GSM8K grader.
        # (``candidate != value`` is ``not same_answer(text, reference)``: both are numbers, and
        # ``text`` reads back as ``candidate`` exactly.)
        return text if candidate != value else render_number(value + slot + 1, "int")
    unit_at = [i for i in (reference.find("\\mbox"), reference.find("\\text")) if i >= 0]
    unit_start = min(unit_at, default=len(reference))
    # As for the slips: not in a subscript, a unit, a compact \frac, or a decimal's digits.
    tokens = [
        m
        for m in _INT_TOKEN.finditer(reference)
        if m.start() < unit_start
        and not reference[: m.start()].endswith(("_", "_{", "\\frac", "."))
        and not reference[m.end() :].startswith(".")
    ]
    if tokens:
        m = tokens[int(u * len(tokens))]
        new = str(int(v * 60) + 2)
        if new != m.group():
            text = reference[: m.start()] + new + reference[m.end() :]
            if not same_answer(text, reference):
                return text
    return f"{reference}+{slot + 1}"
