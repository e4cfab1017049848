"""Hand-crafted 12-lead ECG signal features (rhythm, intervals, axis, voltages, ST/T, Q waves) for the
diagnosis head.  See :mod:`ecgfeatures.features`."""

from ecgfeatures.features import (
    FEATURE_GROUPS,
    FEATURE_NAMES,
    FEATURE_SCALES,
    extract_features,
    features_to_model_input,
    nothing_measured,
)

__all__ = [
    "FEATURE_GROUPS",
    "FEATURE_NAMES",
    "FEATURE_SCALES",
    "extract_features",
    "features_to_model_input",
    "nothing_measured",
]
