"""The printed lead labels leave the trace map before the rows are traced (``stages.erase_label_glyphs``)."""

from __future__ import annotations

import cv2
import numpy as np

from ecgdigitize.lead_labels import LabelRead
from ecgdigitize.stages import GLYPH_STRIP_MIN_SCORE, erase_label_glyphs


def _page_with_label_touching_the_trace() -> tuple[np.ndarray, LabelRead, dict[str, np.ndarray]]:
    """A (200, 300) trace map: a flat trace at y 60 whose QRS reaches down to y 125 at x 150, through the box of a
    'V1' printed below the baseline (x 140-175, y 85-106, as the Challenge generator prints it); the 'V' crosses the
    QRS, the '1' stands apart. Returns the map, the label and the masks of its parts."""
    parts = {name: np.zeros((200, 300), np.uint8) for name in ("flat", "qrs", "v", "one")}
    cv2.line(parts["flat"], (0, 60), (299, 60), 1, 2)
    cv2.line(parts["qrs"], (150, 20), (150, 125), 1, 2)
    cv2.line(parts["v"], (140, 85), (148, 106), 1, 2)
    cv2.line(parts["v"], (148, 106), (156, 85), 1, 2)
    cv2.line(parts["one"], (171, 85), (171, 106), 1, 2)
    prob = np.zeros((200, 300), np.float32)
    for m in parts.values():
        prob[m > 0] = 1.0
    label = LabelRead("V1", 140.0, 85.0, 175.0, 106.0, 0.95)
    return prob, label, {k: v > 0 for k, v in parts.items()}


def test_a_surely_read_label_loses_the_glyph_that_touches_the_trace():
    prob, label, parts = _page_with_label_touching_the_trace()
    out = erase_label_glyphs(prob, [label])
    trace = parts["flat"] | parts["qrs"]
    assert np.all(out[trace] == 1.0)  # the trace keeps its flat stretch and its whole QRS
    glyphs = (parts["v"] | parts["one"]) & ~cv2.dilate(trace.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert glyphs.sum() > 40 and np.all(out[glyphs] == 0.0)  # both glyphs go, the 'V' joined to the QRS too


def test_a_label_read_unsurely_loses_only_the_glyphs_apart_from_the_trace():
    prob, label, parts = _page_with_label_touching_the_trace()
    label.score = GLYPH_STRIP_MIN_SCORE - 0.25  # perhaps a QRS read as a label: the ink joined to it stays
    out = erase_label_glyphs(prob, [label])
    assert np.all(out[parts["one"]] == 0.0)
    assert np.all(out[parts["v"]] == 1.0)
    assert np.all(out[parts["flat"] | parts["qrs"]] == 1.0)


def _lattice(skip: set[str], unsure: set[str] = frozenset(), extra: tuple[LabelRead, ...] = ()) -> list[LabelRead]:
    """The labels of a 3x4 page with a rhythm strip, left edges 110 + 447 px per column, text lines 256 px apart,
    21 px tall; ``skip`` not read, ``unsure`` read at 0.6."""
    names = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]]
    out = []
    for r, row in enumerate(names):
        for c, name in enumerate(row):
            if name not in skip:
                x, y = 110.0 + 447 * c, 672.0 + 256 * r
                out.append(LabelRead(name, x, y, x + 11 * len(name), y + 21, 0.6 if name in unsure else 0.95))
    return out + [LabelRead("II", 110.0, 1440.0, 121.0, 1461.0, 0.95)] + list(extra)


def test_unread_labels_are_placed_on_the_lattice_of_the_read_ones():
    from ecgdigitize.lead_labels import unread_label_boxes

    # a whole column read only once, unsurely (the generator's 'V1' and 'V3' touching their QRS): it is found from the
    # columns' spacing; the rhythm strip's text line has one label and gets none
    boxes = unread_label_boxes(_lattice({"V1", "V3", "II"}, unsure={"V2"}))
    got = sorted((round(b[0]), round(b[1])) for b in boxes)
    assert got == [(110, 928), (1004, 672), (1004, 1184)]
    assert all(20.0 <= b[3] - b[1] <= 22.0 for b in boxes)
    # the lattice of the sure labels alone places one at the unsure 'V2' too, unless told of it
    labels = _lattice({"V1", "V3", "II"}, unsure={"V2"})
    sure = [lab for lab in labels if lab.score >= 0.8]
    assert (1004, 928) in [(round(b[0]), round(b[1])) for b in unread_label_boxes(sure)]
    assert sorted((round(b[0]), round(b[1])) for b in unread_label_boxes(sure, also_read=labels)) == got
    # a label read on the trace, off the lattice, adds no place; a page read whole has nothing unread
    stray = LabelRead("aVL", 1447.0, 693.0, 1517.0, 715.0, 0.53)
    assert unread_label_boxes(_lattice(set(), extra=(stray,))) == []
    assert unread_label_boxes(_lattice({"I", "II", "III", "aVR", "aVL", "aVF"})) == []  # two columns left: no steps


def test_a_column_read_once_surely_is_on_the_lattice_where_it_keeps_the_columns_spacing():
    from ecgdigitize.lead_labels import unread_label_boxes

    # the last column's 'V5' and 'V6' touch their QRS and are not read; its 'V4' alone places them
    boxes = unread_label_boxes(_lattice({"V5", "V6"}))
    assert sorted((round(b[0]), round(b[1])) for b in boxes) == [(1451, 928), (1451, 1184)]
    # read unsurely, or half a column off the spacing (no label of the lattice), it places none
    assert unread_label_boxes(_lattice({"V5", "V6"}, unsure={"V4"})) == []
    stray = LabelRead("V4", 1230.0, 672.0, 1265.0, 693.0, 0.95)
    assert unread_label_boxes([lab for lab in _lattice({"V5", "V6"}) if lab.name != "V4"] + [stray]) == []


def test_a_label_across_a_rows_baseline_loses_only_the_glyphs_apart_from_the_trace():
    """A sure label whose box a row's baseline crosses lies on the trace (our renderer's rhythm-strip QRS complexes read
    'aVL' at 0.81-0.95): the ink joined to it stays."""
    prob, label, parts = _page_with_label_touching_the_trace()
    out = erase_label_glyphs(prob, [label], baselines_y=[95.0])
    assert np.all(out[parts["v"] | parts["flat"] | parts["qrs"]] == 1.0)
    assert np.all(out[parts["one"]] == 0.0)
    assert np.array_equal(erase_label_glyphs(prob, [label], baselines_y=[60.0]), erase_label_glyphs(prob, [label]))
