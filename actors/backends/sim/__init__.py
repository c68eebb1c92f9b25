"""The calibrated simulator of small LLMs (``source: sim``): a backend like any other."""

from actors.backends.sim.backend import SimBackend
from actors.backends.sim.cards import Card, SimCards, load_cards

__all__ = ["Card", "SimBackend", "SimCards", "load_cards"]
