"""The one place a model's backend chain is assembled from its spec and the store settings.

Chain, innermost first::

    base (sim | openai | fake)  ->  key scrubber  ->  in-flight bound + rate limit (per attempt)  ->  retry  ->  record

``spec.backend == "replay"``, or ``store.mode == "replay"`` for an ``openai`` model,
replaces the whole chain by the replay backend over the store: nothing live is ever
called in replay mode. A ``sim`` or ``fake`` model is not recorded (it is a pure function
of the seed and the request, and free), so in replay mode it is computed again, identically.
"""

from __future__ import annotations

import os
from pathlib import Path

from actors.backends.store import RecordingBackend, ReplayBackend, ResponseStore
from actors.backends.wrappers import InFlightBackend, RateLimitBackend, RetryBackend, ScrubBackend
from protocols.config import ModelSpec, StoreSpec
from protocols.interfaces import Backend


def store_path(store: StoreSpec, store_dir: Path | str | None) -> Path:
    """The store directory: the caller's resolved ``store_dir``, else ``store.path``."""
    path = store_dir if store_dir is not None else store.path
    if path is None:
        raise ValueError(f"store mode {store.mode!r} needs a store directory (store.path or store_dir)")
    return Path(path)


def base_backend(spec: ModelSpec, seed: int) -> Backend:
    """The backend that actually produces completions for ``spec`` (no wrappers)."""
    match spec.backend:
        case "sim":
            # Imported lazily: a live-only run never loads the simulator.
            from actors.backends.sim import SimBackend

            return SimBackend(spec, seed)
        case "openai":
            from actors.backends.openai import OpenAIBackend

            return OpenAIBackend(spec)
        case "fake":
            from actors.backends.fake import FakeBackend

            return FakeBackend.from_spec(spec, seed)
    raise ValueError(f"model {spec.name!r}: backend {spec.backend!r} has no base backend")


def build_backend(spec: ModelSpec, seed: int, store: StoreSpec, store_dir: Path | str | None = None) -> Backend:
    """The full backend chain for one model.

    Args:
        spec: the model and its backend settings (limits, retries, price).
        seed: the run seed (the simulator's completions are a pure function of it).
        store: the response store mode.
        store_dir: the resolved store directory (the runner passes ``<out_dir>/store``
            when ``store.path`` is None).
    """
    if spec.backend == "replay" or (store.mode == "replay" and spec.backend == "openai"):
        return ReplayBackend(spec, ResponseStore(store_path(store, store_dir)))
    chain: Backend = base_backend(spec, seed)
    secret = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    if secret:
        chain = ScrubBackend(chain, secret)
    chain = InFlightBackend(chain, spec.max_in_flight)
    if spec.requests_per_minute or spec.tokens_per_minute:
        chain = RateLimitBackend(chain, spec.requests_per_minute, spec.tokens_per_minute)
    # The simulator's (and the fake's) faults happen in simulated time: back off in simulated time too.
    delay_scale = spec.time_scale if spec.backend in ("sim", "fake") else 1.0
    chain = RetryBackend(chain, spec.max_retries, delay_scale=delay_scale)
    if store.mode == "record" and spec.backend == "openai":
        chain = RecordingBackend(chain, spec, ResponseStore(store_path(store, store_dir)))
    return chain
