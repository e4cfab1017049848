"""Page geometry, layout and vectorisation: from an ECG page image to per-lead signals."""
