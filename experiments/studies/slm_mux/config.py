"""The config of an SLM-MUX study (``slmsim pool``, ``sweep`` and ``select`` read the same file)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from experiments.runtime.config_io import load_model
from protocols.config import DatasetSpec, ModelSpec, RunSpec, StoreSpec, Strict


class PoolSpec(Strict):
    """How the pool is drawn."""

    k: int = Field(default=9, ge=1, le=64)
    temperature: float = Field(default=0.5, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    prompt_style: Literal["chat", "few_shot"] = "chat"
    """``few_shot``: a plain completions prompt with ``shots`` worked examples (base models)."""
    shots: int = Field(default=4, ge=0, le=16)


class SplitSpec(Strict):
    """The validation/test split of the pool's problems (by a seeded hash of the problem id)."""

    validation_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    seed: int = 0


class SelectionSpec(Strict):
    """Model-selection search (``experiments.studies.slm_mux.selection``)."""

    sizes: tuple[int, ...] = (2, 3, 4, 5)
    k: int = Field(default=3, ge=1)
    lam: float = Field(default=1.0, ge=0.0)
    """The weight of the contradiction penalty."""
    confident_threshold: float = Field(default=1.0, gt=0.0, le=1.0)
    """A model is "consistently wrong" when its top answer is wrong with at least this confidence."""
    folds: int = Field(default=5, ge=2, le=50)
    objective: Literal["union_contradiction", "mux_cv"] = "union_contradiction"
    top: int = Field(default=20, ge=1)


class SweepSpec(Strict):
    """Test-time scaling sweeps (``experiments.studies.slm_mux.sweep``)."""

    models: tuple[str, ...] | None = None
    """The subset swept over k; None: all pool models."""
    k_values: tuple[int, ...] | None = None
    """None: 1..pool.k."""
    k_for_models: int | None = None
    """k of the number-of-models sweep; None: the k chosen on validation."""


class StudyConfig(Strict):
    """An SLM-MUX study: one pool of samples and the searches and sweeps computed from it."""

    name: str = "slm_mux_study"
    seed: int = 0
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    pool: PoolSpec = Field(default_factory=PoolSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    run: RunSpec = Field(default_factory=RunSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    backend: dict[str, Any] | None = None
    """Unused by the code: the holder of the YAML anchor the models merge (``<<: *backend``)."""

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)


def load_study(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """YAML + ``key=value`` overrides -> a validated study config (one-line error otherwise)."""
    return load_model(StudyConfig, path, overrides)
