"""What every backend wrapper shares: the inner backend, and closing it."""

from __future__ import annotations

from protocols.interfaces import Backend


async def close_backend(backend: object) -> None:
    """Release a backend's connections; ``aclose`` is optional (a simulator holds none)."""
    close = getattr(backend, "aclose", None)
    if close is not None:
        await close()


class Wrapper:
    """Base of the backends that wrap another (retry, rate limit, record...): closing one closes the chain."""

    inner: Backend

    async def aclose(self) -> None:
        await close_backend(self.inner)
