"""Action names: Human3.6M normalisation and generic grouping.

Per-action evaluation in the field groups sequences by the first word of the
action name, so "Walking 1" and "Walking" count as one action, and bandai17's
"walk 003.2" belongs to "walk".
"""
from __future__ import annotations

from collections.abc import Iterable

#: The 15 canonical Human3.6M actions, in the order papers' tables use.
H36M_ACTIONS: tuple[str, ...] = (
    "Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
    "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
    "WalkTogether",
)

# Raw Human3.6M spellings that differ from the canonical names.
_H36M_ALIASES = {
    "TakingPhoto": "Photo",
    "WalkingDog": "WalkDog",
    "WalkingTogether": "WalkTogether",
}
_CANONICAL_BY_LOWER = {a.lower(): a for a in H36M_ACTIONS}
_CANONICAL_BY_LOWER.update({k.lower(): v for k, v in _H36M_ALIASES.items()})


def action_group(name: str) -> str:
    """The evaluation group of an action: its first space-separated word."""
    return str(name).split(" ")[0]


def normalize_h36m_action(name: str) -> str:
    """'TakingPhoto 1' -> 'Photo', 'Walking 1' -> 'Walking', 'WalkingDog' -> 'WalkDog'.

    Raises KeyError for names that are not Human3.6M actions.
    """
    base = action_group(name).strip()
    try:
        return _CANONICAL_BY_LOWER[base.lower()]
    except KeyError:
        raise KeyError(
            f"{name!r} is not a Human3.6M action (expected one of {list(H36M_ACTIONS)} "
            f"or an alias {sorted(_H36M_ALIASES)}, optionally followed by ' <trial>')"
        ) from None


def group_actions(names: Iterable[str], *, h36m: bool = False) -> dict[str, list[str]]:
    """Map each group to the action names in it, keeping first-seen order.

    With `h36m=True` the groups are the canonical Human3.6M names.
    """
    groups: dict[str, list[str]] = {}
    for n in names:
        g = normalize_h36m_action(n) if h36m else action_group(n)
        groups.setdefault(g, []).append(n)
    return groups
