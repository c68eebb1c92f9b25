"""The openai backend over aiohttp (``http_client: aiohttp``): the library, behind ``http1``'s interface.

``http1.Http1Pool`` is the default: a third of aiohttp's CPU a request (``docs/cluster.md``),
which matters when one model actor keeps a thousand requests in flight. This is the choice
for what that lean client leaves out on purpose: it follows redirects, keeps cookies, and
honours ``HTTP(S)_PROXY`` / ``NO_PROXY`` and ``.netrc`` from the environment (``trust_env``),
as a server behind a corporate proxy needs. The backend's behaviour is otherwise the same:
one pool of ``limit`` connections (aiohttp's own default of 100 would throttle silently), one
total deadline a request, the whole reply read, errors as ``TimeoutError`` / ``OSError`` /
``BadReply`` so ``OpenAIBackend`` types them alike on either client.
"""

from __future__ import annotations

import aiohttp

from actors.backends.http1 import BadReply, Reply


class AiohttpPool:
    """POSTs to one URL through an ``aiohttp.ClientSession``; made inside its event loop."""

    def __init__(self, url: str, headers: dict[str, str], limit: int) -> None:
        self.url = url
        self.limit = limit
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
        self._session = aiohttp.ClientSession(connector=connector, headers=headers, trust_env=True)

    @property
    def closed(self) -> bool:
        return self._session.closed

    async def post(self, body: bytes, timeout_s: float) -> Reply:
        """The server's reply to ``body``, all of it, within ``timeout_s`` (waiting for a connection included)."""
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self._session.post(self.url, data=body, timeout=timeout) as response:
                raw = await response.read()
                headers = {k.lower(): v for k, v in response.headers.items()}
                return Reply(response.status, headers, raw)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientResponseError as exc:  # e.g. a reply aiohttp could not parse
            raise BadReply(f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._session.close()
