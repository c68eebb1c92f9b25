"""alpha-UMi experiments: the static evaluation, the end-to-end loop and the GLPFT data builder."""

from experiments.studies.alpha_umi.cli import main

__all__ = ["main"]
