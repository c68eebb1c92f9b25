r"""Find the benchmark problem an OpenAI-style prompt is about, so simulated answers grade for real.

Real prompts put the question anywhere: alone, inline in instructions ("Can you solve
the following math problem? {q} Explain your reasoning..."), after a ``Question 1:``
label, in an earlier turn, or last in a few-shot prompt. So the whole conversation is
searched, after the same normalisation of prompt and question:

- Unicode NFKC, curly quotes and dashes made ASCII, lower case;
- LaTeX spellings unified (``\dfrac``/``\tfrac`` -> ``\frac``, ``\left``/``\right`` and thin
  spaces dropped, ``\(``/``\)``/``\[``/``\]`` -> ``$``);
- split into tokens: words and single punctuation marks (so spacing around operators and
  labels glued to the question do not matter); quote and emphasis marks are dropped.

A question matches where all its tokens appear in sequence. The index is built once (a
dict from a question's first three tokens to the questions starting with them), and a
lookup is one pass over the prompt's words plus a check at each anchor hit: linear in
the prompt's size. When several questions match, the one starting last wins (a few-shot
prompt ends with the asked question), ignoring matches inside a longer match.
"""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from protocols.config import DatasetSpec
from protocols.messages import Problem

MIN_WORDS = 3
"""Questions shorter than this (tokens) are not indexed: they would match ordinary text."""

_TRANSLATE = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " ", "~": " ",
    }
)  # fmt: skip
_LATEX = [
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\\(?:left|right)(?![a-z])"), ""),
    (re.compile(r"(?<!\\)\\[,!;: ]"), " "),  # a thin space, not the end of a ``\\`` line break
    (re.compile(r"\\[()\[\]]|\$\$"), "$"),
]
_SEP = "\x1f"
_TOKEN = re.compile(r"\w+|[^\w\s\"'`*]")
"""A word, or one punctuation mark (quotes and emphasis marks are dropped): ``x+y`` = ``x + y``."""


def normalise(text: str) -> list[str]:
    """The tokens of ``text`` after the normalisation described in the module doc."""
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE).lower()
    for pattern, repl in _LATEX:
        text = pattern.sub(repl, text)
    return _TOKEN.findall(text)


class Match(NamedTuple):
    """A problem found in a prompt, and where (in normalised words)."""

    problem: Problem
    start: int
    end: int


class ProblemLookup:
    """Finds the problem a prompt is about (index built once; each lookup linear in the prompt)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self._by_anchor: dict[tuple[str, ...], list[tuple[str, int, Problem]]] = {}
        self._count = 0
        self.skipped: list[str] = []
        for problem in problems:
            words = tuple(normalise(problem.question))
            if len(words) < MIN_WORDS:
                self.skipped.append(problem.id)
                continue
            entry = (_SEP.join(words) + _SEP, len(words), problem)
            self._by_anchor.setdefault(words[:MIN_WORDS], []).append(entry)
            self._count += 1
        for entries in self._by_anchor.values():
            entries.sort(key=lambda e: -e[1])  # the longest question first at one anchor

    def __len__(self) -> int:
        return self._count

    def problems(self) -> Iterator[Problem]:
        """Every indexed problem, once each."""
        for entries in self._by_anchor.values():
            for _, _, problem in entries:
                yield problem

    def matches(self, text: str) -> list[Match]:
        """Every indexed question found in ``text``, in order of position.

        Each anchor hit is checked with one ``str.startswith`` on the joined tokens, which
        stops at the first differing character: repeated anchors cost what they share with
        the question, so the whole lookup stays linear in the prompt.
        """
        words = normalise(text)
        pairs = list(zip(words, words[1:], words[2:], strict=False))
        hits = self._by_anchor.keys() & set(pairs)  # a C-speed set intersection rules out most prompts
        found: list[Match] = []
        if not hits:
            return found
        joined = _SEP.join(words) + _SEP
        offsets = [0, *itertools.accumulate(len(w) + 1 for w in words)]
        for i, pair in enumerate(pairs):
            if pair not in hits:
                continue
            for joined_question, n, problem in self._by_anchor[pair]:
                if joined.startswith(joined_question, offsets[i]):
                    found.append(Match(problem, i, i + n))
                    break
        return found

    def find_match(self, text: str) -> Match | None:
        """The match of the asked question: the one starting last that is not inside a longer one."""
        found = self.matches(text)
        outer = [m for m in found if not any(o.start <= m.start and m.end <= o.end and o != m for o in found)]
        return max(outer, key=lambda m: m.start) if outer else None

    def find(self, text: str) -> Problem | None:
        """The problem asked about in ``text`` (see ``find_match``), or None."""
        match = self.find_match(text)
        return match.problem if match else None


def load_lookup(
    names: Iterable[str] = ("math500", "gsm8k", "synthetic"), extra_files: Iterable[Path] = ()
) -> ProblemLookup:
    """A lookup over the default datasets plus ``extra_files`` (JSONL problems, ``--problems``).

    A default dataset that fails to load is reported and left out; an extra file the user
    named that fails to load raises (``ValueError`` naming the file and line).
    """
    from datasets import load_problems

    problems: list[Problem] = []
    for name in names:
        try:
            problems.extend(load_problems(DatasetSpec(name=name)))  # type: ignore[arg-type]
        except Exception as exc:  # the server still serves; those questions get no reference
            print(f"serve-sim: dataset {name!r} not loaded for lookup: {exc}", file=sys.stderr)
    for path in extra_files:
        problems.extend(load_problem_file(path))
    return ProblemLookup(problems)


def load_problem_file(path: Path) -> list[Problem]:
    """Problems from a JSONL file: one ``Problem`` JSON object a line (``benchmark`` defaults to the stem)."""
    from pydantic import ValidationError

    problems: list[Problem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--problems {str(path)!r}: cannot read: {exc}") from None
    import json

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            raw.setdefault("benchmark", path.stem)
            raw.setdefault("answer_format", "boxed")
            problems.append(Problem.model_validate(raw))
        except (ValueError, ValidationError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise ValueError(f"--problems {str(path)!r} line {number}: {detail[:200]}") from None
    return problems
