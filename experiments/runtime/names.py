"""Names derived from user text: one ``slug`` for every run directory and file name."""

from __future__ import annotations

import re


def slug(text: str) -> str:
    """A directory-safe name for a model, method or structure label (never empty, at most 80 chars)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "x"
