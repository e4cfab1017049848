#!/usr/bin/env python
"""Prepare PTB-XL records for the Challenge: add demographics and `# Labels:` to every header.

Usage (official flags)::

    python prepare_ptbxl_data.py -i ptb-xl/records500 -pd ptb-xl/ptbxl_database.csv \
        -pm ptb-xl/scp_statements.csv [-sd 12sl_statements.csv -sm 12slv23ToSNOMED.csv] -o out

For every WFDB record under ``-i`` (found recursively), the header is rewritten to ``-o`` under the
same relative path: the record line keeps its first four fields (name, number of signals, sampling
frequency in Hz, number of samples) plus the recording time and date from ``ptbxl_database.csv``;
the signal lines are kept; old demographics/label comments are replaced by ``# Age:``, ``# Sex:``,
``# Height:`` (cm), ``# Weight:`` (kg) (``Unknown`` when missing) and ``# Labels:``.
The signal files are copied unchanged (PTB-XL is already format 16 at 1000 adu/mV). Every file read, copied or
written must resolve (symlinks included) inside its record's folder (``ecgentry.safe_paths``); others are skipped
with a warning.

Labels (the 11 Challenge classes, in this order): NORM, Acute MI, Old MI, STTC, CD, HYP from the
``diagnostic_class`` of the diagnostic SCP statements; PAC, PVC, AFIB/AFL (AFIB or AFLT), TACHY
(STACH, SVTAC or PSVT), BRADY (SBRAD) from the SCP codes themselves. "Acute MI" needs the PTB-XL+
12SL statements (``-sd``/``-sm``); without them every MI is "Old MI".
"""
from __future__ import annotations

import argparse
import ast
import logging
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ecgentry.safe_paths import copy_inside, record_paths, same_folder
from helper_code import find_records, get_signal_files_from_header, load_text, save_text, substring_labels

logger = logging.getLogger(__name__)

#: 12SL statement numbers that denote an acute MI (mapped to acronyms through 12slv23ToSNOMED.csv).
ACUTE_MI_STATEMENTS: tuple[int, ...] = (821, 822, 823, 827, 829, 902, 903, 904, 963, 964, 965, 966, 967, 968)

#: Comment prefixes that this script (re)writes; existing lines with them are dropped.
REPLACED_COMMENTS: tuple[str, ...] = ("# Age:", "# Sex:", "# Height:", "# Weight:", substring_labels)

#: SCP codes (rhythm/form statements) for the non-superclass labels.
CODE_LABELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("PAC", frozenset({"PAC"})),
    ("PVC", frozenset({"PVC"})),
    ("AFIB/AFL", frozenset({"AFIB", "AFLT"})),
    ("TACHY", frozenset({"STACH", "SVTAC", "PSVT"})),
    ("BRADY", frozenset({"SBRAD"})),
)


def get_parser() -> argparse.ArgumentParser:
    """Command-line flags of the official script."""
    parser = argparse.ArgumentParser(description="Prepare the PTB-XL database for use in the Challenge.")
    parser.add_argument("-i", "--input_folder", type=str, required=True)
    parser.add_argument("-pd", "--ptbxl_database_file", type=str, required=True)  # ptbxl_database.csv
    parser.add_argument("-pm", "--ptbxl_mapping_file", type=str, required=True)  # scp_statements.csv
    parser.add_argument("-sd", "--sl_database_file", type=str, default=None)  # 12sl_statements.csv (PTB-XL+)
    parser.add_argument("-sm", "--sl_mapping_file", type=str, default=None)  # 12slv23ToSNOMED.csv (PTB-XL+)
    parser.add_argument("-o", "--output_folder", type=str, required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def load_superclass_map(statements_file: str | os.PathLike) -> dict[str, str]:
    """Map each diagnostic SCP code (``diagnostic == 1``) to its ``diagnostic_class`` (NORM, MI, STTC, CD, HYP)."""
    df = pd.read_csv(statements_file, index_col=0)
    if "diagnostic" not in df.columns or "diagnostic_class" not in df.columns:
        raise ValueError(f"{statements_file}: expected columns 'diagnostic' and 'diagnostic_class'")
    mapping: dict[str, str] = {}
    for code, row in df.iterrows():
        if row["diagnostic"] == 1 and isinstance(row["diagnostic_class"], str):
            mapping[str(code).strip()] = row["diagnostic_class"].strip()
    return mapping


def assign_superclasses(scp_codes: Iterable[str], mapping: Mapping[str, str]) -> list[str]:
    """Superclasses of the given SCP codes, without duplicates, in order of first appearance."""
    superclasses: list[str] = []
    for code in scp_codes:
        superclass = mapping.get(code)
        if superclass is not None and superclass not in superclasses:
            superclasses.append(superclass)
    return superclasses


def parse_scp_codes(value: Any) -> dict[str, float]:
    """Parse the ``scp_codes`` cell (a Python dict literal ``{'NORM': 100.0, ...}``); empty when missing."""
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    if not isinstance(value, str) or not value.strip():
        return {}
    parsed = ast.literal_eval(value)
    if not isinstance(parsed, Mapping):
        raise ValueError(f"scp_codes is not a dict literal: {value!r}")
    return {str(k).strip(): float(v) for k, v in parsed.items()}


def parse_statement_list(value: Any) -> list[str]:
    """Parse a 12SL ``statements`` cell: a list literal (``"['SR', 'STEMI']"``) or comma/space separated."""
    if isinstance(value, (list, tuple, set)):
        return [str(v).strip() for v in value]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    text = str(value).strip()
    if text.startswith(("[", "(", "{")):
        try:
            parsed = ast.literal_eval(text)
            return [str(v).strip() for v in parsed]
        except (ValueError, SyntaxError):
            text = text.strip("[](){}")
    return [t.strip(" '\"") for t in text.replace(",", " ").split() if t.strip(" '\"")]


def load_acute_mi_acronyms(sl_mapping_file: str | os.PathLike) -> set[str]:
    """12SL acronyms (and statement numbers as strings) of the acute MI statements."""
    df = pd.read_csv(sl_mapping_file, encoding="utf-8-sig")
    df.columns = [str(c).strip() for c in df.columns]
    if "StatementNumber" not in df.columns or "Acronym" not in df.columns:
        raise ValueError(f"{sl_mapping_file}: expected columns 'StatementNumber' and 'Acronym'")
    numbers = pd.to_numeric(df["StatementNumber"], errors="coerce")
    selected = df[numbers.isin(ACUTE_MI_STATEMENTS)]
    acronyms = {str(a).strip() for a in selected["Acronym"] if isinstance(a, str) and a.strip()}
    return acronyms | {str(n) for n in ACUTE_MI_STATEMENTS}


def load_sl_statements(sl_database_file: str | os.PathLike) -> dict[int, list[str]]:
    """Map ecg_id to its list of 12SL statement acronyms (PTB-XL+ ``12sl_statements.csv``)."""
    df = pd.read_csv(sl_database_file)
    if "ecg_id" not in df.columns or "statements" not in df.columns:
        raise ValueError(f"{sl_database_file}: expected columns 'ecg_id' and 'statements'")
    return {int(row.ecg_id): parse_statement_list(row.statements) for row in df.itertuples(index=False)}


def compute_labels(
    scp_codes: Mapping[str, float],
    superclasses: Sequence[str],
    sl_statements: Iterable[str] = (),
    acute_mi_statements: Iterable[str] = (),
) -> list[str]:
    """The Challenge labels of one record, in the canonical class order.

    ``scp_codes``: SCP code -> likelihood (%); every code with likelihood >= 0 counts.
    ``superclasses``: diagnostic superclasses of the codes. ``sl_statements``: the record's 12SL
    acronyms; a record with an acute-MI statement is "Acute MI", otherwise an MI superclass is "Old MI".
    """
    codes = {code for code, likelihood in scp_codes.items() if not (likelihood < 0)}
    acute = bool(set(sl_statements) & set(acute_mi_statements))
    labels: list[str] = []
    if "NORM" in superclasses:
        labels.append("NORM")
    if acute:
        labels.append("Acute MI")
    elif "MI" in superclasses:
        labels.append("Old MI")
    for superclass in ("STTC", "CD", "HYP"):
        if superclass in superclasses:
            labels.append(superclass)
    for label, label_codes in CODE_LABELS:
        if codes & label_codes:
            labels.append(label)
    return labels


def format_number(value: Any) -> str:
    """``56.0`` -> ``"56"``, ``63.5`` -> ``"63.5"``, NaN/None/empty -> ``"Unknown"``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "Unknown"
    if not math.isfinite(number):
        return "Unknown"
    return str(int(number)) if number == int(number) else str(number)


def format_sex(value: Any) -> str:
    """PTB-XL sex code: 0 -> Male, 1 -> Female, anything else -> Unknown."""
    try:
        code = float(value)
    except (TypeError, ValueError):
        return "Unknown"
    return {0.0: "Male", 1.0: "Female"}.get(code, "Unknown")


def format_recording_date(value: Any) -> str:
    """``'1984-11-09 09:17:34'`` -> ``'09:17:34 09/11/1984'`` (WFDB base time and date); '' when unusable."""
    if not isinstance(value, str):
        return ""
    parts = value.strip().split(" ")
    if len(parts) != 2:
        return ""
    date, time = parts
    ymd = date.split("-")
    if len(ymd) != 3 or not all(p.isdigit() for p in ymd) or time.count(":") != 2:
        return ""
    return f"{time} {ymd[2]}/{ymd[1]}/{ymd[0]}"


def build_header(input_header: str, row: Mapping[str, Any], labels: Sequence[str]) -> str:
    """New header text: record line (+ time/date), signal lines, kept comments, demographics, labels."""
    lines = [line.strip() for line in input_header.split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError("empty header")
    record_fields = lines[0].split(" ")[:4]
    timestamp = format_recording_date(row.get("recording_date"))
    record_line = " ".join(record_fields + ([timestamp] if timestamp else []))
    signal_lines = [line for line in lines[1:] if not line.startswith("#")]
    comment_lines = [
        line for line in lines[1:] if line.startswith("#") and not line.startswith(REPLACED_COMMENTS)
    ]
    new_comments = [
        f"# Age: {format_number(row.get('age'))}",
        f"# Sex: {format_sex(row.get('sex'))}",
        f"# Height: {format_number(row.get('height'))}",
        f"# Weight: {format_number(row.get('weight'))}",
        f"{substring_labels} {', '.join(labels)}",
    ]
    return "\n".join([record_line, *signal_lines, *comment_lines, *new_comments]) + "\n"


def ecg_id_of(record: str) -> int | None:
    """``records500/00000/00001_hr`` -> 1; None when the name does not start with a number."""
    stem = os.path.basename(record).split("_")[0]
    return int(stem) if stem.isdigit() else None


def run(args: argparse.Namespace) -> int:
    """Prepare every record; returns the number of records written."""
    if (args.sl_database_file is None) != (args.sl_mapping_file is None):
        raise ValueError("give both -sd (12sl_statements.csv) and -sm (12slv23ToSNOMED.csv), or neither")

    superclass_map = load_superclass_map(args.ptbxl_mapping_file)
    database = pd.read_csv(args.ptbxl_database_file, index_col="ecg_id")
    if args.sl_database_file is not None:
        sl_statements = load_sl_statements(args.sl_database_file)
        acute_mi = load_acute_mi_acronyms(args.sl_mapping_file)
    else:
        logger.info("no 12SL statements given: every MI is labelled 'Old MI'")
        sl_statements, acute_mi = {}, set()

    records = find_records(args.input_folder)
    if not records:
        raise FileNotFoundError(f"no WFDB records (*.hea) found in input folder {args.input_folder!r}")
    in_place = same_folder(args.input_folder, args.output_folder)

    written = 0
    for record in records:
        ecg_id = ecg_id_of(record)
        if ecg_id is None or ecg_id not in database.index:
            logger.warning("skipping %s: no row for it in %s", record, args.ptbxl_database_file)
            continue
        row = database.loc[ecg_id]
        scp_codes = parse_scp_codes(row["scp_codes"])
        superclasses = assign_superclasses(scp_codes, superclass_map)
        labels = compute_labels(scp_codes, superclasses, sl_statements.get(ecg_id, ()), acute_mi)

        paths = record_paths(args.input_folder, args.output_folder, record)
        if paths is None:
            continue
        record_name, input_dir, output_dir, input_header_file, output_header_file = paths
        input_header = load_text(input_header_file)
        save_text(output_header_file, build_header(input_header, row, labels))

        if not in_place:
            for signal_file in get_signal_files_from_header(input_header):
                if copy_inside(input_dir, output_dir, signal_file, record, "signal file") == "missing":
                    logger.warning("%s: signal file %s is missing", record, os.path.join(input_dir, signal_file))
        written += 1
        if args.verbose:
            print(f"{record}: {', '.join(labels) or '(no labels)'}")
    return written


if __name__ == "__main__":
    cli_args = get_parser().parse_args(sys.argv[1:])
    logging.basicConfig(level=logging.INFO if cli_args.verbose else logging.WARNING, format="%(message)s")
    try:
        run(cli_args)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"prepare_ptbxl_data.py: error: {error}")
