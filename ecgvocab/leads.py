"""The 12 standard ECG leads: canonical order and spelling, and the one way lead names are matched.

Lead names match case-insensitively and ignore surrounding blanks (``"AVR"``, ``" avr"`` and ``"aVR"`` are
the same lead); :func:`lead_key` is that matching key, :func:`canonical_lead_name` the canonical spelling.
"""

from __future__ import annotations

import re

#: The 12 standard leads in canonical order and spelling (the column order of every 12-lead signal).
#: A list, as callers have always used it; treat it as read-only.
STANDARD_LEADS: list[str] = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]

#: The six limb leads and the six precordial leads, canonical spelling.
LIMB_LEADS: tuple[str, ...] = tuple(STANDARD_LEADS[:6])
PRECORDIAL_LEADS: tuple[str, ...] = tuple(STANDARD_LEADS[6:])


def lead_key(name: object) -> str:
    """The matching key of a lead name: stripped and upper case (``" aVr "`` -> ``"AVR"``)."""
    return str(name).strip().upper()


#: :func:`lead_key` of each standard lead, in canonical order (``"I", ..., "AVR", "AVL", "AVF", "V1", ...``).
STANDARD_LEAD_KEYS: tuple[str, ...] = tuple(lead_key(name) for name in STANDARD_LEADS)
_INDEX_BY_KEY: dict[str, int] = {key: i for i, key in enumerate(STANDARD_LEAD_KEYS)}

#: A lead name written in free text (a self-check's detail, a label): canonical or upper-case spelling, not part
#: of a longer word. ``LEAD_TOKEN.findall(text)`` gives the names as written; map them with :func:`lead_key`.
LEAD_TOKEN: re.Pattern[str] = re.compile(r"(?<![A-Za-z0-9])(III|II|I|aVR|aVL|aVF|AVR|AVL|AVF|V[1-6])(?![A-Za-z0-9])")


def lead_index(name: object) -> int | None:
    """Column of ``name`` in :data:`STANDARD_LEADS` (matched by :func:`lead_key`), or None if not a standard lead."""
    return _INDEX_BY_KEY.get(lead_key(name))


def canonical_lead_name(name: object) -> str | None:
    """Canonical spelling of a standard lead name (``"avl"`` -> ``"aVL"``), or None if not one of the 12."""
    idx = lead_index(name)
    return None if idx is None else STANDARD_LEADS[idx]
