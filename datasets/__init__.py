"""Dataset loaders (MATH-500, GSM8K, GPQA, synthetic, ToolBench, ToolAlpaca) and answer graders.

Note: this package shadows Hugging Face's ``datasets`` in the same environment; the
project does not use that library.
"""

from datasets.errors import DatasetError
from datasets.grading import Gsm8kGrader, LetterGrader, MathGrader, SymbolicChecker, grader_for
from datasets.loaders import is_streamed, iter_problems, load_all, load_problems
from datasets.paths import data_root
from datasets.toolalpaca import ToolAlpacaTask, load_toolalpaca
from datasets.toolbench import ToolTask, load_toolbench

__all__ = [
    "DatasetError",
    "Gsm8kGrader",
    "LetterGrader",
    "MathGrader",
    "SymbolicChecker",
    "ToolAlpacaTask",
    "ToolTask",
    "data_root",
    "grader_for",
    "is_streamed",
    "iter_problems",
    "load_all",
    "load_problems",
    "load_toolalpaca",
    "load_toolbench",
]
