"""The 15 canonical Human3.6M action names (shared by every dataset source and table)."""

from __future__ import annotations

__all__ = ["ACTIONS", "check_action"]

ACTIONS: tuple[str, ...] = (
    "Directions",
    "Discussion",
    "Eating",
    "Greeting",
    "Phoning",
    "Photo",
    "Posing",
    "Purchases",
    "Sitting",
    "SittingDown",
    "Smoking",
    "Waiting",
    "WalkDog",
    "Walking",
    "WalkTogether",
)


def check_action(name: str) -> str:
    """Return ``name`` if it is a canonical action; ``ValueError`` listing the 15 otherwise."""
    if name not in ACTIONS:
        raise ValueError(f"unknown action {name!r}; known actions: {', '.join(ACTIONS)}")
    return name
