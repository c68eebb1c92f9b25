"""Agent Forest's last tie rule: a seeded, fair draw among tied answers, never the alphabetically first model."""

from __future__ import annotations

from orchestrators.agent_forest import forest_salt
from orchestrators.voting import Vote, majority


def test_seeded_draw_replaces_the_model_name_rule() -> None:
    votes = [Vote(0, "Zeta", 0), Vote(1, "Alpha", 0)]
    assert majority(votes).tie_break == "model_name" and majority(votes).label == 1
    seeded = majority(votes, salt=forest_salt(0, "p1"))
    assert seeded.tie_break == "seeded_draw" and seeded.tied == (0, 1)
    assert seeded == majority(votes, salt=forest_salt(0, "p1"))  # replayable


def test_seeded_draw_favours_no_model_by_name() -> None:
    votes = [Vote(0, "Zeta", 0), Vote(1, "Alpha", 0)]
    wins = sum(majority(votes, salt=forest_salt(seed, f"p{i}")).label == 1 for seed in range(4) for i in range(100))
    assert 150 < wins < 250  # about half of 400 draws each way


def test_earlier_rules_still_decide_before_the_draw() -> None:
    votes = [Vote(0, "A", 0), Vote(0, "B", 1), Vote(1, "A", 2), Vote(1, "A", 3)]
    assert majority(votes, salt="s").tie_break == "more_models"
