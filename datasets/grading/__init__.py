"""Answer extraction, equivalence and grading for each answer format."""

from datasets.grading.graders import FreeTextGrader, Gsm8kGrader, LetterGrader, MathGrader, grader_for, shared_checker
from datasets.grading.symbolic import SymbolicChecker, SymbolicResult

__all__ = [
    "FreeTextGrader",
    "Gsm8kGrader",
    "LetterGrader",
    "MathGrader",
    "SymbolicChecker",
    "SymbolicResult",
    "grader_for",
    "shared_checker",
]
