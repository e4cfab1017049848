"""What a WFDB record can store, and the one conversion of a signal in mV for it.

Every record this project writes is format 16 at :data:`ADC_GAIN_PER_MV` (1000 units per mV), baseline 0: the
digital values ``-32767..32767`` hold ``-32.767..32.767`` mV and ``-32768`` is WFDB's missing value (NaN).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

#: WFDB storage format of written records, and its ADC units per mV.
DEFAULT_FORMAT: str = "16"
ADC_GAIN_PER_MV: float = 1000.0

#: Format 16: the largest storable digital magnitude and the missing-value code (read back as NaN).
FORMAT16_MAX: int = 32767
FORMAT16_NAN: int = -32768

#: Largest magnitude in mV that format 16 at 1000/mV stores (32.767 mV).
FORMAT16_LIMIT_MV: float = FORMAT16_MAX / ADC_GAIN_PER_MV

#: The entry's signals are limited to +-30 mV (beyond any real ECG) so that they fit format 16 at 1000/mV with room.
OUTPUT_LIMIT_MV: float = 30.0

#: Bits per sample of the WFDB storage formats (the most negative value is the format's missing value).
FORMAT_BITS: dict[str, int] = {
    "8": 8,
    "16": 16,
    "24": 24,
    "32": 32,
    "61": 16,
    "80": 8,
    "160": 16,
    "212": 12,
    "310": 10,
    "311": 10,
    "508": 8,
    "516": 16,
    "524": 24,
}


def physical_range(signal_format: str, adc_gain: float, baseline: int) -> tuple[float, float]:
    """Smallest and largest physical value (header units, e.g. mV) storable in one channel.

    The digital range of a ``b``-bit format is ``[-2**(b-1) + 1, 2**(b-1) - 1]`` (``-2**(b-1)`` is reserved for
    NaN); physical = (digital - baseline) / gain. Format 16 with gain 1000 and baseline 0 gives (-32.767, 32.767)
    mV. Unknown formats count as 16 bits; a gain <= 0 means no limit.
    """
    if not adc_gain or adc_gain <= 0:
        return -np.inf, np.inf
    bits = FORMAT_BITS.get(str(signal_format).strip(), 16)
    digital_max = 2 ** (bits - 1) - 1
    return (-digital_max - baseline) / adc_gain, (digital_max - baseline) / adc_gain


def clip_for_wfdb(
    signal: np.ndarray, low: float | np.ndarray = -FORMAT16_LIMIT_MV, high: float | np.ndarray = FORMAT16_LIMIT_MV
) -> np.ndarray:
    """``signal`` (any shape, mV) as float64 clipped to ``[low, high]`` (per channel when arrays of the last
    axis' length): finite values and +-inf are clipped, NaN stays NaN (written as the missing value)."""
    return np.clip(np.asarray(signal, dtype=np.float64), low, high)


def to_format16(signal: np.ndarray, adc_gain: float = ADC_GAIN_PER_MV) -> np.ndarray:
    """``signal`` (num_samples, num_leads) mV -> int16 digital values of format 16 at ``adc_gain`` units per mV,
    baseline 0: clipped to what the format stores (+-inf to its limits), rounded, NaN as :data:`FORMAT16_NAN`."""
    limit = FORMAT16_MAX / adc_gain
    sig = clip_for_wfdb(signal, -limit, limit)
    nan = np.isnan(sig)
    digital = np.clip(np.round(np.where(nan, 0.0, sig) * adc_gain), -FORMAT16_MAX, FORMAT16_MAX).astype(np.int16)
    digital[nan] = FORMAT16_NAN
    return digital


def format16_fields(signal: np.ndarray, lead_names: Sequence[str]) -> dict[str, Any]:
    """The keyword arguments of ``wfdb.wrsamp`` that store ``signal`` (num_samples, num_leads) mV as this project
    writes every record: format 16 at :data:`ADC_GAIN_PER_MV`, baseline 0, units mV (see :func:`to_format16`)."""
    n = len(lead_names)
    return {
        "units": ["mV"] * n,
        "sig_name": list(lead_names),
        "d_signal": to_format16(signal),
        "fmt": [DEFAULT_FORMAT] * n,
        "adc_gain": [ADC_GAIN_PER_MV] * n,
        "baseline": [0] * n,
    }
