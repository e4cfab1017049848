"""The digitizer's thresholds in one object: :class:`DigitizerParams` (``digitize_page(..., params=...)``).

Each field says what it is and its unit: px (pixels of the working image), mm (of paper, through the page's
scale), s (of signal, through the paper speed), or a fraction / ratio (no unit). The defaults are the values the
digitizer was tuned with; thresholds that carry a longer history (named constants with the measurements behind
them) stay beside the code that uses them, in :mod:`ecgdigitize.stages` and :mod:`ecgdigitize.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DigitizerParams:
    """Thresholds of the digitizer's stages (see the module's docstring for the units)."""

    # --- the page and its trace map
    #: shortest side (px) an image must have to be digitised at all
    min_image_side_px: int = 16
    #: trace probability (0-1) from which a pixel of the trace map counts as ink
    ink_probability: float = 0.5
    #: fraction of the page's pixels that must be ink for it not to be taken for a blank page
    min_ink_fraction: float = 1e-4

    # --- orientation
    #: long side (px) of the downscaled trace map on which a quarter turn is decided
    turn_max_side_px: int = 800
    #: long side (px) of the downscaled maps on which rotation and keystone are estimated
    geometry_max_side_px: int = 1600
    #: a rotation moving the image's corners by less than this (px) is not applied (it would only blur thin traces)
    min_rotation_shift_px: float = 1.0
    #: the rectified canvas grows at most by this factor in width and in height (ratio)
    max_canvas_growth: float = 1.5
    #: band (mm) above and below a row's baseline left out of the up/down ink balance
    upside_down_skip_mm: float = 1.0
    #: a row's ends searched for an upright or upside-down calibration pulse: this much paper (s) ...
    pulse_vote_reach_s: float = 0.6
    #: ... plus this much (mm)
    pulse_vote_reach_mm: float = 8.0

    # --- rows
    #: rows found cover less than this fraction of the page's width per row: rows are also sought with gaps bridged
    rows_min_coverage: float = 0.5
    #: the shortest row spans less than this fraction of the longest: rows are also sought with gaps bridged
    rows_min_span_ratio: float = 0.6
    #: bridged rows one more or fewer than those found without replace them when they cover this much more (ratio)
    bridged_other_count_gain: float = 1.3

    # --- calibration pulses and scale
    #: duration (s) of a standard calibration pulse
    pulse_duration_s: float = 0.2
    #: a row without a pulse of its own is searched for one in the ink this far (mm) left of it, plus a pulse's width
    pulse_search_left_mm: float = 12.0
    #: ... and this far (px) into the row
    pulse_search_overlap_px: int = 2
    #: ink darkness (0-1) below which the image's ink is no pulse in that search ...
    pulse_ink_floor: float = 0.3
    #: ... and the darkness range (0-1) above the floor over which it becomes certain ink
    pulse_ink_ramp: float = 0.2
    #: pulse heights within this fraction of a standard gain confirm the scale when the paper speed is read
    speed_pulse_gain_tolerance: float = 0.15
    #: paper speed (mm/s) read from calibration pulses twice the standard width
    fast_paper_speed: float = 50.0
    #: pulse widths within this fraction of a pulse at :attr:`fast_paper_speed` mean that speed
    pulse_width_tolerance: float = 0.2
    #: pulses (count) needed for a scale from the pulses where the page size gave it
    min_pulses_for_scale: int = 2
    #: pulse heights within this fraction of a standard gain on the page-size scale are of that gain
    pulse_gain_tolerance: float = 0.1
    #: largest ratio between the x and y scales the pulses' width and height may imply (pixels are square)
    max_pulse_aspect: float = 2.0
    #: pulses on the grid's scale within this fraction of a standard gain confirm the grid's period
    pulse_standard_tolerance: float = 0.08
    #: the grid's x and y periods within this fraction of each other share one error (the pulses correct both)
    grid_axes_agreement: float = 0.05
    #: confidence (0-1) of a scale that the calibration pulses gave
    pulse_scale_confidence: float = 0.5
    #: shortest page side (mm) a grid period may imply before a sub-harmonic of it is tried
    min_page_mm: float = 120.0
    #: largest sub-harmonic (period / k, k = 2 up to this) tried for a grid period implying too small a page
    max_sub_harmonic: int = 5
    #: a sub-harmonic is used only within this ratio of the letter-size page's scale
    sub_harmonic_page_ratio: float = 1.35
    #: confidence (0-1) of a scale taken from a sub-harmonic of the grid period
    sub_harmonic_confidence: float = 0.3

    # --- per-row time axes
    #: rows' trace starts agree within the larger of this (px) ...
    row_start_tol_px: float = 1.5
    #: ... and this much paper (s)
    row_start_tol_s: float = 0.01
    #: a pulse whose falling edge lies within this many start tolerances of the others' is a pulse of the same start
    pulse_edge_tolerances: float = 2.0
    #: a grid scale of at least this confidence (0-1) is trusted over a row's traced duration
    trust_grid_confidence: float = 0.5
    #: row spacing (mm) assumed for a row's own grid band where the page has one row
    single_row_band_mm: float = 20.0
    #: a row's own grid period is read only from a band at least this tall (px) ...
    row_band_min_height_px: int = 10
    #: ... and a row at least this wide (px)
    row_band_min_width_px: int = 100
    #: ... and used only where it was read with at least this confidence (0-1)
    row_band_min_confidence: float = 0.5
    #: a row's baselines from the pulse feet of the others: feet on a straight line within this (mm) ...
    pulse_feet_line_mm: float = 0.3
    #: ... and the predicted baseline within this (mm) of the row's own
    pulse_feet_reach_mm: float = 3.0
    #: a row's isoelectric level: finite curve points (count) needed to take it from the curve
    mode_min_points: int = 50
    #: height histogram bin (px) of that level
    mode_bin_px: float = 0.25
    #: histogram smoothing (mm)
    mode_smooth_mm: float = 0.3
    #: points within this (mm) plus :attr:`mode_near_px` of the mode refine it by their median ...
    mode_near_mm: float = 0.15
    #: ... (px)
    mode_near_px: float = 0.5
    #: ... when there are at least this many (count)
    mode_near_min_points: int = 10
    #: the level is kept only within this (mm) of the row profile's baseline
    mode_max_shift_mm: float = 4.0

    # --- rows and layout
    #: an edge row spanning less than this fraction of the longest row is text when off the rows' spacing ...
    edge_row_short: float = 0.6
    #: ... by more than this fraction of the spacing
    edge_row_off_spacing: float = 0.15
    #: an edge row spanning less than this fraction of the longest is text wherever it lies
    edge_row_very_short: float = 0.2
    #: dropping edge rows must lower the layout fit's cost by at least this much
    edge_row_cost_gain: float = 0.1
    #: at most this many rows are peeled off each edge (a header's lines of text; shadows and a border)
    edge_row_peel: int = 3
    #: an edge row off the rows' spacing whose trace leaves its running median (over ``edge_row_flat_window_s``) by
    #: less than this (mm) in all but 1 % of its columns has no QRS complex: a border or rule line (the dark edge a
    #: rotated scan leaves), however long. Measured: such lines 0.7-1.2 mm; true rows 1.5 mm (a low rhythm strip)
    #: and up, 3 mm and up for four-lead rows
    edge_row_flat_mm: float = 1.5
    #: ... the running median's window (s), longer than a QRS complex
    edge_row_flat_window_s: float = 0.2
    #: row spacing (mm) assumed to place the lead labels where the page has one row
    single_row_spacing_mm: float = 30.0
    #: rows fit a layout template when its cost is below this
    layout_max_cost: float = 0.75

    # --- vectorised traces at column boundaries, assembly
    #: window (s of paper) around a column boundary in which a row is traced again
    retrace_window_s: float = 0.2
    #: a boundary without a visible tick is traced again within this many line widths ...
    boundary_reach_widths: float = 2.0
    #: ... plus this (px) of it
    boundary_reach_px: float = 2.0
    #: a lead's label erased from the trace map with its box grown by this (px)
    label_margin_px: float = 2.0
    #: a rhythm strip is compared with a lead's segment of at least this many samples (count)
    rhythm_min_samples: int = 20
    #: a rhythm strip is renamed to a lead whose segment correlates with it at least this well (Pearson r) ...
    rhythm_min_correlation: float = 0.9
    #: ... and better than its default lead by this much (r)
    rhythm_correlation_margin: float = 0.1

    # --- the alternative readings of a page
    #: a row's residual tilt is measured only where it has at least this many traced points per bin (count)
    tilt_min_points_per_bin: int = 10

    # --- the reading's confidence (0-1), the product of the factors below
    #: for a scale from the grid
    confidence_grid: float = 1.0
    #: for a scale from the calibration pulses
    confidence_pulse: float = 0.7
    #: for a scale assumed from the page size
    confidence_dpi: float = 0.35
    #: for a scale of any other source
    confidence_other: float = 0.3
    #: when the rows fit no layout template
    confidence_no_template: float = 0.5
    #: for an orientation not read from the grid
    confidence_no_grid_orientation: float = 0.8


#: the defaults
DEFAULT_PARAMS = DigitizerParams()
