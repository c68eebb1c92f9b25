r"""A seeded synthetic set of arithmetic and algebra word problems, answers verified with sympy.

It is the embedded default dataset, so runs need no download. Each problem is a pure
function of (seed, index). Its level (1-5) sets the number of steps and the size of the
numbers. Every answer is computed with sympy and then checked a second way: the
equation is solved or the expression evaluated from ``metadata["check"]``, and the
answer substituted back. A generator that produced a wrong answer would raise here.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import NamedTuple

import sympy

from protocols.messages import Problem

DEFAULT_COUNT = 200
NAMES = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jia")
ITEMS = ("apples", "stickers", "marbles", "books", "coins", "cards", "shells", "stamps")


class Item(NamedTuple):
    """One generated problem before it becomes a ``Problem``."""

    topic: str
    question: str
    answer: str
    check: str
    """A sympy expression or ``Eq``/list of ``Eq`` from which the answer is recomputed."""
    steps: int


def _fmt(value: sympy.Expr, decimal: bool = False) -> str:
    """An integer as digits, a rational as ``\\frac{p}{q}`` (or a terminating decimal if asked)."""
    if value.is_Integer:
        return str(value)
    rational = sympy.Rational(value)
    q = int(rational.q)
    while q % 2 == 0:
        q //= 2
    while q % 5 == 0:
        q //= 5
    if decimal and q == 1:
        return str(sympy.Float(rational, 30)).rstrip("0")
    sign = "-" if rational < 0 else ""
    return f"{sign}\\frac{{{abs(rational.p)}}}{{{rational.q}}}"


def _arithmetic(rng: random.Random, level: int) -> Item:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    top = 10 * level
    value = rng.randint(level + 2, 5 * top)
    expr = str(value)
    sentences = [f"{name} has {value} {item}."]
    steps = level + 1
    for _ in range(steps):
        kind = rng.choice(("add", "sub", "mul", "div") if level >= 2 else ("add", "sub"))
        if kind == "add":
            k = rng.randint(2, top)
            sentences.append(f"Then {name} gets {k} more {item}.")
            value, expr = value + k, f"({expr}) + {k}"
        elif kind == "sub" and value > 2:
            k = rng.randint(1, value - 1)
            sentences.append(f"Then {name} gives away {k} {item}.")
            value, expr = value - k, f"({expr}) - {k}"
        elif kind == "mul":
            k = rng.randint(2, 3 + level)
            sentences.append(f"Then the number of {item} is multiplied by {k} after a lucky trade.")
            value, expr = value * k, f"({expr}) * {k}"
        else:
            divisors = [d for d in range(2, 10) if value % d == 0]
            if not divisors:
                k = rng.randint(1, top)
                sentences.append(f"Then {name} finds {k} more {item}.")
                value, expr = value + k, f"({expr}) + {k}"
                continue
            d = rng.choice(divisors)
            sentences.append(f"Then {name} splits them into {d} equal piles and keeps only one pile.")
            value, expr = value // d, f"({expr}) / {d}"
    sentences.append(f"How many {item} does {name} have now?")
    return Item("Arithmetic", " ".join(sentences), str(value), expr, steps)


def _linear(rng: random.Random, level: int) -> Item:
    x = sympy.Symbol("x")
    size = 3 * level + 2
    solution = sympy.Rational(rng.randint(-size, size), rng.randint(1, level) if level >= 3 else 1)
    a, c = rng.randint(1, size), rng.randint(-size, size)
    while c == a:
        c = rng.randint(-size, size)
    b = rng.randint(-size * 3, size * 3)
    d = sympy.expand(a * solution + b - c * solution)  # chosen so that x = solution
    lhs, rhs = a * x + b, c * x + d
    answer = sympy.Rational(d - b, a - c)
    question = f"Solve for $x$: ${sympy.latex(lhs)} = {sympy.latex(rhs)}$."
    return Item("Linear equations", question, _fmt(answer), f"Eq({lhs}, {rhs})", 2)


def _percent(rng: random.Random, level: int) -> Item:
    price = sympy.Integer(rng.choice((20, 40, 50, 80, 120, 200, 250, 400)) * level)
    expr = str(price)
    parts = [f"A jacket costs ${price}."]
    steps = min(level, 4)
    for _ in range(steps):
        p = rng.choice((5, 10, 15, 20, 25, 30, 40, 50))
        if rng.random() < 0.5:
            parts.append(f"Its price is raised by {p}%.")
            expr = f"({expr}) * (100 + {p}) / 100"
        else:
            parts.append(f"Its price is then cut by {p}%.")
            expr = f"({expr}) * (100 - {p}) / 100"
    parts.append("What is the final price in dollars?")
    value = sympy.sympify(expr)
    return Item("Percentages", " ".join(parts), _fmt(value, decimal=True), expr, steps)


def _fractions(rng: random.Random, level: int) -> Item:
    terms = [sympy.Rational(rng.randint(1, 3 * level + 2), rng.randint(2, 4 + 2 * level)) for _ in range(level + 1)]
    signs = [rng.choice("+-") for _ in terms[1:]]
    expr = f"({terms[0]})" + "".join(f" {s} ({t})" for s, t in zip(signs, terms[1:], strict=True))
    latex = sympy.latex(terms[0]) + "".join(f" {s} {sympy.latex(t)}" for s, t in zip(signs, terms[1:], strict=True))
    value = sympy.sympify(expr)
    question = f"Compute ${latex}$. Give your answer as a fraction in lowest terms."
    return Item("Fractions", question, _fmt(value), expr, len(terms) - 1)


def _system(rng: random.Random, level: int) -> Item:
    x, y = sympy.symbols("x y")
    size = 2 * level + 3
    sx, sy = rng.randint(-size, size), rng.randint(-size, size)
    a, b, c, d = (rng.choice([i for i in range(-size, size + 1) if i]) for _ in range(4))
    while a * d - b * c == 0:
        d = rng.choice([i for i in range(-size, size + 1) if i])
    eq1, eq2 = sympy.Eq(a * x + b * y, a * sx + b * sy), sympy.Eq(c * x + d * y, c * sx + d * sy)
    det = a * d - b * c  # Cramer's rule, exact
    e, f = eq1.rhs, eq2.rhs
    solved = {x: sympy.Rational(e * d - b * f, det), y: sympy.Rational(a * f - e * c, det)}
    question = (
        f"Solve the system ${sympy.latex(eq1.lhs)} = {eq1.rhs}$ and ${sympy.latex(eq2.lhs)} = {eq2.rhs}$. "
        "Give your answer as an ordered pair $(x, y)$."
    )
    answer = f"({_fmt(solved[x])}, {_fmt(solved[y])})"
    return Item("Systems of equations", question, answer, f"[Eq({eq1.lhs}, {eq1.rhs}), Eq({eq2.lhs}, {eq2.rhs})]", 3)


def _quadratic(rng: random.Random, level: int) -> Item:
    x = sympy.Symbol("x")
    size = 2 * level + 2
    r1, r2 = rng.randint(-size, size), rng.randint(-size, size)
    while r2 == r1:
        r2 = rng.randint(-size, size)
    lead = rng.randint(1, max(1, level - 2))
    poly = sympy.expand(lead * (x - r1) * (x - r2))
    roots = sorted(sympy.Poly(poly, x).ground_roots())
    question = f"Find all real solutions of ${sympy.latex(poly)} = 0$. List them separated by commas."
    return Item("Quadratics", question, ", ".join(_fmt(r) for r in roots), f"Eq({poly}, 0)", 2)


GENERATORS: dict[str, Callable[[random.Random, int], Item]] = {
    "Arithmetic": _arithmetic,
    "Linear equations": _linear,
    "Percentages": _percent,
    "Fractions": _fractions,
    "Systems of equations": _system,
    "Quadratics": _quadratic,
}


def recompute(check: str) -> list[sympy.Expr]:
    """The answer(s) of a check string, computed afresh: an expression's value or an equation's solutions."""
    parsed = sympy.sympify(check)
    if isinstance(parsed, list | tuple):
        solved = sympy.solve(list(parsed), dict=True)[0]
        return [solved[s] for s in sorted(solved, key=str)]
    if isinstance(parsed, sympy.Equality):
        return sorted(sympy.solve(parsed))
    return [sympy.nsimplify(parsed)]


def verify(item: Item) -> None:
    """Raise unless ``item.answer`` satisfies ``item.check``: it solves the equation(s) or equals the expression.

    Substitution is exact and cheap; ``recompute`` (``sympy.solve``) is the slower independent check the
    tests run on top.
    """
    given = [_parse_answer(part) for part in item.answer.strip("()").split(",")]
    parsed = sympy.sympify(item.check)
    if isinstance(parsed, list | tuple):
        symbols = sorted(set().union(*(eq.free_symbols for eq in parsed)), key=str)
        ok = len(given) == len(symbols) and all(
            sympy.simplify(eq.lhs - eq.rhs).subs(dict(zip(symbols, given, strict=True))) == 0 for eq in parsed
        )
    elif isinstance(parsed, sympy.Equality):
        (symbol,) = parsed.free_symbols
        degree = sympy.Poly(parsed.lhs - parsed.rhs, symbol).degree()
        ok = len(set(given)) == len(given) == degree and all(
            (parsed.lhs - parsed.rhs).subs(symbol, g) == 0 for g in given
        )
    else:
        ok = len(given) == 1 and sympy.Rational(parsed) == given[0]
    if not ok:
        raise AssertionError(f"synthetic {item.topic} answer {item.answer!r} does not satisfy {item.check!r}")


def _parse_answer(part: str) -> sympy.Expr:
    # Answers are integers or \frac{p}{q}, possibly negative: read them back without a LaTeX parser.
    part = part.strip()
    if part.startswith("- "):
        part = "-" + part[2:]
    sign = -1 if part.startswith("-") else 1
    body = part.lstrip("-")
    if body.startswith("\\frac{"):
        num, den = body[len("\\frac{") : -1].split("}{")
        return sign * sympy.Rational(int(num), int(den))
    return sympy.Rational(part)


def generate(seed: int = 0, count: int = DEFAULT_COUNT) -> list[Problem]:
    """``count`` problems, a pure function of ``seed``; topic and level vary per problem."""
    topics = list(GENERATORS)
    problems = []
    seen: set[str] = set()
    for i in range(count):
        rng = random.Random(f"synthetic:{seed}:{i}")
        topic = topics[i % len(topics)]
        level = rng.randint(1, 5)
        item = GENERATORS[topic](rng, level)
        for _retry in range(20):  # small levels have few distinct problems; redraw (deterministically)
            if item.question not in seen:
                break
            item = GENERATORS[topic](rng, level)
        seen.add(item.question)
        verify(item)
        problems.append(
            Problem(
                id=f"synthetic/{seed}/{i}",
                benchmark="synthetic",
                question=item.question,
                reference=item.answer,
                answer_format="boxed",
                domain=item.topic,
                level=level,
                metadata={"check": item.check, "steps": item.steps, "source": "synthetic"},
            )
        )
    return problems
