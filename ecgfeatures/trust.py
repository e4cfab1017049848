"""Which leads of a digitized page the diagnosis may read: the leads the page's self-check does not blame.

The self-check (``ecgdigitize.selfcheck``, ``DigitizationResult.check``) judges a page by laws and ranges; this
module turns its failed checks into a set of leads left out of the signal features (set to NaN; the feature
extractor and the Dx head handle missing values), so that a lead read from the wrong row, with a calibration
pulse left in or as a flat line does not become a diagnosis. A page whose status is ``failed`` (or that has no
check, i.e. no signal was read) is not used at all: :func:`page_usable`.

Blame, per failed check (checks that passed or were not applicable blame nothing):

* ``coverage``, ``flat``, ``amplitude``, ``pulse``, ``duplicate``, ``qrs_timing``, ``rr_agreement``: the leads
  the check lists (``Check.leads``: the leads under the coverage limit or without samples, the flat leads, the
  leads with a pulse left in, the duplicated pairs, the pair whose beats disagree; in reports without that list,
  the leads its detail text names);
* ``rhythm_vs_segment:X`` and ``rhythm_amplitude:X``: lead X;
* limb-lead laws (``einthoven``, ``goldberger``, ``goldberger:I/II/III``): a limb lead is blamed when at least one
  law with it failed and none with it passed (a failed Einthoven II = I + III with a passing II = 2/3 (aVF - aVR)
  clears II and blames I and III);
* page-level checks (``rate``, ``rr_windows``, ``precordial``: a statistical check, not a law; the layout and the
  scale's source) blame no lead.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ecgvocab import LEAD_TOKEN, lead_key

#: failed checks whose detail names the leads they blame
NAMING_CHECKS = ("coverage", "flat", "amplitude", "pulse", "duplicate", "qrs_timing", "rr_agreement")
#: leads of each limb-lead law (their ``lead_key``), as ``ecgdigitize.selfcheck.LIMB_IDENTITIES``
LIMB_LAWS: dict[str, tuple[str, ...]] = {
    "einthoven": ("I", "II", "III"),
    "goldberger": ("AVR", "AVL", "AVF"),
    "goldberger:II": ("II", "AVF", "AVR"),
    "goldberger:I": ("I", "AVL", "AVR"),
    "goldberger:III": ("III", "AVF", "AVL"),
}


def _checks(check: Any) -> list[dict[str, Any]]:
    """The check list of a ``SelfCheck`` or of its ``to_dict()`` form, as dicts (name, passed, detail)."""
    if check is None:
        return []
    items = check.get("checks", []) if isinstance(check, dict) else getattr(check, "checks", [])
    out = []
    for c in items:
        if isinstance(c, dict):
            out.append(
                {
                    "name": str(c.get("name", "")),
                    "passed": c.get("passed"),
                    "detail": str(c.get("detail", "")),
                    "leads": c.get("leads"),
                }
            )
        else:
            out.append(
                {"name": str(c.name), "passed": c.passed, "detail": str(c.detail), "leads": getattr(c, "leads", None)}
            )
    return out


def check_status(check: Any) -> str:
    """'ok', 'suspect' or 'failed' of a ``SelfCheck`` (or its dict); 'failed' when there is none."""
    if check is None:
        return "failed"
    return str(check.get("status", "failed") if isinstance(check, dict) else check.status)


def page_usable(check: Any) -> bool:
    """May the diagnosis read this page at all? Not when its digitization failed (no check, or status failed)."""
    return check_status(check) != "failed"


def untrusted_leads(check: Any) -> set[str]:
    """Upper-case names of the leads the page's self-check blames (see the module docstring)."""
    blamed: set[str] = set()
    passed_law: set[str] = set()
    failed_law: set[str] = set()
    for c in _checks(check):
        name, passed = c["name"], c["passed"]
        if name in LIMB_LAWS:
            if passed is True:
                passed_law.update(LIMB_LAWS[name])
            elif passed is False:
                failed_law.update(LIMB_LAWS[name])
            continue
        if passed is not False:
            continue
        if name.startswith(("rhythm_vs_segment:", "rhythm_amplitude:")):
            blamed.add(lead_key(name.split(":", 1)[1]))
        elif name in NAMING_CHECKS:
            # the check's own list of leads; reports written before it had one name them in the detail text
            named = c["leads"] if c["leads"] is not None else LEAD_TOKEN.findall(c["detail"])
            blamed.update(lead_key(m) for m in named)
    return blamed | (failed_law - passed_law)


def trusted_signal(signal: np.ndarray, lead_names: Iterable[str], check: Any) -> np.ndarray:
    """A copy of ``signal`` (num_samples, len(lead_names)) with the leads :func:`untrusted_leads` blames set to
    NaN (all NaN when the page is not :func:`page_usable`)."""
    out = np.array(signal, dtype=np.float64, copy=True)
    if not page_usable(check):
        out[:] = np.nan
        return out
    blamed = untrusted_leads(check)
    for j, name in enumerate(lead_names):
        if j < out.shape[1] and lead_key(name) in blamed:
            out[:, j] = np.nan
    return out
