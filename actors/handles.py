"""What code outside the facades may know about a Ray actor handle: whether it is one, and its key.

The facades (``RemoteModel``, ``RemoteTool``, ``RemoteToolEnv``, ``RemoteJudge``) own the
calls; nothing else checks for ``.remote`` or reads a handle's private fields.
"""

from __future__ import annotations

import sys
from typing import Any


def is_actor_handle(obj: Any) -> bool:
    """True for a Ray actor handle. Without Ray imported nothing can be one, so this never imports it."""
    actor = sys.modules.get("ray.actor")
    return actor is not None and isinstance(obj, actor.ActorHandle)


def actor_key(handle: Any) -> str:
    """A string that is the same exactly for handles on the same actor (in any process)."""
    return str(handle._actor_id.hex())


class RemoteJudge:
    """A judge actor (``orchestrators.slm_mux.MuxJudge`` made remote) as a plain object with ``select``."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def select(self, *args: Any) -> Any:
        return await self.handle.select.remote(*args)
