"""``load_problems``: one entry point from a ``DatasetSpec`` to a list of typed problems.

``iter_problems`` is the same problems one at a time: the JSONL datasets (GSM8K,
MATH-500) are read as they are iterated, so a run of any size holds only the problems
it has in flight (a shuffled spec needs the whole order, so it is loaded first).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

from datasets.errors import DatasetError
from datasets.gpqa import MISSING_MESSAGE, load_gpqa
from datasets.gsm8k import iter_gsm8k
from datasets.math500 import iter_math500
from datasets.paths import data_root, locate
from protocols.config import DatasetSpec
from protocols.messages import Problem

GPQA_SPLITS = ("main", "diamond", "extended", "experts")


def _file(spec: DatasetSpec, dataset: str, filename: str) -> Path:
    if spec.path is None:
        return locate(dataset, filename)
    return spec.path / filename if spec.path.is_dir() else spec.path


def _gpqa_path(spec: DatasetSpec) -> Path:
    if spec.path is not None:
        return spec.path / f"gpqa_{spec.split}.csv" if spec.path.is_dir() else spec.path
    split = spec.split if spec.split in GPQA_SPLITS else "diamond"
    try:
        root = data_root() / "gpqa"
    except DatasetError:
        raise DatasetError(MISSING_MESSAGE) from None
    for candidate in (root / f"gpqa_{split}.csv", root / "dataset" / f"gpqa_{split}.csv"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{MISSING_MESSAGE} (looked for {root / f'gpqa_{split}.csv'})")


def load_all(spec: DatasetSpec) -> list[Problem]:
    """Every problem of the spec's dataset and split, in file order (no shuffle, offset or limit)."""
    return list(iter_all(spec))


def iter_all(spec: DatasetSpec) -> Iterator[Problem]:
    """``load_all`` one problem at a time (read as iterated for the JSONL datasets)."""
    match spec.name:
        case "math500":
            if spec.split != "test":
                raise DatasetError(f"math500 has only a 'test' split, not {spec.split!r}")
            return iter_math500(_file(spec, "math500", "test.jsonl"))
        case "gsm8k":
            if spec.split not in ("test", "train"):
                raise DatasetError(f"gsm8k splits are 'test' and 'train', not {spec.split!r}")
            return iter_gsm8k(_file(spec, "gsm8k", f"{spec.split}.jsonl"), spec.split)
        case "gpqa":
            return iter(load_gpqa(_gpqa_path(spec)))
        case "synthetic":
            # Imported here: the generator needs sympy, which processes that only grade need not load.
            from datasets.synthetic import DEFAULT_COUNT, generate

            if spec.path is not None:
                raise DatasetError("synthetic problems are generated; dataset.path must be unset")
            count = max(DEFAULT_COUNT, spec.offset + (spec.limit or 0))
            return iter(generate(seed=spec.seed, count=count))
    raise DatasetError(f"unknown dataset {spec.name!r}")


def load_problems(spec: DatasetSpec) -> list[Problem]:
    """The problems a run evaluates: load, then shuffle (seeded) if asked, then ``offset`` and ``limit``.

    Raises ``DatasetError`` (a ``ValueError``) naming the file, line and field of bad data.
    """
    return list(iter_problems(spec))


STREAMED = ("math500", "gsm8k")
"""Datasets read line by line as iterated (the others are loaded, or generated, whole first)."""


def is_streamed(spec: DatasetSpec) -> bool:
    """True if ``iter_problems(spec)`` holds only what it has yielded (no shuffle, a JSONL dataset)."""
    return spec.name in STREAMED and not spec.shuffle


def iter_problems(spec: DatasetSpec) -> Iterator[Problem]:
    """``load_problems`` one problem at a time; unshuffled, only the problems not yet consumed are read.

    Errors (``DatasetError``) surface when the bad line is reached, not before.
    """
    end = None if spec.limit is None else spec.offset + spec.limit
    if spec.shuffle:  # a seeded permutation of the whole dataset: it must be loaded to be shuffled
        problems = load_all(spec)
        random.Random(f"shuffle:{spec.seed}").shuffle(problems)
        return iter(problems[spec.offset : end])
    return itertools.islice(iter_all(spec), spec.offset, end)
