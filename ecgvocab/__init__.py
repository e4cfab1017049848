"""The project's shared facts: lead names and their matching, the Dx classes, WFDB storage limits, SNR.

Every package takes these from here; this package imports nothing of the project (numpy only).
"""

from ecgvocab.classes import BINARY_CLASSES, DX_CLASSES, NORMAL_CLASS, sort_classes
from ecgvocab.leads import (
    LEAD_TOKEN,
    LIMB_LEADS,
    PRECORDIAL_LEADS,
    STANDARD_LEAD_KEYS,
    STANDARD_LEADS,
    canonical_lead_name,
    lead_index,
    lead_key,
)
from ecgvocab.snr import snr_db
from ecgvocab.wfdb_limits import (
    ADC_GAIN_PER_MV,
    DEFAULT_FORMAT,
    FORMAT16_LIMIT_MV,
    FORMAT16_MAX,
    FORMAT16_NAN,
    FORMAT_BITS,
    OUTPUT_LIMIT_MV,
    clip_for_wfdb,
    format16_fields,
    physical_range,
    to_format16,
)

__all__ = [
    "ADC_GAIN_PER_MV",
    "BINARY_CLASSES",
    "DEFAULT_FORMAT",
    "DX_CLASSES",
    "format16_fields",
    "FORMAT16_LIMIT_MV",
    "FORMAT16_MAX",
    "FORMAT16_NAN",
    "FORMAT_BITS",
    "LEAD_TOKEN",
    "LIMB_LEADS",
    "NORMAL_CLASS",
    "OUTPUT_LIMIT_MV",
    "PRECORDIAL_LEADS",
    "STANDARD_LEADS",
    "STANDARD_LEAD_KEYS",
    "canonical_lead_name",
    "clip_for_wfdb",
    "lead_index",
    "lead_key",
    "sort_classes",
    "physical_range",
    "snr_db",
    "to_format16",
]
