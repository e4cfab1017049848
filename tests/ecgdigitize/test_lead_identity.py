"""Lead identity: templates and printed labels combined; labels win where they are read with confidence."""

from __future__ import annotations

import pytest

from ecgdigitize.layout import Row
from ecgdigitize.lead_identity import RowSpan, choose_layout, compare, template_boxes
from ecgdigitize.lead_labels import LabelRead

PPM = 8.0  # px/mm
PPS = 25.0 * PPM  # px/s


def _rows(n: int) -> tuple[list[Row], list[RowSpan]]:
    rows = [Row(100.0 + 200.0 * i, int(200.0 * i), int(200.0 * i + 200), 100, 2100) for i in range(n)]
    spans = [RowSpan(100.0, PPS, 10.0, r.baseline_y) for r in rows]
    return rows, spans


def _label(name: str, row: int, column: int, ncol: int, score: float = 0.95) -> LabelRead:
    x = 100.0 + column * 10.0 * PPS / ncol + 2.0 * PPM
    y = 100.0 + 200.0 * row + 4.0 * PPM  # below the baseline
    return LabelRead(name, x, y, x + 4 * PPM, y + 3 * PPM, score)


def _labels_3x4_3() -> list[list[LabelRead]]:
    grid = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]
    per_row = [[_label(n, r, c, 4) for c, n in enumerate(row)] for r, row in enumerate(grid)]
    return per_row + [[_label(n, 3 + k, 0, 1)] for k, n in enumerate(["V1", "II", "V5"])]


def test_labels_overrule_a_template_that_fits_the_rows_slightly_better():
    """Six rows: the rows alone slightly prefer 6x2; the labels say 3x4 with rhythm strips V1, II, V5."""
    rows, spans = _rows(6)
    costs = {"6x2": 0.50, "3x4+3": 0.60, "3x4+1": 2.6, "3x4": 3.6, "12x1": 6.6}
    name, _, combined, boxes, _, evidence = choose_layout(costs, rows, spans, _labels_3x4_3(), PPM)
    assert name == "3x4+3" and combined["3x4+3"] < combined["6x2"]
    assert [b.name for b in boxes if b.rhythm] == ["V1", "II", "V5"]
    assert sum(bool(e.agrees) for e in evidence) == 13  # the template put II, V1 on the first two strips
    # without labels the rows decide
    name, *_ = choose_layout(costs, rows, spans, [[] for _ in rows], PPM)
    assert name == "6x2"


def test_a_confident_label_renames_its_box():
    """3x4+1 whose rhythm strip is V5 (the template says II) and whose fourth column of row 0 is V4R."""
    rows, spans = _rows(4)
    per_row = _labels_3x4_3()[:3] + [[_label("V5", 3, 0, 1)]]
    per_row[0][3] = _label("V4R", 0, 3, 4)
    costs = {"3x4+1": 0.1, "3x4+3": 2.1, "6x2": 2.2, "3x4": 1.1, "12x1": 8.1}
    name, _, _, boxes, warnings, _ = choose_layout(costs, rows, spans, per_row, PPM)
    assert name == "3x4+1"
    assert [b.name for b in boxes if b.rhythm] == ["V5"]
    assert any(b.name == "V4R" for b in boxes) and not any(b.name == "V4" for b in boxes)
    assert any("V4->V4R" in w for w in warnings)


def test_labels_matched_to_the_wrong_boxes_rename_nothing():
    """Labels shifted by one column (most disagree): evidence, but no box renamed to another template lead."""
    rows, spans = _rows(4)
    per_row = [
        [_label(lab.name, r, c + 1, 4) for c, lab in enumerate(row[:3])] for r, row in enumerate(_labels_3x4_3()[:3])
    ]
    costs = {"3x4+1": 0.1, "3x4+3": 2.1, "6x2": 2.2, "3x4": 1.1, "12x1": 8.1}
    name, _, _, boxes, _, evidence = choose_layout(costs, rows, spans, per_row + [[]], PPM)
    assert name == "3x4+1"
    assert sum(e.agrees is False for e in evidence) >= 6
    assert [b.name for b in boxes[:4]] == ["I", "aVR", "V1", "V4"]


@pytest.mark.parametrize("low", [0.3])
def test_unsure_labels_do_not_vote(low):
    rows, spans = _rows(6)
    per_row = [[LabelRead(lab.name, lab.x0, lab.y0, lab.x1, lab.y1, low) for lab in row] for row in _labels_3x4_3()]
    costs = {"6x2": 0.50, "3x4+3": 0.60, "3x4+1": 2.6, "3x4": 3.6, "12x1": 6.6}
    name, *_ = choose_layout(costs, rows, spans, per_row, PPM)
    assert name == "6x2"


def test_rendered_page_rhythm_strip_named_by_its_label(signal):
    """A 3x4+1 page whose rhythm strip is V5 (the template's default is II): the label names it."""
    page_mod = pytest.importorskip("ecgrender.page")
    from ecgdigitize.pipeline import digitize_page

    page = page_mod.render_page(
        signal, 500, page_mod.STANDARD_LEADS, page_mod.PageSpec(dpi=150, layout="3x4+1", rhythm_leads=("V5",)), rng=0
    )
    r = digitize_page(page.image)
    assert r.layout.name == "3x4+1"
    assert [b.name for b in r.layout.boxes if b.rhythm] == ["V5"]
    assert sum(bool(e["agrees"]) for e in r.layout.label_evidence) >= 10


def test_a_name_repeated_along_a_row_is_no_label():
    """The trace's own pattern read as 'aVL' four times along the rhythm strip: ignored, the strip stays II."""
    rows, spans = _rows(4)
    per_row = _labels_3x4_3()[:3] + [[_label("aVL", 3, c, 4, 0.97) for c in range(4)] + [_label("II", 3, 0, 1, 0.9)]]
    costs = {"3x4+1": 0.1, "3x4+3": 2.1, "6x2": 2.2, "3x4": 1.1, "12x1": 8.1}
    name, _, _, boxes, _, _ = choose_layout(costs, rows, spans, per_row, PPM)
    assert name == "3x4+1" and [b.name for b in boxes if b.rhythm] == ["II"]


def test_labels_spacing_restores_the_columns_of_a_page_cut_on_the_right():
    """Rows traced for 9 s (the page is cut), labels 2.5 s apart: columns of 2.5 s, not 9/4 s; with one label per
    row (no spacing to read) the traced span stays."""
    from ecgdigitize.lead_identity import span_from_labels

    rows, spans = _rows(3)
    for s in spans:
        s.duration_s = 9.0
    labels = _labels_3x4_3()[:3]
    assert span_from_labels(4, spans, labels) == 10.0
    name, _, _, boxes, warnings, _ = choose_layout({"3x4": 0.3, "6x2": 2.0}, rows, spans, labels, PPM)
    assert name == "3x4"
    assert [(b.t0, b.t1) for b in boxes if b.row == 0] == [(0.0, 2.5), (2.5, 5.0), (5.0, 7.5), (7.5, 10.0)]
    assert boxes[1].x0 == pytest.approx(100.0 + 2.5 * PPS)
    assert any("cut on the right" in w for w in warnings)
    lone = [[row[0]] for row in labels]
    assert span_from_labels(4, spans, lone) is None
    _, _, _, boxes, _, _ = choose_layout({"3x4": 0.3}, rows, spans, lone, PPM)
    assert boxes[3].t1 == pytest.approx(9.0)
    # labels spaced like 2.3 s columns (9.2 s: no whole span near it) are not trusted
    odd = [
        [
            LabelRead(lab.name, 100.0 + c * 2.3 * PPS, lab.y0, 100.0 + c * 2.3 * PPS + 30, lab.y1, 0.95)
            for c, lab in enumerate(row)
        ]
        for row in labels
    ]
    assert span_from_labels(4, spans, odd) is None


def test_fifteen_lead_page_with_its_extra_labels():
    """3 rows of 5 columns (the 3x4 grid plus V4R, V8, V9): the template exists, is offered only on pages whose
    extra leads' labels are read, and the labels then pick it over 3x4."""
    from ecgdigitize.layout import FIFTEEN_LEAD_EXTRAS, TEMPLATES, fit_layout, template_rows

    assert template_rows("3x5") == [
        ["I", "aVR", "V1", "V4", "V4R"],
        ["II", "aVL", "V2", "V5", "V8"],
        ["III", "aVF", "V3", "V6", "V9"],
    ]
    assert "3x5" not in TEMPLATES and set(FIFTEEN_LEAD_EXTRAS) == {"V4R", "V8", "V9"}
    rows, spans = _rows(3)
    no_boundaries = [[0.0, 0.0, 0.0]] * 3  # label ink at 1/4, 1/2, 3/4 of the rows: none (5 columns)
    _, _, plain = fit_layout(rows, [10.0] * 3, no_boundaries)
    assert "3x5" not in plain
    _, _, costs = fit_layout(rows, [10.0] * 3, no_boundaries, templates=TEMPLATES + ("3x5",))
    assert costs["3x5"] < costs["3x4"]
    grid = template_rows("3x5")
    labels = [[_label(n, r, c, 5) for c, n in enumerate(row)] for r, row in enumerate(grid)]
    name, _, _, boxes, _, evidence = choose_layout(costs, rows, spans, labels, PPM)
    assert name == "3x5" and all(e.agrees for e in evidence)
    assert [(b.name, b.t0, b.t1) for b in boxes if b.row == 0][-1] == ("V4R", 8.0, 10.0)


def test_a_misread_label_never_gives_a_lead_twice():
    """A 15-lead page where V5's label is misread as 'V9' (the serif '5' at 2.5 mm) and V9's own label is not read:
    V5 keeps its name, since the V9 box holds V9 and nothing says otherwise. When the V9 box's label does say
    otherwise (the labels describe another order), the rename goes through."""
    from ecgdigitize.layout import template_rows

    rows, spans = _rows(3)
    grid = template_rows("3x5")
    labels = [[_label(n, r, c, 5) for c, n in enumerate(row)] for r, row in enumerate(grid)]
    labels[1][3] = _label("V9", 1, 3, 5, 0.8)
    del labels[2][4]
    costs = {"3x5": 0.3, "3x4": 1.0}
    name, _, _, boxes, warnings, _ = choose_layout(costs, rows, spans, labels, PPM)
    assert name == "3x5"
    assert [b.name for b in boxes].count("V9") == 1 and "V5" in [b.name for b in boxes]
    assert not any("V5->V9" in w for w in warnings)
    labels[2].append(_label("V5", 2, 4, 5, 0.9))  # the boxes' labels are swapped on the page: both renamed
    _, _, _, boxes, warnings, _ = choose_layout(costs, rows, spans, labels, PPM)
    assert [b.name for b in boxes if b.column == 4 and b.row == 2] == ["V5"]
    assert [b.name for b in boxes if b.column == 3 and b.row == 1] == ["V9"]


def test_a_lead_the_template_lacks_needs_a_sure_label():
    """Page text over the first row read as 'V9' at 0.73 (a photographed page's cut header) matched to V1's box:
    V1 stays V1, and the 15-lead template is not offered; read at 0.9 it renames the box."""
    from ecgdigitize.lead_identity import EXTRA_LEAD_SCORE

    rows, spans = _rows(4)
    costs = {"3x4+1": 0.1, "3x4+3": 2.1, "6x2": 2.2, "3x4": 1.1, "12x1": 8.1}
    for score, renamed in ((0.73, False), (0.9, True)):
        per_row = _labels_3x4_3()[:3] + [[_label("II", 3, 0, 1)]]
        per_row[0][2] = _label("V9", 0, 2, 4, score)
        _, _, _, boxes, _, _ = choose_layout(costs, rows, spans, per_row, PPM)
        assert (boxes[2].name == "V9") is renamed and (score >= EXTRA_LEAD_SCORE) is renamed


def test_labels_no_box_of_a_template_starts_count_against_it():
    """A 15-lead page (2 s columns) with labels on its first two columns: 3x4's 2.5 s columns start only at the
    first column's labels, which agree; 3x5's start at all six. The labels left out of 3x4's boxes count against it
    (by share of agreement alone both would agree fully), so 3x5 wins clearly although the rows barely prefer it."""
    from ecgdigitize.layout import template_rows
    from ecgdigitize.lead_identity import label_cost, unplaced_labels

    rows, spans = _rows(3)
    grid = template_rows("3x5")
    labels = [[_label(n, r, c, 5) for c, n in enumerate(row[:2])] for r, row in enumerate(grid)]
    name, _, combined, *_ = choose_layout({"3x5": 0.33, "3x4": 0.37}, rows, spans, labels, PPM)
    assert name == "3x5" and combined["3x4"] - combined["3x5"] > 1.0
    boxes_3x4, _ = template_boxes("3x4", rows, spans, labels)
    assert unplaced_labels(boxes_3x4, labels, PPM) == 3  # the second column's labels start no 3x4 box
    ev = compare(boxes_3x4, labels, PPM)
    assert label_cost(ev) == -1.0 and label_cost(ev, 3) == pytest.approx(0.0)  # 3 agree, 3 unplaced


def test_a_label_away_from_where_the_page_prints_its_labels_renames_nothing():
    """Header text 14 mm above the first row read as 'V9' at V1's start: the agreeing labels stand 4 mm below their
    baselines, so V1 stays V1; with no label agreeing (nothing shows where labels are printed) nothing is renamed."""
    rows, spans = _rows(4)
    costs = {"3x4+1": 0.1, "3x4+3": 2.1, "6x2": 2.2, "3x4": 1.1, "12x1": 8.1}
    per_row = _labels_3x4_3()[:3] + [[_label("II", 3, 0, 1)]]
    lab = per_row[0][2]
    per_row[0][2] = LabelRead("V9", lab.x0, lab.y0 - 18 * PPM, lab.x1, lab.y1 - 18 * PPM, 0.95)
    _, _, _, boxes, _, _ = choose_layout(costs, rows, spans, per_row, PPM)
    assert boxes[2].name == "V1"
    per_row[0][2] = LabelRead("V9", lab.x0, lab.y0, lab.x1, lab.y1, 0.95)  # at the labels' height: renamed
    _, _, _, boxes, _, _ = choose_layout(costs, rows, spans, per_row, PPM)
    assert boxes[2].name == "V9"
    alone = [[], [], [], []]
    alone[0] = [per_row[0][2]]
    _, _, _, boxes, _, _ = choose_layout(costs, rows, spans, alone, PPM)
    assert boxes[2].name == "V1"


def test_a_row_traced_past_the_others_keeps_their_span():
    """A wrinkled page: the second row was traced 0.3 s past the others' common end into a shadow (10.5 s after
    snapping): its columns keep the other rows' 2.5 s, not 10.5 / 4 s; the rhythm strip keeps its own end."""
    rows, spans = _rows(4)
    spans[1].duration_s = 10.5
    spans[3].duration_s = 9.5
    boxes, _ = template_boxes("3x4+1", rows, spans, [[] for _ in rows])
    assert [(b.t0, b.t1) for b in boxes if b.row == 1] == [(0.0, 2.5), (2.5, 5.0), (5.0, 7.5), (7.5, 10.0)]
    assert [(b.t0, b.t1) for b in boxes if b.rhythm] == [(0.0, 9.5)]
    # rows that lost their ends to different lengths share no span: the longest keeps its own (a photographed page
    # traced for 10, 9.5 and 8 s and a 5.5 s rhythm strip)
    for i, d in enumerate((10.0, 9.5, 8.0, 5.5)):
        spans[i].duration_s = d
    boxes, _ = template_boxes("3x4+1", rows, spans, [[] for _ in rows])
    assert [(b.t0, b.t1) for b in boxes if b.row == 0][-1] == (7.5, 10.0)
