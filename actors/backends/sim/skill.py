"""Stable hashing randomness and the item-response skill model of the simulator.

Every random quantity in the simulator is a pure function of a key: the key is
hashed with blake2b and the digest read as a uniform float. No global random
state and no Python ``hash()`` (salted per process), so a completion is the same
in every process, on every machine, in every run with the same seed.
"""

from __future__ import annotations

import math
from hashlib import blake2b
from statistics import NormalDist

_TWO_64 = float(1 << 64)
_STD_NORMAL = NormalDist()


def unit(*parts: object) -> float:
    """A uniform float in (0, 1) determined by ``parts`` (their ``str`` forms, joined)."""
    key = "\x1f".join(map(str, parts)).encode()
    digest = blake2b(key, digest_size=8).digest()
    # +0.5 keeps the value strictly inside (0, 1) so logit/inverse-CDF never see 0 or 1.
    return (int.from_bytes(digest, "little") + 0.5) / _TWO_64


def key_prefix(*parts: object) -> str:
    """The joined form of the leading ``parts`` of many keys, for ``unit_after`` (joined once, not per draw)."""
    return "\x1f".join(map(str, parts))


def unit_after(prefix: str, *parts: object) -> float:
    """``unit(*head, *parts)`` for ``prefix = key_prefix(*head)`` (``head`` not empty): the same value."""
    digest = blake2b(("\x1f".join((prefix, *map(str, parts)))).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") + 0.5) / _TWO_64


def normal(*parts: object) -> float:
    """A standard normal draw determined by ``parts``."""
    return _STD_NORMAL.inv_cdf(unit(*parts))


def text_hash(text: str) -> str:
    """A short stable digest of a text (e.g. a prompt), for use inside keys."""
    return blake2b(text.encode(), digest_size=8).hexdigest()


def sigmoid(x: float) -> float:
    """The logistic function, safe for large ``|x|``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def logit(p: float) -> float:
    """The inverse of ``sigmoid`` for ``p`` in (0, 1)."""
    return math.log(p / (1.0 - p))


def gumbel(*parts: object) -> float:
    """A standard Gumbel draw determined by ``parts`` (for seed-free argmax draws)."""
    return -math.log(-math.log(unit(*parts)))


def temperature_penalty(temperature: float) -> float:
    """A logit penalty for temperatures above 1, where real small models' text degenerates."""
    return 2.0 * max(0.0, temperature - 1.0)


def choice(u: float, weights: list[float] | tuple[float, ...]) -> int:
    """The index picked by a uniform ``u`` from (unnormalised, non-negative) ``weights``."""
    total = sum(weights)
    acc = 0.0
    threshold = u * total
    for i, w in enumerate(weights):
        acc += w
        if threshold < acc:
            return i
    return len(weights) - 1
