r"""Exact values of plain arithmetic answers (``84+1``, ``\frac{23}{10}+1``, ``-4,3``), no sympy.

Half of what reached the symbolic workers in a simulated SLM-MUX run was arithmetic on
numbers: a judge asking whether ``8`` and ``8+1``, or ``-4,0`` and ``-4,3``, are the same
answer. Each such check cost a worker process ~10 ms of sympy and math-verify (and the
first one ~1.7 s to start the worker); evaluating them exactly with ``Fraction`` costs
microseconds and decides them the way math-verify does (checked against its verdicts on
every pair of the benchmark runs, ``tests/datasets/test_math_grading.py``).

Anything that is not numbers, ``+ - * / ^``, ``\cdot``, ``\times``, brackets and
``\frac`` is not evaluated (``None``): variables, roots, pi, percent signs, units,
implicit products (math-verify calls ``7`` and ``2(5)`` equal, ``132`` and ``2(66)``
different: whatever it reads there, this must not decide otherwise), and the forms
``fast_equiv`` reads otherwise (``7\frac{3}{4}`` is a mixed number there, not
a product; ``1,000`` may be a thousand).
"""

from __future__ import annotations

import re
from fractions import Fraction

_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|\\[dt]?frac|\\cdot|\\times|[-+*/^(){}\[\]]")
_MAX_EXPONENT = 64
_MAX_DIGITS = 60  # values beyond this are left to sympy (and a huge power never gets built)


class _Unreadable(Exception):
    pass


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Unreadable
        self.pos += 1
        return token

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return _checked(value)

    def term(self) -> Fraction:
        value = self.unary()
        while True:
            token = self.peek()
            if token in ("*", "\\cdot", "\\times"):
                self.take()
                value *= self.unary()
            elif token == "/":
                self.take()
                divisor = self.unary()
                if divisor == 0:
                    raise _Unreadable
                value /= divisor
            else:  # no implicit product: math-verify reads 2(5) neither as 10 nor consistently
                return _checked(value)

    def unary(self) -> Fraction:
        if self.peek() in ("+", "-"):
            return self.unary() if self.take() == "+" else -self.unary()
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.atom()
        if exponent.denominator != 1 or abs(exponent) > _MAX_EXPONENT or (base == 0 and exponent < 0):
            raise _Unreadable
        return _checked(base ** int(exponent))

    def atom(self) -> Fraction:
        token = self.take()
        if token in ("(", "{", "["):
            value = self.expr()
            self.take({"(": ")", "{": "}", "[": "]"}[token])
            return value
        if token in ("\\frac", "\\dfrac", "\\tfrac"):
            self.take("{")
            num = self.expr()
            self.take("}")
            self.take("{")
            den = self.expr()
            self.take("}")
            if den == 0:
                raise _Unreadable
            return num / den
        if token[0].isdigit() or token[0] == ".":
            return Fraction(token)
        raise _Unreadable


def _checked(value: Fraction) -> Fraction:
    if len(str(abs(value.numerator))) > _MAX_DIGITS or len(str(value.denominator)) > _MAX_DIGITS:
        raise _Unreadable
    return value


def value_of(normalized: str) -> Fraction | None:
    """The exact value of one normalised arithmetic expression, or None if it is anything else."""
    if not normalized or re.search(r"\d\\[dt]?frac", normalized):  # 7\frac{3}{4}: a mixed number
        return None
    tokens = _TOKEN.findall(normalized)
    if "".join(tokens) != normalized:  # a character no token covers: a letter, \sqrt, \pi, %, ...
        return None
    parser = _Parser(tokens)
    try:
        value = parser.expr()
    except (_Unreadable, ZeroDivisionError, OverflowError):
        return None
    return value if parser.peek() is None else None


def values_of(items: list[str]) -> tuple[Fraction, ...] | None:
    """The values of the items of a bare comma list (``split_top_level``) of arithmetic expressions, or None."""
    if len(items) > 1 and any(re.fullmatch(r"\d{3}(?:\.\d*)?|0\d+", item) for item in items[1:]):
        return None  # 1,000 or 3,05: digit groups, not a list
    values = tuple(value_of(item) for item in items)
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def arithmetic_equiv(a: list[str], b: list[str]) -> bool | None:
    """Two answers' comma items (each a number once evaluated): equal, different, or None.

    Equal only item by item in the same order; different when no order could match
    (the sets of values differ); anything else (the same values reordered or repeated:
    a set or a tuple?) is left to sympy.
    """
    va, vb = values_of(a), values_of(b)
    if va is None or vb is None:
        return None
    if va == vb:
        return True
    if set(va) != set(vb):
        return False
    return None
