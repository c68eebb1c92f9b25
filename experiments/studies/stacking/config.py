"""The config of a stacking search: the test dataset, the models, agent settings and the search knobs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import Field, model_validator

from experiments.runtime.config_io import load_model
from orchestrators.stacking_structure import parse_structure
from protocols.config import DatasetSpec, ModelSpec, RunSpec, StackingConfig, StoreSpec, Strict


class SearchSpec(Strict):
    """The knobs of the original framework, plus explicit bounds on every loop."""

    base_models: tuple[str, ...] = Field(min_length=1)
    baseline: str | None = None
    """A reference model (e.g. GPT-4o) evaluated as X_0 next to the search; never an orchestrator."""
    top_n: int = Field(default=5, ge=1)
    tool_number: int = Field(default=2, ge=2)
    train_data_number: int = Field(default=20, ge=1)
    max_warmup_level: int = Field(default=4, ge=0, le=12)
    max_layers: int = Field(default=4, ge=1, le=12)
    candidates_in_flight: int = Field(default=8, ge=1)
    fixed_structure: str | None = None
    """Test this structure directly, with no search."""
    test: bool = True


class StackSearchConfig(Strict):
    """A stacking search: the test dataset, the models, agent settings, run and store, search knobs."""

    name: str = "stack_search"
    seed: int = 0
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    stacking: StackingConfig = Field(default_factory=lambda: StackingConfig(structure="(searched)"))
    run: RunSpec = Field(default_factory=RunSpec)
    store: StoreSpec = Field(default_factory=StoreSpec)
    search: SearchSpec

    @model_validator(mode="after")
    def _models_known(self) -> StackSearchConfig:
        names = {m.name for m in self.models}
        wanted = [*self.search.base_models, *([self.search.baseline] if self.search.baseline else [])]
        missing = [m for m in wanted if m not in names]
        if missing:
            raise ValueError(f"search refers to unknown model(s) {missing}; known: {sorted(names)}")
        if self.search.fixed_structure is not None:
            parse_structure(self.search.fixed_structure, known=names)
        return self


def load_search_config(path: str | Path, overrides: Sequence[str] = ()) -> StackSearchConfig:
    """YAML + ``key=value`` overrides -> a validated search config (one-line ``ConfigError``)."""
    return load_model(StackSearchConfig, path, overrides)
