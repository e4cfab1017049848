"""How well PTB-XL's rhythm labels agree with their own reports, and what that caps a rate rule at.

    python -m benchmarks.ptbxl_rhythm_labels --shared ../shared/data [--workers 2]

The Challenge labels TACHY, BRADY, AFIB/AFL, PAC and PVC come from PTB-XL's SCP codes (``prepare_ptbxl_data.CODE_LABELS``).
Part of PTB-XL (the Swedish and some German reports) states a rhythm in the free-text report without the code,
so a correct detector is scored as a false positive there. For every record of ``<shared>/ptbxl/records100``
this prints (1) how many records carry the class by code, by report text, both and only one, and (2) the
F-measure of a one-feature rule on the record's true signal (``ecgfeatures``) against the code labels and against
code-or-report labels: TACHY heart rate > 100 bpm, BRADY 40-60 bpm and 40-50 bpm (the entry's fitted cut-off),
AFIB/AFL ``af_score`` > 0.5, PAC and PVC the entry's rules (premature narrow beats; compensatory pauses; neither
under AF), each at the best cut-off too (the in-sample ceiling of a rate rule).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.rhythm_rules import f_measure  # noqa: E402  (re-exported for the tests)

#: Phrases of a report (regular expressions on the lower-case text, each starting at a word boundary; German, Swedish,
#: English as in PTB-XL) that state a rhythm class. The ectopic-beat phrases: a word boundary keeps "supraventrikuläre
#: extrasystole" (PAC) out of "ventrikuläre extrasystole" (PVC).
REPORT_TERMS: dict[str, tuple[str, ...]] = {
    "TACHY": ("sinus tachycardia", "sinustachykardi", "sinustakykardi", "supraventricular tachycardia"),
    "BRADY": ("sinus bradycardia", "sinusbradykardi"),
    "AFIB/AFL": (
        "atrial fibrillation",
        "atrial flutter",
        "vorhofflimmern",
        "vorhofflattern",
        "förmaksflimmer",
        "förmaksfladder",
    ),
    "PAC": (
        "premature atrial",
        "atrial premature",
        r"supraventricular (extrasystole|premature)",
        r"supraventrikulär\S* (extrasystol|extraslag)",
        "förmaksextraslag",
    ),
    "PVC": (
        "premature ventricular",
        "ventricular premature",
        "ventricular extrasystole",
        r"ventrikulär\S* (extrasystol|extraslag)",
        "kammarextraslag",
    ),
}
_REPORT_PATTERNS = {c: re.compile("|".join(rf"\b(?:{t})" for t in terms)) for c, terms in REPORT_TERMS.items()}


def report_classes(report: str) -> set[str]:
    """Rhythm classes of :data:`REPORT_TERMS` that a free-text report states (any language of PTB-XL)."""
    text = re.sub(r"\s+", " ", str(report).lower())
    return {c for c, pattern in _REPORT_PATTERNS.items() if pattern.search(text)}


def code_classes(scp_codes: str) -> set[str]:
    """Rhythm classes that the SCP codes (the ``scp_codes`` dict literal of ptbxl_database.csv) give."""
    from prepare_ptbxl_data import CODE_LABELS

    codes = set(ast.literal_eval(scp_codes)) if isinstance(scp_codes, str) and scp_codes.strip() else set()
    return {label for label, members in CODE_LABELS if label in REPORT_TERMS and codes & members}


def _true_features(header: str) -> np.ndarray:
    import wfdb

    from ecgentry.records import standard_leads
    from ecgfeatures.features import extract_features

    rec = wfdb.rdrecord(header[:-4])
    return extract_features(standard_leads(np.asarray(rec.p_signal, float), list(rec.sig_name)), float(rec.fs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", required=True, help="the shared data folder (with ptbxl/)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    import pandas as pd
    from joblib import Parallel, delayed

    from ecgfeatures.features import FEATURE_NAMES

    ptbxl = Path(args.shared) / "ptbxl"
    headers = sorted(str(h) for h in (ptbxl / "records100").rglob("*.hea"))
    if not headers:
        print(f"no records under {ptbxl / 'records100'}")
        return 1
    db = pd.read_csv(ptbxl / "ptbxl_database.csv", index_col="ecg_id")
    ids = [int(Path(h).stem.split("_")[0]) for h in headers]
    by_code = [code_classes(db.loc[i, "scp_codes"]) for i in ids]
    by_report = [report_classes(db.loc[i, "report"]) for i in ids]
    t0 = time.time()
    feats = np.stack(Parallel(n_jobs=args.workers)(delayed(_true_features)(h) for h in headers))
    print(f"{len(headers)} PTB-XL records, true-signal features in {time.time() - t0:.0f} s\n")

    print("| class | by code | by report | both | code only | report only |\n| --- | --- | --- | --- | --- | --- |")
    for c in REPORT_TERMS:
        code = np.array([c in s for s in by_code])
        rep = np.array([c in s for s in by_report])
        print(
            f"| {c} | {code.sum()} | {rep.sum()} | {(code & rep).sum()} | {(code & ~rep).sum()} | "
            f"{(rep & ~code).sum()} |"
        )

    hr = feats[:, FEATURE_NAMES.index("heart_rate_bpm")]
    af = feats[:, FEATURE_NAMES.index("af_score")]
    narrow = feats[:, FEATURE_NAMES.index("ectopic_narrow_fraction")]
    pause = feats[:, FEATURE_NAMES.index("compensatory_pause_fraction")]
    with np.errstate(invalid="ignore"):
        rules = [
            ("TACHY", "heart rate > 100 bpm", lambda c: hr > c, 100.0, np.arange(90.0, 121.0, 1.0)),
            ("BRADY", "heart rate 40-60 bpm", lambda c: (hr >= 40) & (hr < c), 60.0, np.arange(45.0, 61.0, 0.5)),
            ("BRADY", "heart rate 40-50 bpm", lambda c: (hr >= 40) & (hr < c), 50.0, np.arange(45.0, 61.0, 0.5)),
            ("AFIB/AFL", "af_score > 0.5", lambda c: af > c, 0.5, np.arange(0.2, 0.91, 0.05)),
            (
                "PAC",
                "premature narrow beats > 0, no AF",
                lambda c: (narrow > c) & ~(af > 0.5),
                0.0,
                np.arange(0.0, 0.31, 0.05),
            ),
            (
                "PVC",
                "compensatory pauses > 0.08, no AF",
                lambda c: (pause > c) & ~(af > 0.5),
                0.08,
                np.arange(0.04, 0.31, 0.02),
            ),
        ]
        print(
            "\n| class | rule | F vs codes | F vs codes or report | best cut-off vs codes (F) |\n"
            "| --- | --- | --- | --- | --- |"
        )
        for c, name, fire, cut, grid in rules:
            code = np.array([c in s for s in by_code])
            either = code | np.array([c in s for s in by_report])
            best = max(grid, key=lambda g: (f_measure(fire(g), code), -abs(g - cut)))
            print(
                f"| {c} | {name} | {f_measure(fire(cut), code):.2f} | {f_measure(fire(cut), either):.2f} | "
                f"{best:g} ({f_measure(fire(best), code):.2f}) |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
