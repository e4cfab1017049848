"""Lead identity: the layout template and the printed lead labels combined into one decision.

Templates (:mod:`layout`) say which lead each column of each row shows on a standard page; the labels printed
at the start of each lead segment (:mod:`lead_labels`) say it on this page. Each template's lead boxes are
compared with the labels read in their rows: a confident label at the start of a box agrees or disagrees with
the template's lead there. The template cost (rows, durations, column evidence) plus :data:`LABEL_WEIGHT` times
the share of disagreeing (or placed in no box) minus agreeing labels picks the layout; then every box whose label
disagrees with confidence (:data:`RENAME_SCORE`) takes the label's lead where the labels are seen to be matched to
the right boxes (:data:`AGREEING_SHARE`), unless another box keeps that name: labels win (a rhythm strip labelled
V1 is V1, a column labelled V4R is not reported as V4). Every comparison is kept as evidence for the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .layout import LeadBox, Row, grid_rows, template_rows
from .lead_labels import LabelRead

#: Weight of the labels' vote in the layout cost (template costs differ by about 1 per missing or extra row):
#: a page whose every label disagrees with a template costs that template 1.0 more, every label agreeing 1.0 less.
LABEL_WEIGHT = 1.0
#: Label confidence from which a label counts in the layout decision.
VOTE_SCORE = 0.6
#: Label confidence from which a label renames the box it starts.
RENAME_SCORE = 0.65
#: Label confidence from which a label naming a lead the template lacks (V4R, V7-V9) renames its box (also where
#: the labels are not seen to be matched to the right boxes), and from which such a label offers the 15-lead
#: template: a word of a photographed page's cut header read as 'V9' at 0.73 renamed V1.
EXTRA_LEAD_SCORE = 0.85
#: Share of the voting labels that must agree with the chosen template before disagreeing ones rename their boxes
#: to other leads of the template (below it the labels may be matched to the wrong boxes: rows found at other x
#: extents, a row of text taken for a trace row); a label naming a lead the template lacks (V4R, V7-V9) renames its
#: box regardless, read with :data:`EXTRA_LEAD_SCORE` (but never on a page where no label agrees).
AGREEING_SHARE = 0.5
#: A page prints its labels at one height relative to their rows' baselines: a label that renames its box lies within
#: this many mm of the height of the labels that agree with the template (median). Measured: a page's true labels
#: within 0.2-7.5 mm of that height (a printer that draws each lead at its own offset), text of a photographed
#: page's header read as 'V9' 12 mm off it.
LABEL_HEIGHT_TOL_MM = 8.0
#: A label belongs to the box it starts: its centre lies from this far (mm) left of the box's start ...
LABEL_BEFORE_MM = 4.0
#: ... to this far (mm) right of it, or a third of the box, whichever is less.
LABEL_AFTER_MM = 15.0
#: A row of several columns traced for less than this fraction of the longest row has its columns placed on the
#: longest row's time span (a faint stretch lost the end of its trace).
SHORT_ROW_FRACTION = 0.9


@dataclass
class RowSpan:
    """A traced row's time axis as the boxes need it: x (pixels) of t = 0, pixels per second, traced duration (s)
    and baseline y (pixels)."""

    x_t0: float
    px_per_s: float
    duration_s: float
    base_y: float


@dataclass
class LabelEvidence:
    """One lead box compared with the label read at its start."""

    row: int
    column: int
    template_lead: str
    label: str | None
    score: float
    agrees: bool | None  # None: no label read there

    def to_dict(self) -> dict:
        return asdict(self)


#: a column spacing read from the labels is used when the time span it implies is within this share of a whole
#: number of ``SPAN_STEP_S`` and longer than the traced rows (a page cut at its right edge)
LABEL_SPAN_TOLERANCE = 0.03
SPAN_STEP_S = 0.5
#: ... and at most this many times the traced span (beyond it the labels are not columns of these rows)
LABEL_SPAN_MAX_RATIO = 1.4
#: label pairs whose spacing is a whole number of columns within this share of the template's column
PAIR_TOLERANCE = 0.25


def span_from_labels(ncol: int, spans: list[RowSpan], labels_per_row: list[list[LabelRead]]) -> float | None:
    """The rows' full time span (s) implied by the spacing of the printed labels, for a template of ``ncol``
    columns: labels of one row that are a whole number of columns apart give the column width in pixels, and
    with the row's px per second the column duration. Returns the span when at least two label pairs agree and
    it extends the traced span (a page cut on the right: ecg00017 is traced for 9.2 s, its labels 2.5 s apart),
    else None."""
    if ncol < 2 or not spans:
        return None
    traced = max(s.duration_s for s in spans)
    if traced <= 0:
        return None
    periods_s = []
    for span, labels in zip(spans, labels_per_row):
        xs = sorted(lab.cx for lab in labels)
        guess_px = traced / ncol * span.px_per_s
        for a, b in zip(xs, xs[1:]):
            k = round((b - a) / guess_px)
            if k >= 1 and abs((b - a) / k / guess_px - 1.0) <= PAIR_TOLERANCE:
                periods_s.append((b - a) / k / span.px_per_s)
    if len(periods_s) < 2:
        return None
    full = float(np.median(periods_s)) * ncol
    snapped = round(full / SPAN_STEP_S) * SPAN_STEP_S
    if snapped <= traced or abs(full / snapped - 1.0) > LABEL_SPAN_TOLERANCE or snapped > LABEL_SPAN_MAX_RATIO * traced:
        return None
    return snapped


def template_boxes(
    name: str, rows: list[Row], spans: list[RowSpan], labels_per_row: list[list[LabelRead]] | None = None
) -> tuple[list[LeadBox], list[str]]:
    """Lead boxes of template ``name`` on the found ``rows`` (their ``spans``), and warnings for rows the template
    has no lead for. The layout's time span is the longest row (shorter rows are columns of it), or the span the
    labels' column spacing implies when that is longer (:func:`span_from_labels`); a one-lead row keeps its own
    end (past it the tracing is lost); a row of several columns traced longer than the span most rows share takes
    that span."""
    trows = template_rows(name)
    warnings: list[str] = []
    full_d = max((s.duration_s for s in spans), default=10.0)
    ncols = max((len(r) for r in trows), default=1)
    from_labels = span_from_labels(ncols, spans, labels_per_row or [])
    if from_labels is not None:
        warnings.append(
            f"rows traced for {full_d:.2f} s; the labels' column spacing gives {from_labels:g} s "
            "(the page is cut on the right)"
        )
        full_d = from_labels
    n_grid_rows = len(grid_rows(name))
    # the rows of a page print on one time span: a row of several columns traced past the span most rows share (into
    # a shadow or the page's edge) takes that span, or its columns are stretched off their boundaries
    common_d = _shared_span(spans[: len(rows)])
    boxes: list[LeadBox] = []
    for i, span in enumerate(spans[: len(rows)]):
        if i >= len(trows):
            warnings.append(f"row {i} has no lead in layout {name}; ignored")
            continue
        leads = trows[i]
        ncol = len(leads)
        short = span.duration_s < SHORT_ROW_FRACTION * full_d
        d = full_d if span.duration_s <= 0 or ((short or from_labels is not None) and ncol > 1) else span.duration_s
        if ncol > 1 and from_labels is None and common_d is not None and d > common_d:
            d = common_d
        for cidx, lead in enumerate(leads):
            t0, t1 = cidx * d / ncol, (cidx + 1) * d / ncol
            boxes.append(
                LeadBox(
                    lead,
                    i,
                    cidx,
                    span.x_t0 + t0 * span.px_per_s,
                    span.x_t0 + t1 * span.px_per_s,
                    t0,
                    t1,
                    span.base_y,
                    rhythm=i >= n_grid_rows,
                )
            )
    return boxes, warnings


def _shared_span(spans: list[RowSpan]) -> float | None:
    """The traced duration (s) that more rows share than any other, when at least two do; else None."""
    counts: dict[float, int] = {}
    for s in spans:
        if s.duration_s > 0:
            key = round(float(s.duration_s), 2)
            counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] < 2 or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
        return None
    return ranked[0][0]


def unique_per_row(labels_per_row: list[list[LabelRead]]) -> list[list[LabelRead]]:
    """Each row's labels without names read more than once in that row: a lead is named once per printed row, and
    a name repeated along a row is the trace's own pattern read as text (a rendered rhythm strip: 'aVL' read four
    times at 0.81-0.95 along its trace)."""
    out = []
    for row in labels_per_row:
        counts: dict[str, int] = {}
        for lab in row:
            counts[lab.name.upper()] = counts.get(lab.name.upper(), 0) + 1
        out.append([lab for lab in row if counts[lab.name.upper()] == 1])
    return out


def label_of_box(box: LeadBox, row_labels: list[LabelRead], px_per_mm_x: float) -> LabelRead | None:
    """The most confident label of the box's row whose centre lies at the box's start (see
    :data:`LABEL_BEFORE_MM`, :data:`LABEL_AFTER_MM`), or None."""
    lo = box.x0 - LABEL_BEFORE_MM * px_per_mm_x
    hi = box.x0 + min(LABEL_AFTER_MM * px_per_mm_x, (box.x1 - box.x0) / 3.0)
    near = [lab for lab in row_labels if lo <= lab.cx <= hi]
    return max(near, key=lambda lab: lab.score) if near else None


def labels_at_boxes(
    boxes: list[LeadBox], labels_per_row: list[list[LabelRead]], px_per_mm_x: float
) -> list[LabelRead | None]:
    """The label at each box's start (:func:`label_of_box`), None where there is none."""
    return [label_of_box(b, labels_per_row[b.row], px_per_mm_x) if b.row < len(labels_per_row) else None for b in boxes]


def compare(
    boxes: list[LeadBox],
    labels_per_row: list[list[LabelRead]],
    px_per_mm_x: float,
    at_boxes: list[LabelRead | None] | None = None,
) -> list[LabelEvidence]:
    """Each box against the label at its start (``at_boxes``: :func:`labels_at_boxes`, found here when None)."""
    if at_boxes is None:
        at_boxes = labels_at_boxes(boxes, labels_per_row, px_per_mm_x)
    out = []
    for b, lab in zip(boxes, at_boxes):
        if lab is None:
            out.append(LabelEvidence(b.row, b.column, b.name, None, 0.0, None))
        else:
            out.append(
                LabelEvidence(
                    b.row, b.column, b.name, lab.name, round(float(lab.score), 3), lab.name.upper() == b.name.upper()
                )
            )
    return out


def label_cost(evidence: list[LabelEvidence], unplaced: int = 0) -> float:
    """:data:`LABEL_WEIGHT` times (disagreeing + unplaced - agreeing) / (compared + unplaced), over labels of at
    least :data:`VOTE_SCORE`; ``unplaced``: such labels in the rows that start no box of the template (a template
    that places one label and agrees with it must not beat one that places six and agrees with five: a 15-lead
    page's 2 s columns against 3x4's 2.5 s ones). 0 when no label is that confident."""
    votes = [e for e in evidence if e.agrees is not None and e.score >= VOTE_SCORE]
    if not votes and not unplaced:
        return 0.0
    against = sum(not e.agrees for e in votes) + unplaced
    return LABEL_WEIGHT * (against - sum(bool(e.agrees) for e in votes)) / (len(votes) + unplaced)


def unplaced_labels(
    boxes: list[LeadBox],
    labels_per_row: list[list[LabelRead]],
    px_per_mm_x: float,
    at_boxes: list[LabelRead | None] | None = None,
) -> int:
    """Labels of at least :data:`VOTE_SCORE` in the rows that start none of ``boxes`` (``at_boxes``:
    :func:`labels_at_boxes`, found here when None)."""
    if at_boxes is None:
        at_boxes = labels_at_boxes(boxes, labels_per_row, px_per_mm_x)
    placed = {id(lab) for lab in at_boxes if lab is not None}
    return sum(lab.score >= VOTE_SCORE and id(lab) not in placed for row in labels_per_row for lab in row)


def _disagrees(e: LabelEvidence) -> bool:
    """The box's label names another lead with the confidence to rename it (:data:`RENAME_SCORE`)."""
    return e.agrees is False and e.score >= RENAME_SCORE and e.label is not None


def choose_layout(
    costs: dict[str, float],
    rows: list[Row],
    spans: list[RowSpan],
    labels_per_row: list[list[LabelRead]],
    px_per_mm_x: float,
    forced: str | None = None,
) -> tuple[str, float, dict[str, float], list[LeadBox], list[str], list[LabelEvidence]]:
    """The layout from the template ``costs`` (:func:`layout.fit_layout`) and the labels: returns (name, its
    template cost, combined costs, boxes with the labels' names, warnings, evidence). ``forced``: a template name
    the caller chose (its boxes still take confident labels' names)."""
    labels_per_row = unique_per_row(labels_per_row)
    combined: dict[str, float] = {}
    per: dict[str, tuple[list[LeadBox], list[str], list[LabelEvidence], list[LabelRead | None]]] = {}
    for name, cost in costs.items():
        boxes, warns = template_boxes(name, rows, spans, labels_per_row)
        at_boxes = labels_at_boxes(boxes, labels_per_row, px_per_mm_x)
        ev = compare(boxes, labels_per_row, px_per_mm_x, at_boxes)
        per[name] = (boxes, warns, ev, at_boxes)
        unplaced = unplaced_labels(boxes, labels_per_row, px_per_mm_x, at_boxes)
        combined[name] = round(cost + label_cost(ev, unplaced), 4)
    name = forced if forced in per else min(combined, key=combined.get)
    boxes, warns, ev, at_boxes = per[name]
    warnings = list(warns)
    template_leads = {lead.upper() for row in template_rows(name) for lead in row}
    # the labels are matched to the right boxes when most of them agree with the template; a name another box's
    # label confirms is never given twice (a label of the neighbouring row or column matched to this box)
    matched = labels_matched(ev)
    # (rhythm strips repeat leads of the grid by design: names are unique among the grid's boxes and among the strips)
    confirmed = {(b.rhythm, b.name.upper()) for b, e in zip(boxes, ev) if e.agrees}
    # ... nor the name of another box that keeps it: one whose own label does not say otherwise with confidence (a
    # misread label, 'V5' read as 'V9' on a 15-lead page, would leave that lead out and print V9 twice)
    kept = {(b.rhythm, b.name.upper()) for b, e in zip(boxes, ev) if not _disagrees(e)}
    # ... nor the name of a label away from the height at which the agreeing labels stand (with no label agreeing,
    # nothing shows where this page prints its labels: no box is renamed)
    heights = {id(b): None if lab is None else lab.cy - b.baseline_y for b, lab in zip(boxes, at_boxes)}
    agreeing = [heights[id(b)] for b, e in zip(boxes, ev) if e.agrees and heights[id(b)] is not None]
    usual = float(np.median(agreeing)) if agreeing else None
    renamed = []
    for b, e in zip(boxes, ev):
        if e.agrees:
            b.named_by_label = True
        elif (
            _disagrees(e)
            and e.label is not None
            and (e.score >= EXTRA_LEAD_SCORE if e.label.upper() not in template_leads else matched)
            and (b.rhythm, e.label.upper()) not in confirmed
            and (b.rhythm, e.label.upper()) not in kept
            and usual is not None
            and abs(heights[id(b)] - usual) <= LABEL_HEIGHT_TOL_MM * px_per_mm_x
        ):
            renamed.append(f"{b.name}->{e.label}")
            b.name = e.label
            b.named_by_label = True
            confirmed.add((b.rhythm, e.label.upper()))
    if renamed:
        warnings.append(
            f"lead names from the printed labels where they differ from layout {name}: {', '.join(renamed)}"
        )
    return name, costs[name], combined, boxes, warnings, ev


# --- a part of a page ---------------------------------------------------------------------------------------------

#: Printed width (mm) of a standard page's leads: 10 s at 25 mm/s (5 s at 50 mm/s). A template's column is this over
#: its columns: 62.5 mm for 3x4, 125 mm for 6x2.
PRINTED_SPAN_MM = 250.0
#: A label starts this far (mm) right of the start of the column it names. Measured (label's left edge minus the
#: column boundary of a page read right): 0-0.6 mm on the Challenge generator's pages, 0.75 mm on our renderer's,
#: 1.4 and 2.8 mm on two real scans; where separator ticks show, they move the columns onto themselves afterwards
#: (:func:`~ecgdigitize.stages.time_shift_from_ticks`).
LABEL_LEAD_IN_MM = 0.5
#: An image whose rows are traced for less than this share of :data:`PRINTED_SPAN_MM`, or whose labels disagree with
#: the whole-page template, may show part of a page ...
PART_SPAN_SHARE = 0.9
#: ... and is read as one when at least this many labels of :data:`VOTE_SCORE` place it, more than agree with the
#: whole-page reading: one row offset for them (the template's row of each label minus the image row it stands in)
#: and column starts that agree within :data:`PART_TOLERANCE` of a column ...
PART_MIN_LABELS = 2
#: ... and at least this share of the confident labels naming the template's leads (a misread label, 'aVF' read as
#: 'aVL', is outvoted; labels below the grid, a rhythm strip's, take no part).
PART_LABEL_SHARE = 2.0 / 3.0
#: Column starts of one placement agree within this fraction of a column (a label's own lead-in varies by 3 mm).
PART_TOLERANCE = 0.1
#: A lead cut by the image's edge is read where at least this much of it (s) lies on the image.
PART_MIN_BOX_S = 0.5


@dataclass
class PagePart:
    """A template's lead boxes on an image that shows part of its page (a photograph or crop of a region): each
    image row is one of the template's grid rows (``row_offset`` rows further down the page), and its time axis
    starts where the page's does, left of the image when the image is cut (``origins``: image row -> x in pixels of
    the page's t = 0). ``boxes`` hold the part of each lead on the image, with the page's times; ``absent``: the
    template's grid leads that are not on the image; ``placed_by``: the labels that placed the columns;
    ``unlabelled``: boxes whose start, and the label printed there, lie on the image with no label read there."""

    name: str
    row_offset: int
    origins: dict[int, float]
    boxes: list[LeadBox]
    absent: list[str]
    placed_by: list[str]
    unlabelled: int = 0

    @property
    def support(self) -> int:
        """Labels that place the part less the places where the part expects a label and none was read (a 6x2
        page's 'V1', 'V2', 'V3' place a 3x4 grid too, which then expects 'V4', 'V5', 'V6' a column further on)."""
        return len(self.placed_by) - self.unlabelled


def place_page_part(
    name: str, rows: list[Row], spans: list[RowSpan], labels_per_row: list[list[LabelRead]], px_per_mm_x: float
) -> PagePart | None:
    """The boxes of template ``name``'s grid (not its rhythm strips) placed by the printed labels on an image that
    shows part of the page; None when too few confident labels place it consistently (:data:`PART_MIN_LABELS`,
    :data:`PART_LABEL_SHARE`: one row offset, column starts within :data:`PART_TOLERANCE` of a column) or when every
    lead of the grid is on the image (a whole page, which the templates read). ``labels_per_row`` are the image
    rows' labels (:func:`unique_per_row` applied)."""
    grid = grid_rows(name)
    ncol = len(grid[0]) if grid else 0
    if ncol < 2 or not spans:
        return None
    where = {lead.upper(): (r, c) for r, leads in enumerate(grid) for c, lead in enumerate(leads)}
    col_px = PRINTED_SPAN_MM / ncol * px_per_mm_x
    votes: list[tuple[int, int, float, str]] = []  # (image row, row offset, x of the page's t = 0, label)
    for i, labels in enumerate(labels_per_row[: len(spans)]):
        for lab in labels:
            if lab.score >= VOTE_SCORE and lab.name.upper() in where:
                r, c = where[lab.name.upper()]
                votes.append((i, r - i, lab.x0 - LABEL_LEAD_IN_MM * px_per_mm_x - c * col_px, lab.name))
    if len(votes) < PART_MIN_LABELS:
        return None
    offsets = [v[1] for v in votes]
    offset = max(set(offsets), key=lambda o: (offsets.count(o), -abs(o)))
    counted = [v for v in votes if v[0] + offset < len(grid)]  # (a rhythm strip's label stands below the grid)
    at_offset = [v for v in counted if v[1] == offset]
    if not at_offset:
        return None
    origin = float(np.median([v[2] for v in at_offset]))
    placing = [v for v in at_offset if abs(v[2] - origin) <= PART_TOLERANCE * col_px]
    if len(placing) < PART_MIN_LABELS or len(placing) < PART_LABEL_SHARE * len(counted):
        return None
    origins: dict[int, float] = {}
    boxes: list[LeadBox] = []
    unlabelled = 0
    for i, (row, span) in enumerate(zip(rows, spans)):
        if not 0 <= i + offset < len(grid) or span.px_per_s <= 0:
            continue
        own = [v[2] for v in placing if v[0] == i]
        x_t0 = float(np.median(own)) if own else origin
        label_xs = np.array([lab.cx for lab in labels_per_row[i]] if i < len(labels_per_row) else [])
        visible = 0
        for c, lead in enumerate(grid[i + offset]):
            start = x_t0 + c * col_px
            lo, hi = max(start, float(row.x0)), min(x_t0 + (c + 1) * col_px, float(row.x1))
            if hi - lo < PART_MIN_BOX_S * span.px_per_s:
                continue
            if lo == start and start + LABEL_AFTER_MM * px_per_mm_x <= row.x1:
                # the column starts on the image, and its label would stand there: is a label read there?
                lo_x, hi_x = start - LABEL_BEFORE_MM * px_per_mm_x, start + LABEL_AFTER_MM * px_per_mm_x
                unlabelled += not bool(np.any((label_xs >= lo_x) & (label_xs <= hi_x)))
            t0, t1 = (lo - x_t0) / span.px_per_s, (hi - x_t0) / span.px_per_s
            # columns numbered as they show on the image: a lead cut by the image's left edge starts no column
            boxes.append(LeadBox(lead, i, visible, lo, hi, t0, t1, span.base_y))
            visible += 1
        if visible:
            origins[i] = x_t0
    shown = {b.name.upper() for b in boxes}
    absent = [lead for leads in grid for lead in leads if lead.upper() not in shown]
    if not boxes or not absent:
        return None
    return PagePart(name, offset, origins, boxes, absent, [v[3] for v in placing], unlabelled)


def labels_matched(evidence: list[LabelEvidence]) -> bool:
    """Do the confident labels (:data:`VOTE_SCORE`) agree with their boxes (at least :data:`AGREEING_SHARE` of
    them)? False also when no label is confident."""
    votes = [e for e in evidence if e.agrees is not None and e.score >= VOTE_SCORE]
    return bool(votes) and sum(bool(e.agrees) for e in votes) >= AGREEING_SHARE * len(votes)
