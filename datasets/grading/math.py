r"""MATH-style answers: the last ``\boxed{}``, string normalisation and a fast exact comparison.

Everything here is pure and synchronous so it can be unit-tested on tables and benchmarked.
``fast_equiv`` settles the common cases (equal normal forms, exact rational numbers, arithmetic
(``datasets.grading.arith``), tuples
of those) in microseconds and returns None when only a symbolic check can decide;
``datasets.grading.symbolic`` does that check in a worker.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from datasets.grading.arith import arithmetic_equiv

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def extract_boxed(text: str) -> str | None:
    r"""The content of the last ``\boxed{...}`` (or ``\fbox{...}``) in ``text``, braces matched.

    Also reads the brace-less form ``\boxed 5``. Returns None if there is no complete box.
    """
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    while start >= 0:
        content = _box_content_at(text, start)
        if content is not None:
            return content.strip()
        # An unclosed last box: fall back to the previous complete one.
        start = max(text.rfind(cmd, 0, start) for cmd in _BOX_COMMANDS)
    return None


def _box_content_at(text: str, start: int) -> str | None:
    i = start + 1
    while i < len(text) and text[i].isalpha():
        i += 1
    rest = text[i:]
    if rest.startswith("{"):
        depth = 0
        for j, ch in enumerate(rest):
            if ch == "{" and (j == 0 or rest[j - 1] != "\\"):
                depth += 1
            elif ch == "}" and rest[j - 1] != "\\":
                depth -= 1
                if depth == 0:
                    return rest[1:j]
        return None
    if rest.startswith(" "):
        # "\boxed 5$": the answer runs to the next dollar sign or whitespace.
        m = re.match(r" +([^\s$]+)", rest)
        return m.group(1) if m else None
    return None


def strip_wrapper(text: str, command: str) -> str:
    r"""``\text{abc}`` -> ``abc`` for every occurrence of ``command`` (brace-matched)."""
    out = []
    i = 0
    while True:
        j = text.find(command + "{", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        k = j + len(command)
        depth = 0
        end = -1
        for m in range(k, len(text)):
            if text[m] == "{":
                depth += 1
            elif text[m] == "}":
                depth -= 1
                if depth == 0:
                    end = m
                    break
        if end < 0:
            out.append(text[j:])
            return "".join(out)
        out.append(text[k + 1 : end])
        i = end + 1


# Units a MATH answer may carry, removed when they close the answer after a number. Bare single letters
# (m, s, h, g) and "mi", "in" are left out: "2m" or "3i" is algebra. Inside \text{} they are units.
_UNITS = (
    "degrees?|cm|centimeters?|meters?|metres?|km|kilometers?|mm|inch(?:es)?|feet|foot|ft|yards?|yd|"
    "miles?|seconds?|sec|minutes?|min|hours?|hrs?|days?|weeks?|months?|years?|mph|units?|"
    "square|sq|cubic|dollars?|cents?|points?|percent|people|students?|ways|pounds?|lbs?|ounces?|oz|grams?|kg"
)
_UNIT_AFTER_NUMBER = re.compile(rf"(?<=[\d}}])\s*(?:(?:{_UNITS})(?:\^?\{{?[23]\}}?)?\s*)+$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_SIMPLE_FRAC = re.compile(r"\\frac(\d)(\d)")
_HALF_BRACED_FRAC = re.compile(r"\\frac\{([^{}]*)\}(\d)")
_SQRT_BARE = re.compile(r"\\sqrt(\d+|[a-zA-Z])")
_TEXT_UNIT = re.compile(
    r"(?<=[\d}])\s*\\(?:text|mbox|mathrm|textnormal)\{\s*[A-Za-z][A-Za-z ./]*\}(?:\^\{?[23]\}?)?\s*$"
)
_WORD_UNIT = re.compile(r"(?<=\d)\s+[a-z]{3,}(?:\s+[a-z]+)*\.?\s*$")
_CONJUNCTION = re.compile(r"\s*(?:\\(?:text|mbox|mathrm)\{\s*(?:and|or)\s*\}|\s(?:and|or)\s)\s*")
_ESCAPED_SPACE = re.compile(r"(?<!\\)\\ ")
_WHITESPACE = re.compile(r"\s+")
_BASE_NUMBER = re.compile(r"^(?=[0-9A-Fa-f]*\d)([0-9A-Fa-f]+)_\{?(\d+)\}?$")
"""A number written in a base, ``52_8`` or ``4210_{5}`` (math-verify drops the subscript)."""
_VAR_PREFIX = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?(?:\([a-zA-Z]\))?=(?!=)")


@lru_cache(maxsize=65536)
def normalize(answer: str) -> str:
    r"""A whitespace-free normal form of a MATH answer for exact comparison.

    Removes what never changes the value: ``$``, spacing commands, ``\left``/``\right``,
    ``\dfrac``/``\tfrac``, ``\text{}``/``\mathrm{}``/``\mbox{}`` wrappers, trailing units, degree
    marks, percent and dollar signs, thousands separators, a leading ``x =``, a final period.
    """
    s = answer.strip()
    s = s.replace("\n", " ").replace("\\!", "").replace("{,}", ",")
    for space in ("\\,", "\\;", "\\:", "\\quad", "\\qquad", "~"):
        s = s.replace(space, " ")
    s = _ESCAPED_SPACE.sub(" ", s)  # "\ " is a space, but "\\ " is a matrix row break
    s = s.replace("\\$", "").replace("$", "").replace("\\displaystyle", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\big", "").replace("\\Big", "")
    s = re.sub(r"\\(?:le|leq|leqslant)(?![a-z])", r"\\le ", s)
    s = re.sub(r"\\(?:ge|geq|geqslant)(?![a-z])", r"\\ge ", s)
    s = s.replace("\\neq", "\\ne ").replace("\\varnothing", "\\emptyset")
    # "2 or 3", "2 \text{ and } 3": a list of answers, written with commas from here on.
    s = _CONJUNCTION.sub(",", s)
    # A trailing \text{...} word after a number is a unit ("5\text{ apples}"), not part of the value.
    s = _TEXT_UNIT.sub("", s)
    s = _WORD_UNIT.sub("", s)
    for wrapper in ("\\text", "\\textbf", "\\mathrm", "\\mbox", "\\mathbf", "\\textit", "\\operatorname"):
        s = strip_wrapper(s, wrapper)
    # Degrees and percent are presentation; their numbers are what MATH compares.
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?", "", s)
    s = s.replace("\\circ", "").replace("°", "").replace("\\degree", "")
    s = s.replace("\\%", "").replace("%", "")
    s = _UNIT_AFTER_NUMBER.sub("", s.rstrip())
    s = s.strip().rstrip(".").strip()
    s = _WHITESPACE.sub(_drop_space, s)
    s = _SIMPLE_FRAC.sub(r"\\frac{\1}{\2}", s)
    s = _HALF_BRACED_FRAC.sub(r"\\frac{\1}{\2}", s)
    s = _SQRT_BARE.sub(r"\\sqrt{\1}", s)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    s = ",".join(_VAR_PREFIX.sub("", part, count=1) for part in split_top_level(s))
    if s.startswith("{") and s.endswith("}") and _balanced(s[1:-1]):
        s = s[1:-1]
    if re.fullmatch(r"-?\d*\.\d+", s) or re.fullmatch(r"-?\d+\.0*", s):
        s = _canonical_decimal(s)
    return s


_ANSWER_BODY = r"\s*:?\s*(?:\$(?P<math>[^$]+)\$|(?P<plain>[^\s$][^\n]*?))\s*(?:\.\s|\.?$|\n)"
# Most specific first: Minerva's "Final Answer: The final answer is $X$." must yield X.
_FINAL_ANSWER = (
    re.compile(r"final answer is" + _ANSWER_BODY, re.IGNORECASE),
    re.compile(r"(?:final answer|the answer)\s*(?:is|:)" + _ANSWER_BODY, re.IGNORECASE),
)


def extract_final_answer(text: str) -> str | None:
    r"""A flexible fallback when there is no box: the last "final answer is $X$" / "The answer is X"."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    for pattern in _FINAL_ANSWER:
        hits = list(pattern.finditer(text))
        if hits:
            last = hits[-1]
            return (last.group("math") or last.group("plain") or "").strip() or None
    return None


def _drop_space(m: re.Match[str]) -> str:
    # Keep one space where it ends a command before a letter: "\\pi r" is not "\\pir".
    before, after = m.string[: m.start()], m.string[m.end() : m.end() + 1]
    return " " if after.isalpha() and re.search(r"\\[A-Za-z]+$", before) else ""


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0


def _canonical_decimal(s: str) -> str:
    value = Fraction(s)
    if value.denominator == 1:
        return str(value.numerator)
    return s.rstrip("0") if "." in s else s


_NUMBER_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)$"), "decimal"),
    (re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d{1,3}$"), "decimal"),
    (re.compile(r"^([-+]?)\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}$"), "frac"),
    (re.compile(r"^([-+]?)(\d+)/(\d+)$"), "slash"),
    (re.compile(r"^(\d+)\\frac\{(\d+)\}\{(\d+)\}$"), "mixed"),
    (re.compile(r"^(-?)(\d*)\.(\d*)\\overline\{(\d+)\}$"), "repeating"),
)


@lru_cache(maxsize=65536)
def as_number(normalized: str) -> Fraction | None:
    r"""The exact rational value of a normalised plain number (``-3``, ``0.25``, ``\frac{1}{2}``, ``7\frac{3}{4}``)."""
    for pattern, kind in _NUMBER_PATTERNS:
        m = pattern.match(normalized)
        if m is None:
            continue
        if kind == "decimal":
            return Fraction(normalized)
        if kind == "repeating":
            sign, whole, fixed, period = m.groups()
            # 0.1\overline{6} = 0.1 + 0.0666... = (16 - 1) / 90
            value = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), 10 ** len(fixed))
            value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
            return -value if sign else value
        if kind == "mixed":
            whole, num, den = (int(g) for g in m.groups())
            return Fraction(whole) + Fraction(num, den) if den else None
        sign, num_s, den_s = m.groups()
        denominator = Fraction(den_s)
        if denominator == 0:
            return None
        value = Fraction(num_s) / denominator
        return -value if sign == "-" else value
    return None


def _percent_alternatives(raw: str, value: Fraction) -> tuple[Fraction, ...]:
    # "10%" is accepted both as 10 (MATH's convention) and as 0.1 (its value).
    if "%" in raw or "percent" in raw:
        return (value, value / 100)
    return (value,)


def split_top_level(s: str) -> list[str]:
    """Split on commas that are not inside brackets, braces or parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _brackets(s: str) -> tuple[str, str, str] | None:
    """(open, inner, close) when ``s`` is one bracketed group like ``(1,2)`` or ``[a,b)``."""
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]":
        return None
    depth = 0
    for i, ch in enumerate(s):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and i < len(s) - 1:
            return None
    return s[0], s[1:-1], s[-1]


@lru_cache(maxsize=131072)
def fast_equiv(a: str, b: str) -> bool | None:
    """Decide equivalence without sympy when possible: True, False, or None (undecided).

    Equal normal forms are equal; two plain numbers compare exactly as rationals
    (``0.5`` = ``1/2`` but ``0.33`` != ``1/3``); bracketed tuples/intervals compare
    element-wise with the same brackets.
    """
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return True
    if not na or not nb:
        return False
    base_a, base_b = _BASE_NUMBER.match(na), _BASE_NUMBER.match(nb)
    if base_a and base_b:  # 52_8 is not 52_9: same digits and the same base
        return base_a[1].upper() == base_b[1].upper() and int(base_a[2]) == int(base_b[2])
    based, plain = (base_a, nb) if base_a else (base_b, na)
    if based is not None and plain.isdigit():
        # "52" for 52_8: the digits asked for, the base left implicit; its decimal value (42) is not.
        return based[1] == plain
    va, vb = as_number(na), as_number(nb)
    if va is not None and vb is not None:
        alts_a, alts_b = _percent_alternatives(a, va), _percent_alternatives(b, vb)
        return any(x == y for x in alts_a for y in alts_b)
    if (va is None) != (vb is None) and _has_variable(na if va is None else nb):
        # A number never equals an expression in a variable ("2m" is not 2; units are already gone).
        return False
    ga, gb = _brackets(na), _brackets(nb)
    if (ga is None) != (gb is None):
        # A bare list of solutions ("2,3") is not an ordered pair or interval ("(2,3)").
        bare, grouped = (na, gb) if ga is None else (nb, ga)
        if grouped is not None and len(split_top_level(grouped[1])) > 1 and len(split_top_level(bare)) > 1:
            return False
    if ga is not None and gb is not None:
        ea, eb = split_top_level(ga[1]), split_top_level(gb[1])
        if len(ea) != len(eb):
            return False
        if len(ea) > 1 and (ga[0], ga[2]) != (gb[0], gb[2]):
            return False
        verdicts = [fast_equiv(x, y) for x, y in zip(ea, eb, strict=True)]
        if all(v is True for v in verdicts):
            return (ga[0], ga[2]) == (gb[0], gb[2]) or len(ea) == 1
        if any(v is False for v in verdicts) and all(as_number(normalize(x)) is not None for x in ea + eb):
            return False
        return None
    if (va is not None and _is_plain_text(nb)) or (vb is not None and _is_plain_text(na)):
        return False
    if _is_plain_text(na) and _is_plain_text(nb):
        return na.lower() == nb.lower()
    if "%" in a or "%" in b:  # 50\% may mean 0.5 (``_percent_alternatives``); arithmetic would not see that
        return None
    return arithmetic_equiv(split_top_level(na), split_top_level(nb))


def _has_variable(s: str) -> bool:
    # Letters outside LaTeX commands (\pi, \sqrt, \times are not variables).
    return re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", s)) is not None


def _is_plain_text(s: str) -> bool:
    # Words of two or more letters ("even", "Evelyn"): compared as text, never as algebra.
    return re.fullmatch(r"[A-Za-z]{2,}(?: [A-Za-z]+)*", s) is not None


def canonical_key(answer: str) -> str:
    """A grouping key: equal keys imply equivalent answers (not the converse)."""
    n = normalize(answer)
    value = as_number(n)
    if value is not None:
        return str(value)
    return n


def is_equiv(a: str, b: str, timeout_s: float = 3) -> bool:
    """Whether two MATH answers are equivalent: ``fast_equiv``, then math-verify in this process.

    Synchronous and blocking, for tables and scripts; the async graders run the symbolic
    step in a worker instead. math-verify's timeout needs the main thread, so off it the
    check runs without one.
    """
    import threading

    from datasets.grading.symbolic import symbolic_check

    verdict = fast_equiv(a, b)
    if verdict is not None:
        return verdict
    main = threading.current_thread() is threading.main_thread()
    return symbolic_check(normalize(a), normalize(b), timeout_s, use_signals=main).verdict == "equal"
