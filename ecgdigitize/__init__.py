"""Page geometry, layout and vectorisation: from an ECG page image to per-lead signals.

    from ecgdigitize import digitize_image
    result = digitize_image("scan.png")   # .signal (samples x 12, mV), .fs, .lead_names, .layout, .status, .report
    result.to_csv("scan.csv"); result.to_wfdb("out/scan"); result.plot("scan_plot.png")

See :mod:`ecgdigitize.api`; the steps are in :mod:`ecgdigitize.pipeline`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DigitizedECG", "digitize_array", "digitize_image"]


def __getattr__(name: str) -> Any:  # the API is imported on first use (no import-time cost for the submodules)
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'ecgdigitize' has no attribute {name!r}")
