"""GPQA from the official CSV the user supplies (main / diamond / extended / experts).

The correct answer has its own column, so the four options are shuffled with a seed
derived from the record id (stable across runs and machines) and the permutation kept.
"""

from __future__ import annotations

import csv
import hashlib
import random
from pathlib import Path

from datasets.errors import DatasetError
from protocols.messages import Problem

LETTERS = "ABCD"
OPTION_COLUMNS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
REQUIRED = ("Question", *OPTION_COLUMNS, "Record ID")

MISSING_MESSAGE = (
    "GPQA is not redistributed with this project. Download the official CSV yourself "
    "(github.com/idavidrein/gpqa dataset.zip, or the gated Hugging Face dataset Idavidrein/gpqa) "
    "and set dataset.path to gpqa_main.csv / gpqa_diamond.csv / gpqa_extended.csv, or place it "
    "as <data root>/gpqa/gpqa_<split>.csv. Keep it out of git."
)


def permutation_for(record_id: str, seed: int = 0) -> tuple[int, ...]:
    """The option order for one question: position i shows ``OPTION_COLUMNS[perm[i]]`` (0 = correct)."""
    digest = hashlib.sha256(f"gpqa:{seed}:{record_id}".encode()).digest()
    order = [0, 1, 2, 3]
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return tuple(order)


def format_question(question: str, choices: tuple[str, ...]) -> str:
    """The question followed by lettered options, as a solver sees it."""
    lines = [question.strip(), ""]
    lines += [f"{LETTERS[i]}) {choice}" for i, choice in enumerate(choices)]
    return "\n".join(lines)


def load_gpqa(path: Path, seed: int = 0) -> list[Problem]:
    """Problems with shuffled ``choices``, ``reference`` = the correct letter, ``metadata["permutation"]``."""
    problems: list[Problem] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise DatasetError(f"header lacks column(s) {missing}", path=path, line=1, field=missing[0])
        for row in reader:
            line = reader.line_num  # the physical line where this row ends (fields may span lines)
            for column in REQUIRED:
                if not (row.get(column) or "").strip():
                    raise DatasetError("missing or empty", path=path, line=line, field=column)
            record_id = row["Record ID"].strip()
            options = [row[c].strip() for c in OPTION_COLUMNS]
            perm = permutation_for(record_id, seed)
            choices = tuple(options[i] for i in perm)
            problems.append(
                Problem(
                    id=record_id,
                    benchmark="gpqa",
                    question=format_question(row["Question"], choices),
                    reference=LETTERS[perm.index(0)],
                    answer_format="letter",
                    choices=choices,
                    domain=(row.get("High-level domain") or "").strip() or None,
                    subdomain=(row.get("Subdomain") or "").strip() or None,
                    metadata={
                        "permutation": list(perm),
                        "question_text": row["Question"].strip(),
                        "explanation": (row.get("Explanation") or "").strip(),
                    },
                )
            )
    return problems
