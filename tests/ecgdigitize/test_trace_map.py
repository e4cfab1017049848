"""The classical trace map: faint anti-aliased ink of thin traces on a coloured grid."""

from __future__ import annotations

import cv2
import numpy as np

from ecgdigitize.trace_map import classical_trace_map

PINK_PAPER = (255, 240, 245)
PINK_GRID = (250, 170, 200)
TRACE_ROWS = 280  # the trace's band of the test page (rows above the lead names)


def _page(width_px: float, h: int = 400, w: int = 900) -> np.ndarray:
    """A pink-grid page (5 px minor, 25 px major lines) with one sine-like black trace ``width_px`` pixels wide
    (drawn at 4x and area-averaged down, as a printer driver or scanner anti-aliases a line thinner than the
    pixel pitch), and solid black marks (lead names, separator bars) as such pages print them."""
    up = 4
    ink = np.zeros((h * up, w * up), np.uint8)
    xs = np.arange(20, w - 20, 0.25)
    ys = h / 2 + 60 * np.sin(xs / 23.0) + 25 * np.sin(xs / 7.0)
    pts = np.round(np.stack([xs, ys], 1) * up).astype(np.int32)
    cv2.polylines(ink, [pts], False, 255, max(1, int(round(width_px * up))), cv2.LINE_8)
    cover = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255.0
    img = np.full((h, w, 3), PINK_PAPER, np.uint8)
    for x in range(0, w, 5):
        img[:, x] = PINK_GRID
    for y in range(0, h, 5):
        img[y, :] = PINK_GRID
    img = np.round(img * (1.0 - cover)).astype(np.uint8)
    for i, name in enumerate(("I", "aVR", "V1", "V4")):
        cv2.putText(img, name, (30 + 220 * i, h - 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3)
        img[h - 120 : h - 60, 20 + 220 * i : 26 + 220 * i] = 0
    return img


def _pieces(mask: np.ndarray) -> int:
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


def test_thin_anti_aliased_trace_is_one_piece():
    """A half-pixel trace whose ink is spread over pixels of partial darkness: its faint pixels join the solid ones (without
    them the map is a dotted line of many pieces)."""
    img = _page(0.5)
    tm = classical_trace_map(img)
    trace = (tm.prob > 0.5)[:TRACE_ROWS]
    assert _pieces(trace) <= 5  # about 500 without the faint pixels
    # the columns the trace crosses have trace pixels
    cols = trace[:, 25:-25].any(axis=0)
    assert cols.mean() > 0.95
    # grid lines away from the trace stay out
    assert not trace[:, 0:15].any()


def test_faint_rim_of_a_solid_trace_is_not_added():
    """A thick trace is already whole: its anti-aliased rim stays below the tracing threshold."""
    img = _page(3.0)
    tm = classical_trace_map(img)
    dark = tm.ink
    rim = (dark > 0.2) & (dark < tm.threshold - 0.1)
    assert rim.any()
    assert not (tm.prob[rim] > 0.5).any()


def _dense_grey_grid_page(h: int = 400, w: int = 900, seed: int = 0) -> np.ndarray:
    """A grey photocopy-like page: a dense grey grid (lines every 5 px, every pixel of a line its own shade, as a
    JPEG of a scan leaves it) nearly as dark as a thin trace whose ink is dark or lighter every few pixels, and
    noise; the grid covers a third of the page."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 205.0, np.float32)
    for x in range(0, w, 5):
        img[:, x] = rng.uniform(130, 185, h)
    for y in range(0, h, 5):
        img[y, :] = np.minimum(img[y, :], rng.uniform(130, 185, w))
    up = 4
    ink = np.zeros((h * up, w * up), np.uint8)
    xs = np.arange(20, w - 20, 0.25)
    ys = TRACE_ROWS / 2 + 50 * np.sin(xs / 31.0) + 12 * np.sin(xs / 9.0)
    pts = np.round(np.stack([xs, ys], 1) * up).astype(np.int32)
    cv2.polylines(ink, [pts], False, 255, int(1.5 * up), cv2.LINE_8)
    cover = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    shade = np.repeat(rng.choice([60.0, 125.0], size=w // 3 + 1, p=[0.7, 0.3]), 3)[:w][None, :]  # uneven ink
    img = img * (1.0 - cover) + shade * cover + rng.normal(0, 6, (h, w))
    grey = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def test_dense_grey_grid_is_left_out_and_the_trace_kept(monkeypatch):
    """A grid as dark as the first split between paper and ink fills the map (a sixth of the page); split again,
    with the trace's lighter stretches grown back from its darker pieces, the map keeps the trace and little
    else."""
    from ecgdigitize import trace_map

    img = _dense_grey_grid_page()
    monkeypatch.setattr(trace_map, "DENSE_GRID_MAX_INK_FRACTION", 1.0)
    before = classical_trace_map(img).prob > 0.5
    monkeypatch.undo()
    tm = classical_trace_map(img)
    assert tm.grid_is_grey
    after = tm.prob > 0.5
    assert before.mean() > 0.12
    assert after.mean() < 0.05
    band = after[:TRACE_ROWS]
    # the trace's lighter stretches join its darker ones (without that, 0.67-0.70 of the columns in 65-67 pieces)
    assert band[:, 25:-25].any(axis=0).mean() > 0.85
    assert _pieces(after) <= 40
    assert after[TRACE_ROWS + 20 :].mean() < 0.01  # below the trace: grid only


def _creased_page(h: int = 400, w: int = 900) -> tuple[np.ndarray, np.ndarray]:
    """A white page with a sine-like black trace (2 px) under the shadow of a crease: a band 60 px wide whose
    darkness rises to 45 % at a sharp edge and fades over the band (as a fold lit from one side). Returns the page
    and the mask of the trace's pixels."""
    img = np.full((h, w, 3), 250, np.uint8)
    trace = np.zeros((h, w), np.uint8)
    xs = np.arange(20, w - 20, 0.5)
    ys = h / 2 + 50 * np.sin(xs / 31.0)
    cv2.polylines(trace, [np.round(np.stack([xs, ys], 1)).astype(np.int32)], False, 255, 2, cv2.LINE_8)
    img[trace > 0] = 20
    shade = np.ones((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    d = xx - (400 + 0.3 * yy)  # the crease's edge, slanted
    band = (d >= 0) & (d < 60)
    shade[band] = 0.55 + 0.45 * (d[band] / 60.0)
    return np.round(img * shade[..., None]).astype(np.uint8), trace > 0


def test_a_creases_shadow_is_no_ink_and_the_trace_under_it_is_kept():
    """The sharp edge of a shadow is darker than the paper beside it, but broader than any printed line: it is no
    trace ink (it was traced as a spike and pulled traces off their rows), while the trace crossing the shadow stays."""
    img, trace = _creased_page()
    tm = classical_trace_map(img)
    ink = tm.prob > 0.5
    near_trace = cv2.dilate(trace.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert (ink & ~near_trace).sum() < 20  # the shadow's edge is not ink (118 pixels of it were)
    # the trace keeps its columns, inside the shadow too
    cols = (ink & near_trace)[:, 25:-25].any(axis=0)
    assert cols.mean() > 0.97


def test_the_images_frame_is_no_trace():
    """The Challenge generator's 1-px black frame round the page (and a 2-px scanner edge) leave the trace map; a trace
    touching the image's edge keeps its ink."""
    from ecgdigitize.trace_map import without_image_frame

    prob = np.zeros((120, 200), np.float32)
    prob[0, :] = prob[-1, :] = prob[:, 0] = 1.0  # 1-px frame on three sides
    prob[:, -2:] = 1.0  # a 2-px dark edge on the right
    prob[60, 0:150] = 1.0  # a trace reaching the left edge
    prob[1:40, 100] = 1.0  # a stroke touching the top edge's frame
    out = without_image_frame(prob)
    assert out[0].max() == 0.0 and out[-1].max() == 0.0 and out[:, 0].max() == 0.0 and out[:, -2:].max() == 0.0
    assert np.all(out[60, 1:150] == 1.0) and np.all(out[1:40, 100] == 1.0)
    assert np.array_equal(without_image_frame(out), out)  # nothing more goes once the frame is gone


def test_a_page_with_a_frame_is_traced_without_it():
    """Four traces in a 1-px black frame (the frame's ink is a fifth of the page's: the classical map keeps it as
    dark straight lines crossed by traces would be kept); the stage's map has no frame left."""
    from ecgdigitize.params import DEFAULT_PARAMS
    from ecgdigitize.stages import make_trace_map, prepare_page
    from ecgdigitize.trace_map import classical_trace_map

    img = np.full((600, 1200, 3), 255, np.uint8)
    xs = np.arange(30, 1170)
    for k in range(4):
        ys = 90 + 130 * k + 30 * np.sin(xs / 17.0)
        cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32)], False, (0, 0, 0), 3)
    img[0, :] = img[-1, :] = 0
    img[:, 0] = img[:, -1] = 0
    assert classical_trace_map(img).prob[-1].mean() > 0.9
    prob = make_trace_map(prepare_page(img, DEFAULT_PARAMS, []), None, DEFAULT_PARAMS, []).trace_map.prob
    assert prob[0].max() < 0.5 and prob[-1].max() < 0.5 and prob[:, 0].max() < 0.5 and prob[:, -1].max() < 0.5
    assert (prob > 0.5).sum() > 4 * 1000 * 3  # the traces stay
