"""The diagnostic (Dx) classes of the Challenge labels."""

from __future__ import annotations

from collections.abc import Iterable

#: The 11 final Dx classes in canonical order (the order of ``# Labels:`` lines written by the data preparation).
DX_CLASSES: list[str] = ["NORM", "Acute MI", "Old MI", "STTC", "CD", "HYP", "PAC", "PVC", "AFIB/AFL", "TACHY", "BRADY"]

#: The class of a normal ECG (it stands alone in a record's labels).
NORMAL_CLASS: str = "NORM"

#: The binary label set of early Challenge data (``#Dx: Normal`` / ``#Dx: Abnormal``).
BINARY_CLASSES: tuple[str, str] = ("Normal", "Abnormal")


def sort_classes(names: Iterable[str]) -> list[str]:
    """The distinct ``names``: those of :data:`DX_CLASSES` in its order, then any others sorted."""
    seen = set(names)
    return [c for c in DX_CLASSES if c in seen] + sorted(seen - set(DX_CLASSES))
